"""`charforge info`: what this installation runs on (threads, which kernels, which BLAS, where
its files live), for a bug report or a slow machine."""
from __future__ import annotations

import os
import platform
import sys


def _cpu_extras() -> str:
    """Features beyond the levels that this CPU has (Linux: from cpuinfo), for bug reports."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        return f"; {platform.machine()}"
    known = (("avx512_bf16", "AVX512-BF16"), ("avx512_fp16", "AVX512-FP16"), ("amx_tile", "AMX"))
    extras = [name for flag, name in known if flag in flags]
    return f"; {platform.machine()}" + (f", {', '.join(extras)}" if extras else "")


def info() -> list[tuple[str, str]]:
    """(label, value) rows."""
    from threadpoolctl import threadpool_info

    from .._kernels import ops
    from .._version import __version__
    from ..core import cpu, threads
    from ..core.paths import user_data_folder
    from ..data.corpora.download import DATA_ENV, OFFLINE_ENV, cache_dir, data_dir
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
        ("instruction set", cpu.describe() + _cpu_extras()),
        ("packed GEMM", "on" if ops.packed_gemm_available() else
         "off (needs the AVX-512 level; CHARFORGE_PACKED_GEMM=0 turns it off)"),
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


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="threads, kernels, BLAS and folders of this installation")
    p.set_defaults(func=cmd_info)


def cmd_info(args) -> int:
    print_info()
    return 0
