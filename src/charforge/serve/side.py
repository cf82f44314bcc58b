"""`/v1/next` and `/v1/activations` computed in a process of their own, at the lowest CPU
priority and on one thread: a flood of them takes only the cores generation leaves idle
(threads of one process share its priority with the engines' OpenMP and BLAS threads, so a
process is the unit the scheduler can rank). The process loads the served models once."""
from __future__ import annotations

import asyncio
import os
from concurrent.futures import ProcessPoolExecutor

_MODELS: dict = {}


def _start(models: dict[str, str], precision: str) -> None:
    """In the side process, before anything heavy loads: lowest priority, one thread."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    try:
        os.nice(19)
    except (AttributeError, OSError):
        pass
    import charforge
    from charforge.checkpoints.pretrained import load
    charforge.set_num_threads(1)
    for name, given in models.items():
        model, _ = load(given)
        model.precision = precision
        _MODELS[name] = model


def next_distribution(name: str, text: str, sampler: str, params: dict):
    from ..generation.engine import next_distribution as distribution
    return distribution(_MODELS[name], text, sampler, params)[0]


def activations(name: str, text: str, state: str, layer: int, unit: int):
    """A unit's values over the text and their colour scale."""
    from ..viz.activations import trace
    from ..viz.terminal import scale_of
    values = trace(_MODELS[name], text, ["h", state]).neuron(state, layer, unit)
    return values, scale_of(values, state)


class SideProcess:
    def __init__(self, models: dict[str, str], precision: str) -> None:
        self.models, self.precision = models, precision
        self.pool = self._pool()

    def _pool(self) -> ProcessPoolExecutor:
        import multiprocessing
        return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start, initargs=(self.models, self.precision))

    async def call(self, fn, *args):
        """fn(*args) in the side process; a process that died (killed, out of memory) is
        replaced and the request told to retry."""
        from concurrent.futures.process import BrokenProcessPool

        from .requests import Invalid
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
        except BrokenProcessPool:
            self.pool = self._pool()
            raise Invalid("the side process stopped and was restarted; retry", 503) from None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
