"""mkdocs hook: the plugin packages' READMEs and benchmarks/README.md become pages of the
site as they are (one text in one place), under plugin-packages/ and as benchmarks.md. The
docs link to those files where they are in the repository (so the links work when the pages
are read there too); on the site the links lead to the generated pages."""
from __future__ import annotations

import os
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


def on_page_markdown(markdown, page, config, files):
    """A link to ../benchmarks/README.md (as the repository has it) -> benchmarks.md."""
    here = (ROOT / config["docs_dir"] / page.file.src_uri).parent
    for uri, source in _pages().items():
        in_repo = Path(os.path.relpath(source, here)).as_posix()
        on_site = Path(os.path.relpath(ROOT / config["docs_dir"] / uri, here)).as_posix()
        markdown = markdown.replace(f"]({in_repo}", f"]({on_site}")
    return markdown
