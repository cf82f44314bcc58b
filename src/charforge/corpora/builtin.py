"""Registers the built-in corpora through the same hook a third-party plugin uses."""
from __future__ import annotations

from ..hookspecs import hookimpl
from .ag_news import AGNews
from .harry_potter import HarryPotter
from .shakespeare import Shakespeare
from .textfile import TextFile


@hookimpl
def charforge_register_corpora(register):
    for corpus in (Shakespeare(), HarryPotter(), AGNews(), TextFile()):
        register(corpus)
