"""mkdocs hook: the plugin packages' READMEs and benchmarks/README.md become pages of the
site as they are (one text in one place), under plugin-packages/ and as benchmarks.md."""
from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]


def _pages() -> dict[str, Path]:
    pages = {f"plugin-packages/{readme.parent.name}.md": readme
             for readme in sorted((ROOT / "plugins").glob("*/README.md"))}
    pages["benchmarks.md"] = ROOT / "benchmarks" / "README.md"
    return pages


def on_files(files, config):
    for uri, source in _pages().items():
        files.append(File.generated(config, uri, content=source.read_text(encoding="utf-8")))
    return files
