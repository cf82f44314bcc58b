"""Smoke test of an installed charforge (a wheel in a fresh venv), run from outside the source
tree: the package imports from site-packages, its compiled kernels and its pretrained model
are there, and the command works end to end (version, generate, one training step, plugins).
Exits 1 naming the first thing missing. Used by .ci/run and cibuildwheel's test-command."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

KERNELS = ("ops", "optim", "lstm", "gru", "rnn", "sample", "generate", "textenc")


def fail(what: str) -> None:
    print(f"smoke test: FAILED: {what}", file=sys.stderr)
    sys.exit(1)


def run_cli(*args: str, cwd: Path, cpu: str | None = None) -> str:
    env = dict(os.environ, **({"CHARFORGE_CPU": cpu} if cpu else {}))
    done = subprocess.run([sys.executable, "-m", "charforge", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        fail(f"charforge {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def main() -> None:
    import charforge
    where = Path(charforge.__file__).resolve().parent
    if "site-packages" not in where.parts and "dist-packages" not in where.parts:
        fail(f"charforge imported from {where}, not from an installed package")
    for name in KERNELS:
        if importlib.util.find_spec(f"charforge._kernels.{name}") is None:
            fail(f"the compiled kernel charforge._kernels.{name} is missing")
    if not list((where / "checkpoints" / "shipped").glob("*.safetensors")):
        fail("the pretrained model is missing from the package")
    for page in ("viz/page.html", "serve/page.html"):
        if not (where / page).is_file():
            fail(f"the page template {page} is missing from the package")
    if not (where / "py.typed").exists():
        fail("py.typed is missing from the package")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        version = run_cli("--version", cwd=tmp).strip()
        if charforge.__version__ not in version:
            fail(f"--version says {version!r}, the package {charforge.__version__}")
        text = run_cli("generate", "--prime", "ROMEO:", "--length", "80", "--seed", "1",
                         cwd=tmp)
        if not text.startswith("ROMEO:") or len(text) < 80:
            fail(f"generate printed {text!r}")
        from charforge.core.cpu import LEVELS, hardware_level
        for level in LEVELS[:LEVELS.index(hardware_level())]:   # the wheel carries each level
            lower = run_cli("generate", "--prime", "ROMEO:", "--length", "80", "--seed", "1",
                            cwd=tmp, cpu=level)
            if lower != text:
                fail(f"CHARFORGE_CPU={level} generated {lower!r}, the CPU's best {text!r}")
        corpus = tmp / "tiny.txt"
        corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 60, encoding="utf-8")
        run_cli("train", "--corpus", "textfile", "--path", str(corpus), "--cell", "gru",
                  "--layers", "1", "--hidden", "16", "--embedding", "8", "--batch", "4",
                  "--seq", "16", "--max-steps", "1", "--out", str(tmp / "run"), cwd=tmp)
        if not list((tmp / "run").glob("*.safetensors")):
            fail("one training step wrote no checkpoint")
        listing = run_cli("plugins", cwd=tmp)
        if "charforge.builtins" not in listing:
            fail(f"charforge plugins lists no built-in plugins: {listing!r}")
        print(f"smoke test: {version} from {where}: kernels, pretrained model, generate, "
              "train, plugins and every CPU level all work")


if __name__ == "__main__":
    main()
