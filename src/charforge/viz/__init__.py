"""Seeing inside: activations over a text, text features and unit ranking, the terminal
view and the HTML page."""
from __future__ import annotations

from ..core.exports import face

__getattr__, __dir__, __all__ = face(
    __name__, globals(), activations="trace", terminal="show", features="rank_units",
    html="write_html")
