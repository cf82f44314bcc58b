"""Models shipped inside the package, by name (`charforge generate shakespeare`)."""
from __future__ import annotations

from pathlib import Path

PRETRAINED_DIR = Path(__file__).parent / "shipped"


def available() -> dict[str, Path]:
    """Names of the shipped models and their files."""
    return {p.stem: p for p in sorted(PRETRAINED_DIR.glob("*.safetensors"))}


def resolve_model_path(name_or_path: str | Path) -> Path:
    """A pretrained model's file by name, or the given path."""
    shipped = available()
    if isinstance(name_or_path, str) and name_or_path in shipped and \
            not Path(name_or_path).exists():
        return shipped[name_or_path]
    return Path(name_or_path)


def load(name_or_path: str | Path = "shakespeare", dtype: str | None = None):
    """(model, metadata) of a pretrained model or a checkpoint."""
    from ..core.errors import CharforgeError
    from .store import load_model
    path = resolve_model_path(name_or_path)
    if not path.exists():
        names = ", ".join(available()) or "none"
        raise CharforgeError(f"{name_or_path} does not exist and is not a pretrained model "
                             f"({names}); give a checkpoint file or a run folder")
    return load_model(path, dtype)
