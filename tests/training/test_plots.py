"""Loss curves (terminal and files), the live chart of `train --plot`, the time budget and
`charforge compare` (one row per configuration, the same losses with --jobs 1 and 2)."""
import io
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
from conftest import FIXTURES

from charforge.training.curves import curves_from_records
from charforge.training.progress import ChartReporter
from charforge.training.settings import TrainConfig
from charforge.training.trainer import Trainer

CORPUS = str(FIXTURES / "tinyshakespeare_head.txt")
REQUIRE_PLOT = os.environ.get("CHARFORGE_REQUIRE_PLOT", "") not in ("", "0")


def needs_matplotlib():
    if REQUIRE_PLOT:
        import matplotlib  # noqa: F401  (CI: fail loudly)
    return pytest.importorskip("matplotlib")


def tiny_run(folder, cell="gru", steps=24, **kw):
    cfg = TrainConfig(corpus="textfile", corpus_options={"path": CORPUS}, cell=cell, layers=1,
                      hidden=16, embedding=8, batch=8, seq=32, max_steps=steps,
                      log_every=kw.pop("log_every", 4), eval_every=8, sample_length=0, seed=3,
                      **kw)
    return Trainer(cfg, folder).run()


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "charforge", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


def test_curves_on_each_axis():
    records = [{"step": 4, "loss": 4.0, "smooth_loss": 4.1, "val_loss": None, "lr": 0.1,
                "wall": 100.0},
               {"step": 8, "loss": 3.0, "smooth_loss": 3.5, "val_loss": 3.2, "lr": 0.05,
                "wall": 102.5}]
    steps = curves_from_records("r", records)
    assert steps.x == [4, 8] and steps.val_x == [8] and steps.val == [3.2]
    assert curves_from_records("r", records, "chars", 256).x == [1024, 2048]
    assert curves_from_records("r", records, "time").x == [0.0, 2.5]
    assert steps.smooth == [4.1, 3.5] and steps.lr == [0.1, 0.05]


def test_validation_is_drawn_at_the_step_it_was_measured(tmp_path):
    """eval_every=8 with log_every=3: the evaluations at 8, 16, 24 are drawn there (not at
    the next log line, 9, 18, 24), once each, however many log lines come between."""
    from charforge.training.curves import load_run
    tiny_run(tmp_path / "r", log_every=3)
    curves = load_run(tmp_path / "r")
    assert curves.val_x == [8, 16, 24] and len(curves.val) == 3
    assert curves.x == [3, 6, 9, 12, 15, 18, 21, 24]
    # a metrics file of an older charforge repeated the last validation on every line
    old = [{"step": s, "loss": 3.0, "val_loss": 2.5 if s < 12 else 2.0} for s in (4, 8, 12)]
    older = curves_from_records("r", [{"step": 2, "loss": 3.0, "val_loss": None}, *old])
    assert older.val_x == [4, 12] and older.val == [2.5, 2.0]


