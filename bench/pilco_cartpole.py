"""PILCO's trials to success on cart-pole swing-up (issue 42's PILCO claim), through the real
topology (`Driver`: a rollout worker plays each trial, the learner fits), several seeds.

Success, stated before the runs: a trial whose pole tip stays within --threshold (0.1 m) of its
upright target over the trial's last 5 steps (0.5 s of the 2.5 s trial), the trial played by
the policy as trained (PILCO's policy is deterministic; trial 1 is random). Trials to success:
the first such trial's number, the random one counted; interaction time = trials x 2.5 s (the
papers: about 17.5 s, i.e. 7 trials of 2.5 s).

Usage: .venv/bin/python bench/pilco_cartpole.py [--preset pilco-cartpole-swingup]
         [--seeds 0 1 2 3 4] [--trials 10]
         [--threshold 0.1] [--out bench/results/pilco-cartpole] [--set KEY=VALUE ...]
Each seed's JSON is kept in --out and reused when present; then summary.md and trials.png.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from lst_figure3 import new_axes, save  # bench/ is the script's sys.path[0]

from mbrl_ray.config import apply_overrides, load_preset

TRIAL_STEPS, TRIAL_SECONDS = 25, 2.5
TAGS = ("pilco_trial_end_distance", "pilco_trial_cost", "pilco_trial_predicted_cost")


def run_seed(seed: int, args) -> dict:
    """One run of `--trials` trials -> per trial (1-based): end distance, actual cost and the
    cost predicted for the policy that played it; the learner's seconds per fit; wall-clock."""
    from mbrl_ray.distributed.driver import Driver

    cfg = apply_overrides(load_preset(args.preset),
                          [f"train.seed={seed}", f"train.steps={TRIAL_STEPS * args.trials}",
                           *args.set])
    run_dir = args.work / f"seed{seed}"
    t0 = time.monotonic()
    Driver(cfg, run_dir, printer=lambda *a, **k: None).run()
    return read_run(run_dir, seed, time.monotonic() - t0)


def read_run(run_dir: Path, seed: int, seconds: float | None = None,
             trials: int | None = None) -> dict:
    """A run's per-trial record from its TensorBoard log; `trials`: its first trials only (a
    longer run stopped early: --from-run). seconds: the run's wall clock, else the log's span
    from the first fit's start to the end of the last fit kept (start-up and trial 1's play
    not counted)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    fits = acc.Scalars("perf/train_s")[:trials]
    out = {"seed": seed, "fit_seconds": [e.value for e in fits],
           "seconds": seconds if seconds is not None else fits[-1].wall_time - fits[0].wall_time
           + fits[0].value}
    for tag in TAGS:
        out[tag] = {e.step // TRIAL_STEPS: e.value for e in acc.Scalars(f"losses/{tag}")
                    if trials is None or e.step // TRIAL_STEPS <= trials}
    return out


def trials_to_success(run: dict, threshold: float) -> int | None:
    hits = [int(k) for k, d in run["pilco_trial_end_distance"].items() if d < threshold]
    return min(hits) if hits else None


def summarise(runs: dict, args) -> str:
    seeds = sorted(runs)
    lines = [f"# {args.preset}: {len(seeds)} seeds, {args.trials} trials of "
             f"{TRIAL_SECONDS} s", "",
             f"Success: the pole tip within {args.threshold} m of its upright target over a "
             "trial's last 5 steps (0.5 s); trial 1 is random."
             + (f" Overrides: {' '.join(args.set)}." if getattr(args, "set", None) else ""), "",
             "| seed | trials to success | interaction s | successes in the last 3 trials | "
             "end distance per trial (m) | learner s per fit (mean) | run s |",
             "| ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
    for s in seeds:
        r = runs[s]
        k = trials_to_success(r, args.threshold)
        dist = " ".join(f"{r['pilco_trial_end_distance'][str(t)]:.2f}"
                        for t in range(1, args.trials + 1)
                        if str(t) in r["pilco_trial_end_distance"])
        last = [r["pilco_trial_end_distance"].get(str(t), np.inf)
                for t in range(args.trials - 2, args.trials + 1)]
        lines.append(f"| {s} | {k or 'none'} | {k * TRIAL_SECONDS if k else '-'} | "
                     f"{sum(d < args.threshold for d in last)} / 3 | {dist} | "
                     f"{np.mean(r['fit_seconds']):.0f} | {r['seconds']:.0f} |")
    solved = [trials_to_success(runs[s], args.threshold) for s in seeds]
    found = [k for k in solved if k]
    lines += ["", f"Seeds solved within {args.trials} trials: {len(found)} / {len(seeds)}"
              + (f"; trials to success median {np.median(found):.0f}, range {min(found)}-"
                 f"{max(found)} ({min(found) * TRIAL_SECONDS:.1f}-"
                 f"{max(found) * TRIAL_SECONDS:.1f} s of interaction)" if found else "") + "."]
    figure(runs, seeds, args)
    return "\n".join(lines) + "\n"


def figure(runs: dict, seeds: list, args) -> None:
    fig, ax = new_axes()
    trials = np.arange(1, args.trials + 1)
    table = np.array([[runs[s]["pilco_trial_end_distance"].get(str(t), np.nan) for t in trials]
                      for s in seeds])
    for row in table:
        ax.plot(trials, row, color="tab:blue", alpha=0.3, lw=1)
    ax.plot(trials, np.nanmedian(table, 0), color="tab:blue", lw=2, label="median over seeds")
    ax.axhline(args.threshold, color="k", ls="--", lw=1, label=f"success ({args.threshold} m)")
    ax.axvline(7, color="tab:red", ls=":", lw=1, label="papers: ~7 trials (17.5 s)")
    ax.set_yscale("log")
    ax.set_xlabel("trial (1: random actions)")
    ax.set_ylabel("largest tip distance over the trial's last 0.5 s (m)")
    ax.set_title(f"{args.preset}: {len(seeds)} seeds (thin: each seed)")
    ax.legend(loc="upper right")
    save(fig, args.out / "trials.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="pilco-cartpole-swingup",
                        help="the agent's preset (deep-pilco-cartpole-swingup: Deep PILCO)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--threshold", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=Path("bench/results/pilco-cartpole"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/pilco-cartpole"))
    parser.add_argument("--from-run", type=Path, metavar="RUN_DIR",
                        help="record the one --seeds seed from this run dir (a longer run "
                        "stopped early), its first --trials trials, instead of running it")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides on top of the preset (e.g. pilco.inducing=100)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs: dict = {}
    for seed in args.seeds:
        path = args.out / f"seed{seed}.json"
        if not path.exists() and args.from_run:
            path.write_text(json.dumps(read_run(args.from_run, seed, trials=args.trials)))
        if not path.exists():
            result = run_seed(seed, args)
            path.write_text(json.dumps(result))
            print(f"seed {seed}: trials to success "
                  f"{trials_to_success(json.loads(path.read_text()), args.threshold)}, "
                  f"{result['seconds']:.0f} s", flush=True)
        runs[seed] = json.loads(path.read_text())
    summary = summarise(runs, args)
    (args.out / "summary.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
