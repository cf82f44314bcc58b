"""Train several configurations on the same data order, seed and budget, and compare them:
parameters, speed, losses and the time each took to reach a common loss, as the Keras family
post compares SimpleRNN, GRU and LSTM. Also a grid search over any run settings (the grid of
a sweep's space file), each configuration a trial run by the sweeps' own runner (trials.py).

Configurations run one after another, or in `jobs` processes that divide the machine's
threads between them; the losses do not depend on which (the kernels give the same results
on any thread count), only the speeds do. `compare.json` is written as each one ends, so the
same command again continues a stopped comparison: finished runs kept, interrupted ones
resumed from their checkpoints.
"""
from __future__ import annotations

import itertools
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core.errors import CharforgeError
from .settings import TrainConfig, parse_text


@dataclass
class Entry:
    name: str
    settings: dict[str, Any]
    folder: str
    resume: bool = False          # continue the folder's run from its checkpoint
    earlier_wall: float = 0.0     # seconds it trained before it was interrupted


@dataclass
class Row:
    """One configuration's results."""
    name: str
    params: int
    chars_per_s: float
    final_loss: float | None
    best_val: float | None
    wall: float
    status: str
    folder: str
    curve: list[tuple[float, float]]          # (seconds since start, smoothed loss)
    time_to_target: float | None = None
    signal: int | None = None                 # the stop signal that interrupted this run


def grid(base: dict[str, Any], cells: list[str],
         axes: dict[str, list[Any]]) -> list[tuple[str, dict]]:
    """Every combination of the cells and the axes' values (typed, or text as on the command
    line) over the base settings, each checked against the schema; names like
    'gru hidden=256 lr=0.001'."""
    from ..data.corpora import get_corpus
    from ..nn.cells import get_cell
    for cell in cells:                       # a misspelt cell fails before any training
        get_cell(cell)
    get_corpus(base.get("corpus", "shakespeare"))
    typed = {k: [parse_text(k, v) if isinstance(v, str) else v for v in values]
             for k, values in axes.items()}
    out = []
    for cell in cells:
        for combo in itertools.product(*typed.values()) if typed else [()]:
            settings = dict(base, cell=cell, **dict(zip(typed, combo, strict=True)))
            TrainConfig.from_dict(settings).validate()
            varying = [f"{k}={v}" for k, v in zip(typed, combo, strict=True) if len(typed[k]) > 1]
            out.append((" ".join([cell, *varying]), settings))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise CharforgeError("two configurations are the same; give each setting's values once")
    return out


def plan(base: dict[str, Any], cells: list[str], axes: dict[str, list[Any]],
         out: Path) -> list[Entry]:
    """The runs, each with its own folder under `out`."""
    entries = []
    for k, (name, settings) in enumerate(grid(base, cells, axes)):
        slug = "".join(ch if ch.isalnum() or ch in "=._-" else "_" for ch in name)
        entries.append(Entry(name, settings, str(out / f"{k + 1:02d}-{slug}")))
    return entries


class _NotStarted(Exception):
    """A queued configuration that the stop reached before it began."""


_STOP = None          # in a pool's worker: the parent's "stop now" (a multiprocessing Event)


def _init_worker(stop) -> None:
    global _STOP
    _STOP = stop


