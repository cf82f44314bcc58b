"""`charforge info`: what this installation runs on (threads, which kernels, which BLAS, where
its files live), for a bug report or a slow machine."""
from __future__ import annotations

import os
import platform
import sys


def _isa() -> str:
    """The instruction-set level the compiled clones pick on this CPU (Linux: from cpuinfo)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        return f"unknown ({platform.machine()})"
    if "avx512f" in flags:
        return "AVX-512 (x86-64-v4)" + (", AVX512-BF16" if "avx512_bf16" in flags else "")
    if "avx2" in flags:
        return "AVX2 (x86-64-v3)"
    return f"baseline ({platform.machine()})"


def info() -> list[tuple[str, str]]:
    """(label, value) rows."""
    from threadpoolctl import threadpool_info

    from . import threads
    from ._kernels import ops
    from ._version import __version__
    from .corpora.download import DATA_ENV, OFFLINE_ENV, cache_dir, data_dir
    from .paths import user_data_folder
    n = threads.get_num_threads()
    how = "chosen" if threads.count_is_chosen() else "default: the usable cores"
    others = threads.other_runnable()
    busy = "unknown" if others is None else f"{others} other running thread(s) now; " \
        f"generation would use {threads.free_threads(n)}"
    blas = ", ".join(sorted({f"{i.get('internal_api')} {i.get('version') or ''} "
                             f"({i.get('num_threads')} threads)".replace("  ", " ")
                             for i in threadpool_info() if i.get("user_api") == "blas"}))
    return [
        ("charforge", f"{__version__} (Python {sys.version.split()[0]}, {platform.system()})"),
        ("threads", f"{n} ({how}); {busy}"),
        ("OpenMP", "yes" if ops.openmp_enabled() else "no (built without it: one thread)"),
        ("instruction set", _isa()),
        ("packed GEMM", "on" if ops.packed_gemm_available() else
         "off (needs AVX-512F; CHARFORGE_PACKED_GEMM=0 turns it off)"),
        ("BLAS", blas or "none found"),
        ("data folder", f"{data_dir() or 'unset'} ({DATA_ENV})"),
        ("downloads", "forbidden (CHARFORGE_OFFLINE)" if os.environ.get(OFFLINE_ENV, "")
         not in ("", "0") else "allowed"),
        ("cache", str(cache_dir())),
        ("REPL history and runs", str(user_data_folder())),
    ]


def print_info() -> None:
    width = max(len(k) for k, _ in info())
    for label, value in info():
        print(f"{label:<{width}}  {value}")
