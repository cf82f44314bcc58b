"""The instruction-set level the kernels run at, and the CHARFORGE_CPU switch that lowers it.

The compiled vector loops exist once per level (`_kernels/cf_levels.h`); the kernels run the
highest the CPU has. Setting CHARFORGE_CPU to a lower level makes one machine run the code an
older CPU would, which is how the tests prove that every level gives the same results. The
variable is read once per process, when the kernels first run.
"""
from __future__ import annotations

import os

from .errors import CharforgeError

CPU_ENV = "CHARFORGE_CPU"
LEVELS = ("baseline", "avx2", "avx512")
_TITLES = {"baseline": "baseline (x86-64 SSE2, or the platform's own)",
           "avx2": "AVX2 + FMA (x86-64-v3)", "avx512": "AVX-512 (x86-64-v4)"}


def requested_level() -> str | None:
    """The level CHARFORGE_CPU names, None when unset; a misspelling is an error."""
    value = os.environ.get(CPU_ENV, "").strip()
    if not value:
        return None
    if value not in LEVELS:
        raise CharforgeError(f"{CPU_ENV}={value!r} is not a level: use "
                             f"{', '.join(LEVELS)}, or unset it to use the CPU's best")
    return value


def running_level() -> str:
    """The level the kernels run at in this process."""
    from .._kernels import ops
    return LEVELS[ops.cpu_level()]


def hardware_level() -> str:
    """The highest level this CPU supports."""
    from .._kernels import ops
    return LEVELS[ops.hardware_cpu_level()]


def describe() -> str:
    """One line for `charforge info`: what runs and why."""
    running, best = running_level(), hardware_level()
    wanted = requested_level()
    text = _TITLES[running]
    if wanted is None:
        return text
    if LEVELS.index(wanted) > LEVELS.index(best):
        return f"{text} ({CPU_ENV}={wanted} asks for more than this CPU has)"
    return f"{text} (lowered by {CPU_ENV}={wanted}; this CPU has {best})"