def _run_entry(entry: Entry, threads: int) -> Row:
    """Train one configuration into its folder, quietly; a process pool's task."""
    from ..core.threads import set_num_threads
    from .runfolder import read_metrics
    from .trainer import TrainingCallback
    from .trials import train_trial

    class StopWhenAsked(TrainingCallback):
        """The parent was stopped (a signal only it received): save and stop here too."""

        def on_step(self, trainer, metrics):
            if _STOP is not None and _STOP.is_set():
                trainer.request_stop()
    if _STOP is not None and _STOP.is_set():
        raise _NotStarted                     # queued before the stop: not begun at all
    set_num_threads(threads)
    run = train_trial(entry.settings, entry.folder, callbacks=[StopWhenAsked()],
                      resume=entry.resume)
    trainer, result, wall = run.trainer, run.result, run.wall + entry.earlier_wall
    final_val = trainer.validate()          # every row gets a validation loss at its end
    best_val = min(v for v in (result.best_val, final_val) if v is not None) \
        if (result.best_val, final_val) != (None, None) else None
    records, _ = read_metrics(Path(entry.folder) / "metrics.jsonl")
    logged = [r for r in records if isinstance(r.get("loss"), (int, float))]
    wall0 = logged[0]["wall"] - 1e-9 if logged else 0.0
    speeds = [r["chars_per_s"] for r in logged if r.get("chars_per_s")]
    return Row(entry.name, trainer.model.param_count,
               sorted(speeds)[len(speeds) // 2] if speeds else 0.0,
               trainer.smooth_loss if logged else None, best_val, wall, result.status,
               entry.folder, [(r["wall"] - wall0, r["smooth_loss"]) for r in logged],
               signal=result.signal)


def run(entries: list[Entry], jobs: int = 1, threads: int | None = None,
        on_done=None) -> tuple[list[Row], int | None]:
    """Train the entries (in `jobs` processes, the threads divided): the rows in entry order
    and the stop signal, if one came. A stop (Ctrl-C, SIGTERM) ends the comparison: each run
    that was training saves its checkpoint and stops, and no further one starts."""
    from ..core.threads import get_num_threads
    total = threads or get_num_threads()
    rows: list[Row] = []

    def done(row: Row) -> bool:
        rows.append(row)
        if on_done:
            on_done(row)
        return row.signal is not None
    if jobs <= 1:
        for e in entries:
            if done(_run_entry(e, total)):
                return rows, rows[-1].signal
        return rows, None
    import multiprocessing
    stop = multiprocessing.Event()
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(stop,))
    futures = [pool.submit(_run_entry, e, max(1, total // jobs)) for e in entries]
    stopped = None
    try:
        for f in futures:
            if done(f.result()):
                stopped = rows[-1].signal
                break
    except KeyboardInterrupt as exc:           # the running workers save and stop
        stopped = int(getattr(exc, "signum", 2))
        stop.set()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for f in futures[len(rows):]:              # runs that finished or saved meanwhile
        if f.done() and not f.cancelled() and f.exception() is None:
            done(f.result())
    return rows, stopped if stopped is not None else next(
        (r.signal for r in rows if r.signal is not None), None)


def with_target(rows: list[Row], target: float | None = None) -> float | None:
    """Fill in each row's time to reach `target` (default: the highest final loss, a loss
    every configuration reached); returns the target used."""
    finals = [r.final_loss for r in rows if r.final_loss is not None]
    if target is None:
        target = max(finals) if finals else None
    for r in rows:
        r.time_to_target = next((t for t, loss in r.curve if loss <= target), None) \
            if target is not None else None
    return target


def table(rows: list[Row], target: float | None):
    from rich import box
    from rich.table import Table
    t = Table(title="comparison" + (f" (target loss {target:.3f})" if target else ""),
              box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    # the configuration tells the rows apart, so no setting in it is ever cut (a cut
    # 'lr=0.0...' hid 0.001 vs 0.002): a narrow table wraps it between settings, and the
    # numbers are compact (compare.json and the report keep them whole)
    widest = max(len(word) for r in rows for word in r.name.split()) if rows else 0
    t.add_column("configuration", min_width=max(widest, 6), overflow="fold")
    for col in ("params", "chars/s", "train\nloss", "best\nval", "time to\ntarget", "wall\ns"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("status", no_wrap=True)

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)
    for r in rows:
        t.add_row(r.name, compact(r.params), compact(r.chars_per_s), num(r.final_loss, ".3f"),
                  num(r.best_val, ".3f"), num(r.time_to_target, ".1f"), f"{r.wall:.1f}",
                  r.status)
    return t


def compact(n: float) -> str:
    """12,345,678 -> '12.3M', 45,678 -> '45.7k', 950 -> '950'."""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}" if abs(n) < 100 * size else f"{n / size:.0f}{unit}"
    return f"{n:.0f}"


def curves(rows: list[Row]) -> list:
    """The loss curves of the rows' runs, named as the table names them (runs too short to
    log a step have none)."""
    from .curves import load_run
    runs = []
    for r in rows:
        if r.curve:
            c = load_run(r.folder)
            c.name = r.name
            runs.append(c)
    return runs


SUMMARY = "compare.json"


def _planned(entries: list[Entry]) -> list[dict[str, Any]]:
    return json.loads(json.dumps([{"name": e.name, "settings": e.settings,
                                   "folder": Path(e.folder).name} for e in entries]))


def save_summary(rows: list[Row], target: float | None, out: Path,
                 entries: list[Entry] | None = None) -> Path:
    """compare.json: the table's rows and the plan they belong to (rewritten as each
    configuration ends, so a stopped comparison knows what is left)."""
    path = out / SUMMARY
    data: dict[str, Any] = {"target": target, "rows": [asdict(r) for r in rows]}
    if entries is not None:
        data["plan"] = _planned(entries)
    elif path.exists():
        data["plan"] = json.loads(path.read_text(encoding="utf-8")).get("plan")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(path)
    return path


def continuation(entries: list[Entry], out: Path) -> tuple[list[Row], list[Entry]]:
    """For `out` holding an earlier run of the same comparison: the rows it finished (kept),
    and the entries left, an interrupted one marked to resume from its checkpoint. One line
    when `out` holds something else."""
    path = out / SUMMARY
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CharforgeError(f"--out {out} exists and is not an empty folder; choose "
                             "another") from None
    except (OSError, ValueError) as exc:
        raise CharforgeError(f"cannot read {path}: {exc}") from None
    if data.get("plan") != _planned(entries):
        raise CharforgeError(f"--out {out} holds a comparison of other configurations; choose "
                             "another folder (the same command continues that one)")
    earlier = {r["name"]: Row(**{**r, "curve": [tuple(p) for p in r["curve"]]})
               for r in data.get("rows", [])}
    kept, left = [], []
    for e in entries:
        row = earlier.get(e.name)
        if row is not None and row.signal is None:
            kept.append(row)
            continue
        left.append(Entry(e.name, e.settings, e.folder, resume=True,
                          earlier_wall=row.wall if row is not None else 0.0))
    return kept, left


def write_report(rows: list[Row], target: float | None, path: Path) -> Path:
    """An HTML report (the table and, with matplotlib, the curves inline) or a PNG/SVG of
    the curves."""
    from .curves import save_chart
    runs = curves(rows)
    if path.suffix.lower() != ".html":
        if not runs:
            raise CharforgeError("no run logged a step, so there are no curves to draw")
        return save_chart(runs, path, raw=False)
    import html
    head = ("configuration", "params", "chars/s", "train loss", "best val", "time to target s",
            "wall s", "status")

    def cell(v, fmt=""):
        return "-" if v is None else html.escape(format(v, fmt))
    body = "".join(
        f"<tr><td>{html.escape(r.name)}</td><td>{r.params:,}</td><td>{r.chars_per_s:,.0f}</td>"
        f"<td>{cell(r.final_loss, '.3f')}</td><td>{cell(r.best_val, '.3f')}</td>"
        f"<td>{cell(r.time_to_target, '.1f')}</td><td>{r.wall:.1f}</td><td>{r.status}</td></tr>"
        for r in rows)
    chart = "<p>(install charforge[plot] for the loss curves)</p>"
    if runs and _has_matplotlib():
        svg_path = path.with_suffix(".tmp.svg")
        save_chart(runs, svg_path, raw=False)
        chart = svg_path.read_text(encoding="utf-8")
        svg_path.unlink()
    title = f"charforge compare (target loss {target:.3f})" if target else "charforge compare"
    path.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:1em}table{border-collapse:collapse}"
        "td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>"
        f"<h2>{title}</h2><table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{body}"
        f"</table>{chart}</body></html>", encoding="utf-8")
    return path


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401  (the report's chart is optional)
    except ImportError:
        return False
    return True
