"""Thread count for the kernels.

Default: OMP_NUM_THREADS when set, otherwise the number of usable cores. charforge runs one
thread pool, OpenMP's: the recurrent loops split batch rows or hidden units over its threads
and the large GEMMs split their output blocks over them, each thread calling BLAS
single-threaded. A second
pool (BLAS's own threads) on the same cores would fight the first, so the model runs its work
inside `blas_single_threaded()`, which switches the BLAS libraries (scipy's and numpy's) to
one thread for the duration (microseconds) and back.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np
from threadpoolctl import ThreadpoolController

from ._kernels import ops
from .errors import CharforgeError

_threads: int | None = None
_controllers: list | None = None


MAX_THREADS = 256       # beyond this OpenMP's runtime aborts or crashes (40,000 did; 100,000
                        # segfaulted), and no machine charforge targets has more cores


def _default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.strip().isdigit() and int(env) > 0:
        return min(int(env), MAX_THREADS)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _blas_controllers() -> list:
    """threadpoolctl controllers of every loaded BLAS: scipy's (behind cython_blas) and
    numpy's. A threaded call into either leaves its worker threads spinning for a while
    afterwards, against our OpenMP threads (a numpy matmul before each generation loop cost
    a third of a 32-row batch's speed that way)."""
    global _controllers
    if _controllers is None:
        import scipy.linalg.cython_blas  # noqa: F401  (make sure scipy's BLAS is loaded)
        _controllers = [c for c in ThreadpoolController().lib_controllers
                        if c.user_api == "blas"]
    return _controllers


def set_num_threads(n: int) -> None:
    """Use n threads in charforge's kernels."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_THREADS:
        raise CharforgeError(f"the thread count must be a whole number from 1 to "
                             f"{MAX_THREADS}, got {n!r}")
    n = int(n)
    _threads = n
    ops.set_omp_threads(n)


def get_num_threads() -> int:
    """The thread count in use (set_num_threads, else OMP_NUM_THREADS, else the core count)."""
    if _threads is None:
        return _default_threads()
    return _threads


@contextlib.contextmanager
def blas_single_threaded():
    """BLAS on one thread for the duration (a few microseconds to switch), then as before."""
    controllers = _blas_controllers()
    before = [c.num_threads for c in controllers]
    for c in controllers:
        c.set_num_threads(1)
    try:
        yield
    finally:
        for c, n in zip(controllers, before, strict=False):
            c.set_num_threads(n)


def _sync_openmp() -> None:
    """Apply the default thread count to OpenMP once at import."""
    ops.set_omp_threads(get_num_threads())


_sync_openmp()
