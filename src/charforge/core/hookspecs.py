"""The plugin contract: one pluggy hook per extension point.

Every hook receives a `register` callback and calls it once per thing it provides, so one plugin
can add several corpora (or cells, samplers, ...) and the registry can record which plugin
provided what (name clashes then name both providers). Built-ins use these same hooks.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("charforge")
hookimpl = pluggy.HookimplMarker("charforge")


@hookspec
def charforge_register_corpora(register):
    """Register corpora: call register(corpus) with Corpus instances (charforge.Corpus)."""


@hookspec
def charforge_register_cells(register):
    """Register recurrent cell types: call register(cell) with CellType instances."""


@hookspec
def charforge_register_samplers(register):
    """Register samplers: call register(sampler) with Sampler instances (see sampling)."""


@hookspec
def charforge_register_callbacks(register):
    """Register training callbacks: call register(X) with a TrainingCallback subclass (made
    anew for each Trainer) or an instance (copied for each Trainer)."""


@hookspec
def charforge_register_commands(cli):
    """Add subcommands to the `charforge` command: cli is the argparse subparsers object."""