def test_the_learning_rate_is_drawn_on_its_own_row():
    """A constant lr of 0.002 at 80x24: the row labelled 0.002 holds the line, and no row
    is labelled with a value the run never had."""
    import plotext

    from charforge.training.curves import Curves, terminal_chart
    for lrs in ([0.002] * 50, [0.002 * 0.5 ** (i // 10) for i in range(50)]):
        run = Curves("r", x=list(range(0, 500, 10)), loss=[3.0] * 50, smooth=[3.0] * 50,
                     lr=lrs)
        chart = plotext.uncolorize(terminal_chart([run], width=80, height=24))
        lines = chart.splitlines()
        top = max(i for i, ln in enumerate(lines) if ln.strip().startswith("┌"))
        lower = lines[top + 1:]
        labelled = {ln.split("┤")[0].strip(): ln.split("┤")[1] for ln in lower if "┤" in ln}
        assert set(labelled) == {f"{v:.3g}" for v in (min(lrs), max(lrs))}, chart
        for label, row in labelled.items():
            assert any(ch not in " │⢕" for ch in row.replace("lr", "")), (label, chart)


def test_plot_in_the_terminal_and_overlaid(tmp_path):
    tiny_run(tmp_path / "a")
    tiny_run(tmp_path / "b", cell="rnn")
    one = cli("plot", "a", "--width", "90", "--height", "24", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert "loss (nats per character)" in one.stdout and "smoothed" in one.stdout
    assert "val" in one.stdout and "\x1b[" not in one.stdout             # a pipe: no colours
    both = cli("plot", "a", "b", "--x", "chars", cwd=tmp_path)
    assert "a smoothed" in both.stdout and "b smoothed" in both.stdout
    assert "characters seen" in both.stdout
    (tmp_path / "notes.txt").write_text("step 1 loss 3\n", encoding="utf-8")
    (tmp_path / "other.jsonl").write_text("not json\n", encoding="utf-8")
    for bad, message in ((["nope"], "not a run folder"), (["a", "--out", "x.txt"], "give a file "
                                                                                  "ending in"),
                         (["notes.txt"], "notes.txt is not a run folder"),
                         (["other.jsonl"], "none of its lines is a logged step")):
        failed = cli("plot", *bad, cwd=tmp_path)
        assert failed.returncode == 2 and message in failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1


def test_plot_files_are_written_and_decodable(tmp_path):
    needs_matplotlib()
    import matplotlib.image
    tiny_run(tmp_path / "a")
    for name in ("loss.png", "loss.svg", "loss.html"):
        done = cli("plot", "a", "--out", name, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / name).stat().st_size > 1000
    image = matplotlib.image.imread(tmp_path / "loss.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0     # not blank
    assert ET.parse(tmp_path / "loss.svg").getroot().tag.endswith("svg")
    assert "<svg" in (tmp_path / "loss.html").read_text(encoding="utf-8")
    again = cli("plot", "a", "--out", "loss.png", cwd=tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr


def test_a_file_without_matplotlib_is_a_one_line_hint(tmp_path):
    tiny_run(tmp_path / "a")
    code = ("import sys; sys.modules['matplotlib'] = None; from charforge.cli.main import main; "
            "sys.exit(main(['plot', 'a', '--out', 'x.png']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip() == ("charforge: error: writing a .png file needs matplotlib: pip "
                                   "install 'charforge[plot]' (the terminal chart needs "
                                   "nothing)")


def test_the_live_chart_beside_the_bar():
    from rich.console import Console
    buf = io.StringIO()
    reporter = ChartReporter(Console(file=buf, force_terminal=True, width=90))
    reporter.start(50, 0)
    for step in range(1, 30):
        if step == 20:
            reporter.evaluated(20, 3.0)
        reporter.update({"step": step, "epoch": 0, "loss": 4 - 0.05 * step,
                         "smooth_loss": 4 - 0.04 * step, "chars_per_s": 1000.0,
                         "val_loss": 3.0 if step >= 20 else None})
    reporter.progress.refresh()
    reporter.stop()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue())
    assert "smoothed" in text and "val" in text and "29/50" in text
    assert reporter.curves.val == [3.0] and len(reporter.curves.x) == 29


def test_train_plot_without_a_terminal_says_so(tmp_path):
    done = cli("train", "--corpus", "textfile", "--path", CORPUS, "--hidden", "8", "--layers",
               "1", "--max-steps", "2", "--plot", "--out", "run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--plot needs a terminal; logging lines instead" in done.stderr


def test_max_seconds_stops_the_run(tmp_path):
    result = tiny_run(tmp_path / "r", steps=0, epochs=1000, max_seconds=0.3)
    assert result.status == "budget" and result.step > 0
    from charforge.checkpoints.store import load
    assert load(tmp_path / "r", prefer="latest").meta["train"]["position"]["step"] == result.step


def _rows(folder):
    return json.loads((folder / "compare.json").read_text(encoding="utf-8"))["rows"]


def test_compare_gives_one_row_each_and_the_same_losses_in_parallel(tmp_path):
    common = ["compare", "--corpus", "textfile", "--path", CORPUS, "--hidden", "16",
              "--steps", "16", "--grid", "batch=8", "--grid", "seq=32", "--grid", "log_every=4"]
    one = cli(*common, "--jobs", "1", "--out", "one", "--report", "one.html", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    two = cli(*common, "--jobs", "2", "--out", "two", cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    a, b = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert [r["name"] for r in a] == ["rnn", "gru", "lstm"] == [r["name"] for r in b]
    for x, y in zip(a, b, strict=True):
        assert x["params"] == y["params"] and x["status"] == y["status"] == "budget"
        assert x["final_loss"] == pytest.approx(y["final_loss"], rel=1e-9)
        assert x["best_val"] == pytest.approx(y["best_val"], rel=1e-9)
    lines = one.stdout.splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line.strip()) == {"─"})
    assert [line.split()[0] for line in lines[rule + 1:rule + 4]] == ["rnn", "gru", "lstm"]
    for name in ("01-rnn", "02-gru", "03-lstm"):
        assert (tmp_path / "one" / name / "metrics.jsonl").is_file()
    report = (tmp_path / "one.html").read_text(encoding="utf-8")
    assert report.count("<tr>") == 4 and "lstm" in report


def test_compare_a_grid_and_its_mistakes(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine", encoding="utf-8")
    done = cli("compare", "--cells", "gru", "--corpus", "textfile", "--path", CORPUS,
               "--hidden", "8,16", "--grid", "lr=1e-3,3e-3", "--steps", "4", "--out", "g",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r["name"] for r in _rows(tmp_path / "g")] == [
        "gru hidden=8 lr=0.001", "gru hidden=8 lr=0.003", "gru hidden=16 lr=0.001",
        "gru hidden=16 lr=0.003"]
    for bad, message in ((["--steps", "4", "--grid", "lrr=1"], "unknown training setting"),
                         (["--steps", "4", "--grid", "lr=-1"], "lr must be"),
                         ([], "give the budget"),
                         (["--steps", "4", "--out", "g"], "comparison of other configurations"),
                         (["--steps", "4", "--out", "other"], "not an empty folder"),
                         (["--steps", "4", "--grid", "seed=1,2"], "the same for every"),
                         (["--steps", "4", "--cells", "gru,nope", "--out", "n"],
                          "unknown cell type 'nope'")):
        failed = cli("compare", "--cells", "gru", "--corpus", "textfile", "--path", CORPUS,
                     *bad, cwd=tmp_path)
        assert failed.returncode == 2, (bad, failed.stderr)
        assert len(failed.stderr.strip().splitlines()) == 1 and message in failed.stderr
    assert not (tmp_path / "n").exists()                   # found before any training


def test_compare_runs_a_sweep_space_as_its_grid_and_continues_where_it_stopped(tmp_path):
    """A sweep's space file is compare's grid (lists, and ranges with a step); a comparison
    stopped part-way and run again with the same command ends with the losses of one that
    never stopped (finished runs kept, the interrupted one resumed from its checkpoint)."""
    import signal
    (tmp_path / "space.toml").write_text(
        'cell = "gru"\nhidden = { low = 8, high = 16, step = 8 }\nbatch = 8\n'
        'seq = 32\nlog_every = 5\n', encoding="utf-8")
    common = ["compare", "--corpus", "textfile", "--path", CORPUS, "--space", "space.toml",
              "--steps", "1500"]
    whole = cli(*common, "--out", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    expected = _rows(tmp_path / "whole")
    assert [r["name"] for r in expected] == ["gru hidden=8", "gru hidden=16"]
    proc = subprocess.Popen([sys.executable, "-m", "charforge", *common, "--out", "part"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    second = tmp_path / "part" / "02-gru_hidden=16" / "metrics.jsonl"
    for _ in range(1200):
        if second.exists() and second.stat().st_size > 0 or proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, 130) and "Traceback" not in err, err
    again = cli(*common, "--out", "part", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    if proc.returncode == 130:
        assert "done before" in again.stdout
    rows = _rows(tmp_path / "part")
    assert [r["name"] for r in rows] == [r["name"] for r in expected]
    for x, y in zip(rows, expected, strict=True):
        assert x["status"] == y["status"] == "budget"
        assert x["final_loss"] == pytest.approx(y["final_loss"], rel=1e-9)
        assert x["best_val"] == pytest.approx(y["best_val"], rel=1e-9)
    ranged = tmp_path / "ranged.toml"
    ranged.write_text("hidden = { low = 8, high = 16 }\n", encoding="utf-8")
    failed = cli("compare", "--corpus", "textfile", "--path", CORPUS, "--space", "ranged.toml",
                 "--steps", "4", cwd=tmp_path)
    assert failed.returncode == 2 and "a grid needs the values of hidden" in failed.stderr


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_stopped_comparison_saves_its_runs_and_starts_no_more(tmp_path, jobs):
    """SIGINT to compare alone (a scheduler's kill, not a terminal's Ctrl-C): the runs in
    progress save and stop, the rest never start, exit 130; every folder resumes."""
    import signal
    proc = subprocess.Popen([sys.executable, "-m", "charforge", "compare", "--corpus",
                             "textfile", "--path", CORPUS, "--hidden", "16", "--steps",
                             "1000000", "--jobs", jobs, "--out", "c"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = tmp_path / "c" / "01-rnn" / "metrics.jsonl"
    for _ in range(600):
        if first.exists() and first.stat().st_size > 0:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "charforge: stopped with" in err and "Traceback" not in err
    folders = sorted(p.name for p in (tmp_path / "c").iterdir() if p.is_dir())
    assert folders == (["01-rnn"] if jobs == "1" else ["01-rnn", "02-gru"])
    for name in folders:
        assert f"done: {name[3:]} (interrupted" in out
        again = cli("train", "--resume", f"c/{name}", "--max-steps", "1", cwd=tmp_path)
        assert again.returncode == 0, again.stderr


def test_the_comparison_table_keeps_every_setting_whole_at_80_columns():
    """Piped or at 80 columns, lr=0.001 and lr=0.002 stay readable (no 'lr=0.0...')."""
    from rich.console import Console

    from charforge.training.compare import Row, compact, table
    names = ["gru hidden=256 lr=0.001 seq=100", "gru hidden=256 lr=0.002 seq=100",
             "lstm hidden=1024 lr=0.002 seq=50 dropout=0.25"]
    rows = [Row(n, 12_345_678, 45_678.0, 1.234, 1.345, 100.0, "interrupted", "f", [], 12.5)
            for n in names]
    buf = io.StringIO()
    Console(file=buf, width=80).print(table(rows, 1.5))
    lines = buf.getvalue().splitlines()
    assert max(len(ln) for ln in lines) <= 80
    words = [w for ln in lines for w in ln.split()]
    for name in names:
        assert all(w in words for w in name.split()), (name, buf.getvalue())
    assert words.count("interrupted") == 3 and words.count("12.3M") == 3
    assert [compact(n) for n in (950, 45_678, 12_345_678, 123_456_789)] == \
        ["950", "45.7k", "12.3M", "123M"]
