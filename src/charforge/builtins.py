"""charforge's own corpora, cells and samplers, registered through the hooks a third-party
plugin implements (the plugin manager loads this module first, under the name "builtins")."""
from __future__ import annotations

from .core.hookspecs import hookimpl
from .data.corpora.ag_news import AGNews
from .data.corpora.harry_potter import HarryPotter
from .data.corpora.shakespeare import Shakespeare
from .data.corpora.textfile import TextFile
from .generation.samplers import BUILTIN_SAMPLERS
from .nn.cells import BUILTIN_CELLS


@hookimpl
def charforge_register_corpora(register):
    for corpus in (Shakespeare(), HarryPotter(), AGNews(), TextFile()):
        register(corpus)


@hookimpl
def charforge_register_cells(register):
    for cell in BUILTIN_CELLS.values():
        register(cell)


@hookimpl
def charforge_register_samplers(register):
    for sampler in BUILTIN_SAMPLERS:
        register(sampler)
