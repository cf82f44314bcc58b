"""The code base stays ruff-clean (ruff comes with the test extras)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_clean():
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.fail("ruff is missing: install the test extras (pip install '.[test]')")
    result = subprocess.run([ruff, "check", "src", "tests", "benchmarks", "examples", "scripts",
                             "plugins"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
