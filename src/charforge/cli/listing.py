"""Tables for `charforge plugins`, `corpora`, `cells` and `samplers` (also used by the REPL)."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..core import plugins


def plugins_table() -> Table:
    t = Table(title="charforge plugins")
    t.add_column("plugin")
    t.add_column("version")
    t.add_column("origin")
    t.add_column("hooks")
    for info in plugins.list_plugins():
        t.add_row(info.name, info.version, "built-in" if info.builtin else "installed",
                  ", ".join(h.removeprefix("charforge_") for h in info.hooks))
    for problem in plugins.registry().problems:
        t.add_row(Text("problem", style="red"), "", "", problem)
    return t


def _status(corpus) -> str:
    try:
        return corpus.status()
    except Exception as exc:   # a plugin's status() must not break the listing
        return f"error: {exc}"


def registered_table(group: str) -> Table:
    t = Table(title=f"charforge {group}")
    t.add_column("name")
    if group == "corpora":
        t.add_column("type")
        t.add_column("status")
    if group == "samplers":
        t.add_column("parameters")
    t.add_column("description")
    t.add_column("from", style="dim")
    items = plugins.registered(group)
    for name in sorted(items):
        item = items[name]
        row = [name]
        if group == "corpora":
            row += [item.kind, _status(item)]
        if group == "samplers":
            row.append(", ".join(f"{k}={p.default:g}" for k, p in item.params.items()) or "-")
        row += [item.description, plugins.provider(group, name)]
        t.add_row(*row)
    return t


def _print(table: Table, console: Console | None) -> None:
    """A rich table on a terminal; tab-separated lines (pipeable) otherwise."""
    console = console or Console()
    if console.is_terminal:
        console.print(table)
        return
    print("\t".join(str(c.header) for c in table.columns))
    for row in zip(*(list(c.cells) for c in table.columns), strict=True):
        print("\t".join(cell.plain if isinstance(cell, Text) else str(cell) for cell in row))


def print_plugins(console: Console | None = None) -> None:
    _print(plugins_table(), console)


def print_registered(group: str, console: Console | None = None) -> None:
    _print(registered_table(group), console)


GROUPS = (("corpora", "registered corpora and whether they are available"),
          ("cells", "registered recurrent cell types"),
          ("samplers", "registered samplers and their parameters"))


def add_parser(sub) -> None:
    """`charforge plugins` and one listing command per registered group."""
    p = sub.add_parser("plugins", help="installed plugins, versions and hooks")
    p.set_defaults(func=cmd_plugins)
    for group, text in GROUPS:
        p = sub.add_parser(group, help=text)
        p.set_defaults(func=cmd_list, group=group)


def cmd_plugins(args) -> int:
    print_plugins()
    return 0


def cmd_list(args) -> int:
    print_registered(args.group)
    return 0
