"""A package's public names, loaded when first used: `import charforge` and the command's start
(where a Ctrl-C must already exit cleanly) then wait for neither numpy nor the kernels, and a
room's face (`charforge.nn.CharModel`) costs nothing until it is asked for."""
from __future__ import annotations

import importlib
from collections.abc import Callable


def face(package: str, namespace: dict, **modules: str):
    """(__getattr__, __dir__, __all__) of a room: `modules` maps a module below the package
    to the names it gives the room's face, as one space-separated string."""
    public = {name: module for module, names in modules.items() for name in names.split()}
    return (*lazy_exports(package, public, namespace), sorted(public))


def lazy_exports(package: str, public: dict[str, str | tuple[str, str]],
                 namespace: dict) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """(__getattr__, __dir__) for `package`: public maps a name to the module below the
    package that defines it, or to (module, the name there)."""
    def __getattr__(name: str) -> object:
        where = public.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = (where, name) if isinstance(where, str) else where
        value = getattr(importlib.import_module(f".{module}", package), attr)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))
    return __getattr__, __dir__
