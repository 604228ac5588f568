"""The LST paper's Figure 3: early-training learning curves of CEM-MPC, CEM-LST, SMCP-MPC,
SMCP-LST and SAC on InvertedPendulum-v5, Reacher-v5 and HalfCheetah-v5, several seeds, each run
through the real topology (local Ray). Writes curves.csv, table.md and figure3.png to --out.

Method = preset (CPU-sized; the pendulum presets with env.id swapped): CEM-MPC pets-pendulum,
CEM-LST cem-lst-pendulum, SMCP-MPC smcp-pendulum, SMCP-LST smcp-lst-pendulum, SAC sac-pendulum
(async, one update per env step). Reacher and HalfCheetah never terminate, so their models
learn no termination head. The full grid (5 methods x 3 envs x 3 seeds x 5,000 steps) takes
~3 h on 2 cores; --envs / --methods / --seeds / --steps cut it down.

Usage: .venv/bin/python bench/lst_figure3.py [--envs InvertedPendulum-v5] [--seeds 3]
       [--steps 5000] [--eval-every 500] [--out bench/results/figure3]
       .venv/bin/python bench/lst_figure3.py --from-csv A/curves.csv B/curves.csv --out C
       (redraws the table and plot of several partial grids together)
"""
from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np
import ray
from PIL import Image, ImageDraw
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.distributed.driver import Driver

METHODS = {"CEM-MPC": "pets-pendulum", "CEM-LST": "cem-lst-pendulum",
           "SMCP-MPC": "smcp-pendulum", "SMCP-LST": "smcp-lst-pendulum", "SAC": "sac-pendulum"}
ENVS = ("InvertedPendulum-v5", "Reacher-v5", "HalfCheetah-v5")
NEVER_TERMINATE = {"Reacher-v5", "HalfCheetah-v5"}
COLOURS = {"CEM-MPC": (31, 119, 180), "CEM-LST": (174, 199, 232), "SMCP-MPC": (214, 39, 40),
           "SMCP-LST": (255, 152, 150), "SAC": (44, 160, 44)}


def run(method: str, env: str, seed: int, steps: int, eval_every: int, out: Path):
    """One training run; returns its evaluation curve [(env step, return), ...]."""
    overrides = [f"env.id={env}", f"train.steps={steps}", f"train.seed={seed}",
                 f"train.eval_every={eval_every}", f"train.checkpoint_every={steps}"]
    if env in NEVER_TERMINATE and method != "SAC":
        overrides.append("model.termination=false")
    cfg = apply_overrides(load_preset(METHODS[method]), overrides)
    run_dir = out / "runs" / f"{method}-{env}-{seed}"
    Driver(cfg, run_dir, printer=lambda *a, **k: None).run()
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars("eval/episodic_return")]


def held(curve, step: int) -> float:
    """The return of the latest evaluation at or before `step` (evaluations run asynchronously,
    so seeds are evaluated at slightly different steps); the first one before any."""
    before = [v for s, v in curve if s <= step]
    return before[-1] if before else curve[0][1]


def env_grid(curves: dict, env: str) -> list[int]:
    """Every step at which any run on `env` was evaluated: the common x axis of its panel."""
    return sorted({s for (_, e), runs in curves.items() if e == env for r in runs for s, _ in r})


def table(curves: dict, envs, methods) -> str:
    """Mean +- std over seeds of the final evaluation and of the mean over the curve (each run
    held between its evaluations and read on the env's common grid of evaluation steps)."""
    lines = ["| method | " + " | ".join(f"{e} final | {e} mean of curve" for e in envs) + " |",
             "| --- |" + " --- | --- |" * len(envs)]
    for m in methods:
        cells = []
        for e in envs:
            runs = curves.get((m, e), [])
            final = [c[-1][1] for c in runs]
            grid = env_grid(curves, e)
            area = [np.mean([held(c, s) for s in grid]) for c in runs]
            cells += [f"{np.mean(final):.0f} ± {np.std(final):.0f}",
                      f"{np.mean(area):.0f} ± {np.std(area):.0f}"]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(curves: dict, envs, methods, path: Path, size=(420, 300)) -> None:
    """One panel per env: mean evaluation return over seeds against env steps (Pillow only)."""
    w, h = size
    img = Image.new("RGB", (w * len(envs), h + 20 * len(methods)), "white")
    draw = ImageDraw.Draw(img)
    for i, env in enumerate(envs):
        runs = {m: curves[(m, env)] for m in methods if curves.get((m, env))}
        points = [p for rs in runs.values() for r in rs for p in r]
        x_max = max(p[0] for p in points)
        y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
        span = (y_hi - y_lo) or 1.0
        x0, y0, pw, ph = i * w + 50, 20, w - 70, h - 60

        def xy(step, value):
            return x0 + pw * step / x_max, y0 + ph * (1 - (value - y_lo) / span)

        draw.rectangle([x0, y0, x0 + pw, y0 + ph], outline="black")
        draw.text((x0, 4), env, fill="black")
        draw.text((x0 - 45, y0), f"{y_hi:.0f}", fill="black")
        draw.text((x0 - 45, y0 + ph - 10), f"{y_lo:.0f}", fill="black")
        draw.text((x0 + pw - 40, y0 + ph + 5), f"{x_max} steps", fill="black")
        for m, rs in runs.items():
            steps = env_grid(curves, env)
            mean = [np.mean([held(r, s) for r in rs]) for s in steps]
            draw.line([xy(s, v) for s, v in zip(steps, mean)], fill=COLOURS[m], width=2)
    for j, m in enumerate(methods):
        y = h + 20 * j
        draw.line([(10, y + 8), (40, y + 8)], fill=COLOURS[m], width=3)
        draw.text((48, y + 2), m, fill="black")
    img.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--envs", nargs="+", default=list(ENVS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds run: first .. first+seeds-1")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--out", type=Path, default=Path("bench/results/figure3"))
    ap.add_argument("--from-csv", type=Path, nargs="+",
                    help="redraw table.md and figure3.png from earlier curves.csv files, no runs")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_csv:
        return report(read_curves(args.from_csv), args.out)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             _temp_dir=tempfile.mkdtemp(prefix="mbrl-fig3-"))
    curves: dict = {}
    with open(args.out / "curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "env", "seed", "env_step", "eval_return"])
        for env in args.envs:
            for method in args.methods:
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    curve = run(method, env, seed, args.steps, args.eval_every, args.out)
                    curves.setdefault((method, env), []).append(curve)
                    writer.writerows([method, env, seed, s, v] for s, v in curve)
                    f.flush()
                    print(f"{method:9s} {env:22s} seed {seed}: "
                          + " ".join(f"{v:.0f}" for _, v in curve), flush=True)
    ray.shutdown()
    report(curves, args.out)


def read_curves(paths: list[Path]) -> dict:
    """{(method, env): [curve per seed]} from curves.csv files written by earlier runs."""
    rows: dict = {}
    for path in paths:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                key = (r["method"], r["env"])
                rows.setdefault(key, {}).setdefault((path, r["seed"]), []).append(
                    (int(r["env_step"]), float(r["eval_return"])))
    return {key: list(seeds.values()) for key, seeds in rows.items()}


def report(curves: dict, out: Path) -> None:
    """table.md and figure3.png for the methods and envs present, in the paper's order."""
    envs = [e for e in ENVS if any(k[1] == e for k in curves)]
    methods = [m for m in METHODS if any(k[0] == m for k in curves)]
    text = table(curves, envs, methods)
    (out / "table.md").write_text(text + "\n")
    plot(curves, envs, methods, out / "figure3.png")
    print(text)


if __name__ == "__main__":
    main()
