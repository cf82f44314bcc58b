"""Every instruction-set level gives the same results (cf_levels.h, charforge/cpu.py): the
probe runs once per level this CPU has, forced with CHARFORGE_CPU, and each must match the
float64 reference, and the others: the same generated texts and the same training run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from charforge.core.cpu import LEVELS, hardware_level

PROBE = Path(__file__).with_name("cpu_level_probe.py")
CORPUS = Path(__file__).parents[1] / "fixtures" / "tinyshakespeare_head.txt"
AVAILABLE = LEVELS[: LEVELS.index(hardware_level()) + 1]


@pytest.fixture(scope="module")
def reports():
    out = {}
    for level in AVAILABLE:
        env = dict(os.environ, CHARFORGE_CPU=level)
        done = subprocess.run([sys.executable, str(PROBE), str(CORPUS)], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        out[level] = json.loads(done.stdout.splitlines()[-1])
    return out


def test_each_level_runs_when_asked(reports):
    for level, report in reports.items():
        assert LEVELS[report["level"]] == level
        assert report["packed_gemm"] == (level == "avx512")
    if len(reports) > 1:        # different code ran: the last bits of the losses differ
        losses = {level: [r["cells"][c]["loss"] for c in r["cells"]]
                  for level, r in reports.items()}
        assert losses["baseline"] != losses[AVAILABLE[-1]]


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_each_level_matches_the_reference(reports, cell):
    for level, report in reports.items():
        got = report["cells"][cell]
        assert got["loss"] == pytest.approx(got["ref_loss"], rel=1e-5), level
        assert got["grad_err"] < 1e-4, (level, got["grad_err"])


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_levels_agree_with_each_other(reports, cell):
    base = reports["baseline"]["cells"][cell]
    for level, report in reports.items():
        got = report["cells"][cell]
        assert got["loss"] == pytest.approx(base["loss"], rel=1e-6), level
        assert got["texts"] == base["texts"], level
        np.testing.assert_allclose(got["probs"], base["probs"], rtol=1e-4, atol=1e-6,
                                   err_msg=level)


def test_training_agrees_across_levels(reports):
    base = reports["baseline"]["training"]
    for level, report in reports.items():
        got = report["training"]
        assert got["best_val"] == pytest.approx(base["best_val"], rel=1e-5), level
        np.testing.assert_allclose(got["params"], base["params"], rtol=1e-4, atol=1e-5,
                                   err_msg=level)


def test_a_misspelt_level_is_one_line():
    env = dict(os.environ, CHARFORGE_CPU="avx3")
    done = subprocess.run([sys.executable, "-m", "charforge", "info"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "charforge: error: CHARFORGE_CPU='avx3' is not a level: use baseline, avx2, avx512, "
        "avx512_bf16, amx, or unset it to use the CPU's best"]
