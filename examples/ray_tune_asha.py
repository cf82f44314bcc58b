"""The space of a `charforge sweep` under Ray Tune with ASHA: the trials spread over the CPUs
of a Ray cluster (here a local one), ASHA stops the poor ones early on their validation
losses, and each trial is a charforge run folder checkpointed through Ray's storage.

    python examples/ray_tune_asha.py --space space.toml --trials 16 --steps 2000
    python examples/ray_tune_asha.py --quick --path my_book.txt
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from _common import parser, run, run_dir

QUICK_SPACE = """corpus = "textfile"
corpus_options = {{ path = "{path}" }}
cell = "rnn"
hidden = 16
embedding = 8
batch = 8
seq = 32
eval_every = 10
sample_length = 0
lr = [0.003, 0.01]
"""


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--space", help="a charforge sweep space file (TOML)")
    p.add_argument("--path", help="with --quick: the text to train on")
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--steps", type=int, default=1000, help="training steps per trial at most")
    p.add_argument("--cpus-per-trial", type=int, default=1)
    args = p.parse_args()
    from charforge.integrations.ray import require_ray, search_space, trainable
    ray, tune = require_ray()
    out = run_dir(args, "ray")
    space_file = args.space
    if args.quick:
        if not args.path:
            p.error("--quick needs --path FILE (a text to train on)")
        space_file = Path(tempfile.mkdtemp()) / "space.toml"
        space_file.write_text(QUICK_SPACE.format(path=Path(args.path).resolve()),
                              encoding="utf-8")
        args.trials, args.steps = 2, 40
    if not space_file:
        p.error("give --space FILE (or --quick)")
    ray.init(num_cpus=max(2, args.cpus_per_trial), include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": args.cpus_per_trial}),
        param_space=search_space(space_file, steps=args.steps),
        tune_config=tune.TuneConfig(metric="val_loss", mode="min", num_samples=args.trials,
                                    scheduler=tune.schedulers.ASHAScheduler(grace_period=2)),
        run_config=tune.RunConfig(storage_path=str(Path(out).resolve()), name="asha",
                                  verbose=0))
    results = tuner.fit()
    varying = [k for k in results[0].config
               if len({repr(r.config.get(k)) for r in results}) > 1]
    for r in sorted(results, key=lambda r: r.metrics.get("val_loss", float("inf"))):
        searched = {k: r.config[k] for k in varying}
        print(f"val loss {r.metrics.get('val_loss', float('nan')):.4f} after "
              f"{r.metrics.get('step')} steps, {searched}, checkpoint "
              f"{'kept' if r.checkpoint else 'none'}")
    best = results.get_best_result()
    print(f"best: val loss {best.metrics['val_loss']:.4f}, its checkpoint {best.checkpoint.path}")
    ray.shutdown()


if __name__ == "__main__":
    run(main)
