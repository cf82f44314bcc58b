"""The plugin registry: built-ins plus every package in the `charforge` entry-point group.

Lookups by name (`charforge.data.corpora.get_corpus`, `charforge.nn.cells.get_cell`,
`charforge.generation.samplers.get_sampler`) go through here. A plugin that fails
to import or whose hook raises is reported once (one line: which plugin, why) and skipped.
Two providers of one name is an error naming both. Environment switches:
CHARFORGE_BLOCK_PLUGINS=a,b blocks entry-point plugins by name; CHARFORGE_LOAD_PLUGINS=a,b loads
only those (empty string: none).
"""
from __future__ import annotations

import importlib.metadata
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .errors import CharforgeError

BUILTINS = "charforge.builtins"     # loaded by name: the registry sits below what it registers
NOUNS = {"corpora": "corpus", "cells": "cell type", "samplers": "sampler",
         "callbacks": "callback"}
GROUPS = {"corpora": "charforge_register_corpora", "cells": "charforge_register_cells",
         "samplers": "charforge_register_samplers", "callbacks": "charforge_register_callbacks"}


@dataclass
class PluginInfo:
    name: str
    version: str
    hooks: list[str]
    builtin: bool


@dataclass
class Registry:
    """Everything the plugins registered, by group and name, with who provided it."""
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    providers: dict[tuple[str, str], str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


_pm: pluggy.PluginManager | None = None
_dists: dict[str, importlib.metadata.Distribution] = {}
_registry: Registry | None = None


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _warn(message: str) -> None:
    print(f"charforge: warning: {message}", file=sys.stderr)


def _load_entry_points(pm: pluggy.PluginManager, problems: list[str]) -> None:
    only = _env_list("CHARFORGE_LOAD_PLUGINS")
    blocked = set(_env_list("CHARFORGE_BLOCK_PLUGINS") or [])
    for ep in importlib.metadata.entry_points(group="charforge"):
        if ep.name in blocked or (only is not None and ep.name not in only):
            pm.set_blocked(ep.name)
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
            if ep.dist is not None:
                _dists[ep.name] = ep.dist
        except Exception as exc:  # a broken plugin must never take the program down
            problems.append(f"plugin {ep.name!r} failed to load and was skipped: "
                            f"{type(exc).__name__}: {exc}")


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (built-ins and entry points, loaded once)."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("charforge")
        pm.add_hookspecs(hookspecs)
        problems: list[str] = []
        import importlib
        pm.register(importlib.import_module(BUILTINS), name=BUILTINS)
        _load_entry_points(pm, problems)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise CharforgeError(f"a plugin implements an unknown hook: {exc}") from None
        _pm = pm
        for p in problems:
            _warn(p)
    return _pm


def _provider_name(pm: pluggy.PluginManager, plugin: object) -> str:
    name = pm.get_name(plugin) or repr(plugin)
    dist = _dists.get(name)
    return f"{name} (package {dist.metadata['name']})" if dist is not None else name


_expected: dict[str, type] = {}


def expect(group: str, base: type) -> None:
    """Declare what a registration of `group` must be an instance of. The module defining the
    base class says so as it loads (cells, sampling, corpora.base: the built-in plugins, so
    before any registration is collected); the registry itself imports none of them.
    Callbacks are duck-typed (every method is optional) and declare nothing."""
    _expected[group] = base


def _expected_type(group: str) -> type | None:
    return _expected.get(group)


def _collect(pm: pluggy.PluginManager, group: str, registry: Registry) -> None:
    hook = getattr(pm.hook, GROUPS[group])
    expected = _expected_type(group)
    found: dict[str, Any] = {}
    for impl in hook.get_hookimpls():
        provider = _provider_name(pm, impl.plugin)
        batch: list[Any] = []
        try:
            impl.function(register=batch.append)
        except Exception as exc:
            msg = (f"plugin {provider} raised in {GROUPS[group]} and was skipped: "
                   f"{type(exc).__name__}: {exc}")
            registry.problems.append(msg)
            _warn(msg)
            continue
        for i, item in enumerate(batch):
            if group == "callbacks" and isinstance(item, type):
                name = getattr(item, "name", None) or f"{provider}:{item.__name__}"
                found[name] = item
                registry.providers[(group, name)] = provider
                continue
            if expected is not None and not isinstance(item, expected):
                _refuse(registry, f"plugin {provider} registered {type(item).__name__!s} "
                                  f"{item!r:.60} as a {NOUNS[group]}, not a {expected.__name__}; "
                                  "it was skipped")
                continue
            name = getattr(item, "name", None)
            if group == "callbacks" and not name:     # callbacks need no name of their own
                name = f"{provider}:{type(item).__name__}:{i}"
            if not isinstance(name, str) or not name:
                _refuse(registry, f"plugin {provider} registered a {NOUNS[group]} without a "
                                  "name; it was skipped")
                continue
            if name in found:
                other = registry.providers[(group, name)]
                raise CharforgeError(f"{NOUNS[group]} name clash: {name!r} is provided by both "
                                     f"{other} and {provider}; uninstall or block one "
                                     "(CHARFORGE_BLOCK_PLUGINS)")
            found[name] = item
            registry.providers[(group, name)] = provider
    registry.items[group] = found


def _refuse(registry: Registry, message: str) -> None:
    registry.problems.append(message)
    _warn(message)


def register_commands(subparsers: Any) -> None:
    """Each plugin's charforge_register_commands, one at a time: a plugin that raises is one
    warning line naming it, and every other command (and --help) still works. The commands
    added are remembered for `charforge --help` (cached_commands)."""
    pm = plugin_manager()
    before = {a.dest for a in subparsers._choices_actions}
    for impl in pm.hook.charforge_register_commands.get_hookimpls():
        try:
            impl.function(cli=subparsers)
        except Exception as exc:
            _warn(f"plugin {_provider_name(pm, impl.plugin)} raised in "
                  f"charforge_register_commands and its commands were skipped: "
                  f"{type(exc).__name__}: {exc}")
    added = [(a.dest, a.help or "") for a in subparsers._choices_actions if a.dest not in before]
    _remember_commands(added)


COMMANDS_CACHE = "plugin-commands.json"


def _installed_fingerprint() -> str:
    """What decides the plugin commands: the entry points, their packages' versions and the
    load switches. A change in any makes the cached list stale."""
    import json
    eps = sorted((ep.name, ep.value, ep.dist.name if ep.dist else "",
                  ep.dist.version if ep.dist else "")
                 for ep in importlib.metadata.entry_points(group="charforge"))
    return json.dumps([eps, os.environ.get("CHARFORGE_LOAD_PLUGINS"),
                       os.environ.get("CHARFORGE_BLOCK_PLUGINS")])


def cached_commands() -> list[tuple[str, str]] | None:
    """The plugin commands (name, help) as the last full load found them, read without
    importing any plugin (so a heavy plugin does not slow `charforge --help`); None when
    the installed plugins changed since, or nothing is cached."""
    import json

    from .paths import cache_dir
    try:
        saved = json.loads((cache_dir() / COMMANDS_CACHE).read_text(encoding="utf-8"))
        if saved["fingerprint"] == _installed_fingerprint():
            return [(str(name), str(text)) for name, text in saved["commands"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _remember_commands(commands: list[tuple[str, str]]) -> None:
    import json

    from .paths import cache_dir
    folder = cache_dir()
    path = folder / COMMANDS_CACHE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"fingerprint": _installed_fingerprint(),
                                   "commands": commands}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass                      # a read-only cache only costs --help the plugins' import


def registry() -> Registry:
    """All registered corpora, cells, samplers and callbacks (collected once)."""
    global _registry
    if _registry is None:
        pm = plugin_manager()
        reg = Registry()
        for group in GROUPS:
            _collect(pm, group, reg)
        _registry = reg
    return _registry


def reset() -> None:
    """Forget the loaded plugins (tests, or after installing a plugin in a running REPL)."""
    global _pm, _registry
    _pm, _registry = None, None


def register_plugin(plugin: object, name: str) -> None:
    """Register a plugin object at run time (a script's own corpus or sampler)."""
    plugin_manager().register(plugin, name=name)
    global _registry
    _registry = None


def unregister_plugin(name: str) -> None:
    pm = plugin_manager()
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin)
    global _registry
    _registry = None


def names(group: str) -> list[str]:
    return sorted(registry().items[group])


def registered(group: str) -> dict[str, Any]:
    """Name -> item of one group (corpora, cells, samplers, callbacks), for listings."""
    return dict(registry().items[group])


def plugin_callbacks() -> list[Any]:
    """Fresh training callbacks from the plugins, for one Trainer: a registered class is
    instantiated, a registered instance copied, so two runs never share a callback's state."""
    import copy
    out = []
    for item in registry().items["callbacks"].values():
        if isinstance(item, type):
            out.append(item())
            continue
        try:
            out.append(copy.deepcopy(item))
        except Exception:           # an instance holding a lock or a file: shared, as given
            out.append(item)
    return out


def lookup(group: str, name: str) -> Any:
    """A registered item by group and name, or a one-line error listing the known names."""
    items = registry().items[group]
    if name not in items:
        known = ", ".join(sorted(items)) or "none"
        raise CharforgeError(f"unknown {NOUNS[group]} {name!r}; choose one of: {known}")
    return items[name]


def provider(group: str, name: str) -> str:
    return registry().providers[(group, name)]


def list_plugins() -> list[PluginInfo]:
    """Installed plugins with their versions and the hooks each implements."""
    pm = plugin_manager()
    from .._version import __version__
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        dist = _dists.get(name)
        version = dist.version if dist is not None else __version__
        out.append(PluginInfo(name, version, hooks, name == BUILTINS))
    return out
