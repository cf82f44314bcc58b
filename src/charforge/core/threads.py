"""Thread count for the kernels.

Default: OMP_NUM_THREADS when set, otherwise the number of usable cores. charforge runs one
thread pool, OpenMP's: the recurrent loops split batch rows or hidden units over its threads
and the large GEMMs split their output blocks over them, each thread calling BLAS
single-threaded. A second
pool (BLAS's own threads) on the same cores would fight the first, so the model runs its work
inside `blas_single_threaded()`, which switches the BLAS libraries (scipy's and numpy's) to
one thread for the duration (microseconds) and back.

How the threads split the work, everywhere (each rule lives next to its code; all in one
place here):
- A recurrent layer gives each thread at least 16 hidden units: `team_size` threads at most.
- Training and evaluation (`_common.pxd: split_rows`): the threads take batch rows (no
  barrier per step) when B >= 16 x threads and W_hh is at most 2 MB; otherwise hidden
  units, with a barrier per step. A layer whose recurrent weights are under
  `model.SMALL_STEP_BYTES` (1 MB) runs on one thread when its step would split units.
- Generation (`generation/plan.py`): the threads take batch rows from 8 rows on when a
  step's weights are at most 8 MB (each thread then reads all of them); otherwise units, and
  only once a step reads 1 MB of weights (below that, one thread).
- On a busy machine generation uses only the cores other programs leave free
  (`free_threads`), unless the user chose the count.
"""
from __future__ import annotations

import contextlib
import os
import time

from threadpoolctl import ThreadpoolController

from .._kernels import ops
from .bounds import THREADS

_threads: int | None = None
_controllers: list | None = None


MAX_THREADS = THREADS.high     # beyond it OpenMP's runtime aborts or crashes (40,000 did;
                               # 100,000 segfaulted); no machine charforge targets has more


def usable_cores() -> int:
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


def team_size(hidden: int, nthreads: int) -> int:
    """Threads a recurrent layer of this width uses: each needs at least 16 hidden units."""
    return ops.team_size(hidden, nthreads)


def set_num_threads(n: int) -> None:
    """Use n threads in charforge's kernels."""
    global _threads
    THREADS.check(n, "the thread count")
    n = int(n)
    _threads = n
    ops.set_omp_threads(n)


def use_default_threads() -> None:
    """Back to the default: the usable cores, giving way on a busy machine."""
    global _threads
    _threads = None
    ops.set_omp_threads(get_num_threads())


def get_num_threads() -> int:
    """The thread count in use (set_num_threads, else OMP_NUM_THREADS, else the core count;
    fewer inside `running`)."""
    if _running is not None:
        return _running
    if _threads is None:
        return usable_cores()
    return _threads


_running: int | None = None


@contextlib.contextmanager
def running(n: int):
    """The kernels (and OpenMP's own loops) on n threads for the duration."""
    global _running
    before = _running
    if n == get_num_threads():
        yield
        return
    _running = n
    ops.set_omp_threads(n)
    try:
        yield
    finally:
        _running = before
        ops.set_omp_threads(get_num_threads())


def count_is_chosen() -> bool:
    """True when the user chose the thread count (set_num_threads, --threads, OMP_NUM_THREADS):
    it is then obeyed as it is, busy machine or not."""
    return _threads is not None or os.environ.get("OMP_NUM_THREADS", "").strip().isdigit()


def other_runnable() -> int | None:
    """How many threads of other programs are running or waiting for a core right now
    (Linux: /proc/stat's procs_running less this process's running threads); None where
    unknown."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            running = next(int(ln.split()[1]) for ln in f if ln.startswith("procs_running"))
        own = 0
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/stat", encoding="ascii",
                          errors="replace") as f:
                    own += f.read().rpartition(")")[2].split()[0] == "R"
            except (OSError, IndexError):
                pass
    except (OSError, StopIteration, ValueError):
        return None
    return max(0, running - max(own, 1))


def free_threads(wanted: int) -> int:
    """The threads worth using now for work whose results do not depend on the thread count
    (generation): `wanted`, or fewer when other programs keep cores busy. A kernel split over
    two threads waits at every step for the slower one, and a thread whose core another
    program holds is descheduled for whole time slices: one thread is then faster. A chosen
    count (count_is_chosen) is kept."""
    if wanted <= 1 or count_is_chosen():
        return wanted
    global _others
    now = time.monotonic()
    if now - _others[0] > LOAD_SAMPLE_SECONDS:      # /proc reads cost ~0.1 ms: not per call
        _others = (now, other_runnable())
    others = _others[1]
    if others is None:
        return wanted
    return max(1, min(wanted, usable_cores() - others))


LOAD_SAMPLE_SECONDS = 0.2
_others: tuple[float, int | None] = (-1e9, None)


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
