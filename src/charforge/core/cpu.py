"""The instruction-set level the kernels run at, and the CHARFORGE_CPU switch that lowers it.

The compiled vector loops exist once per level (`_kernels/cf_levels.h`); the kernels run the
highest the CPU has. Setting CHARFORGE_CPU to a lower level makes one machine run the code an
older CPU would, which is how the tests prove that every level gives the same results. The
variable is read once per process, when the kernels first run.

bf16 products have paths of their own above AVX-512 (`_kernels/cf_bf16.h`): AMX tiles, AVX512-BF16
(vdpbf16ps), or an exact emulation in float32. CHARFORGE_CPU=avx512_bf16 stops below AMX, and
any of the vector levels leaves only the emulation.
"""
from __future__ import annotations

import os

from .errors import CharforgeError

CPU_ENV = "CHARFORGE_CPU"
LEVELS = ("baseline", "avx2", "avx512")
BF16_PATHS = ("emulated", "avx512_bf16", "amx")
NAMES = LEVELS + BF16_PATHS[1:]         # what CHARFORGE_CPU accepts, lowest first
_TITLES = {"baseline": "baseline (x86-64 SSE2, or the platform's own)",
           "avx2": "AVX2 + FMA (x86-64-v3)", "avx512": "AVX-512 (x86-64-v4)"}
_BF16_TITLES = {"emulated": "emulated in float32 (exact rounding, no bf16 instructions)",
                "avx512_bf16": "AVX512-BF16 (vdpbf16ps)", "amx": "AMX tiles (tdpbf16ps)"}


def requested_level() -> str | None:
    """The level CHARFORGE_CPU names, None when unset; a misspelling is an error."""
    value = os.environ.get(CPU_ENV, "").strip()
    if not value:
        return None
    if value not in NAMES:
        raise CharforgeError(f"{CPU_ENV}={value!r} is not a level: use "
                             f"{', '.join(NAMES)}, or unset it to use the CPU's best")
    return value


def running_level() -> str:
    """The level the kernels run at in this process."""
    from .._kernels import ops
    return LEVELS[ops.cpu_level()]


def hardware_level() -> str:
    """The highest level this CPU supports."""
    from .._kernels import ops
    return LEVELS[ops.hardware_cpu_level()]


def bf16_path() -> str:
    """The path bf16 products take in this process (one of BF16_PATHS)."""
    from .._kernels import ops
    return BF16_PATHS[ops.bf16_level()]


def hardware_bf16_path() -> str:
    """The best bf16 path this CPU (and, for AMX, the operating system) allows."""
    from .._kernels import ops
    return BF16_PATHS[ops.hardware_bf16_level()]


def _best_name() -> str:
    best = hardware_bf16_path()
    return best if best != "emulated" else hardware_level()


def describe() -> str:
    """One line for `charforge info`: what runs and why."""
    running = _TITLES[running_level()]
    text = f"{running}; bf16 products: {_BF16_TITLES[bf16_path()]}"
    wanted, best = requested_level(), _best_name()
    if wanted is None:
        return text
    if NAMES.index(wanted) > NAMES.index(best):
        return f"{text} ({CPU_ENV}={wanted} asks for more than this CPU has)"
    return f"{text} (lowered by {CPU_ENV}={wanted}; this CPU has {best})"
