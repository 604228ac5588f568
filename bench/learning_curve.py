"""A run's evaluation curve from its TensorBoard log, as CSV and a figure beside published points
(the papers' anchors and the simulator-step axis; `mbrl-ray compare` groups runs without them).

    .venv/bin/python bench/learning_curve.py RUN_DIR [RUN_DIR ...] --name dcmpc-cartpole-swingup \
        [--action-repeat 2] [--anchor "TD-MPC2 (3 seeds)" 100000 839] [--metric success]

Reads `eval/episodic_return` (and `eval/success` where the env reports it) of every run dir,
writes `bench/results/<name>.csv` (run, agent step, simulator step, return, success) and
`<name>.png`: return over simulator steps (agent steps x action
repeat, the unit of the papers' curves), the mean over runs with a 95% band (t interval) from
3 runs on (below, each run's line alone), and each anchor as a labelled point (a dashed level
when it lies far beyond the runs' last step).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from mbrl_ray.compare import mean_and_half_width, read_curve
from mbrl_ray.config import ConfigError

RESULTS = Path(__file__).parent / "results"


def scalars(run_dir: Path, tag: str, required: bool = True) -> list[tuple[int, float]]:
    """(step, value) of a tag as TensorBoard shows it (mbrl-ray compare's reading); [] for a tag
    the run did not log, unless required."""
    try:
        return sorted(read_curve(run_dir, tag).items())
    except ConfigError:
        if required:
            raise
        return []


def write_csv(path: Path, runs: list[Path], repeat: int,
              metric: str = "return") -> dict[str, list]:
    """Write every run's evaluations; return each run's curve of `metric` (return|success)."""
    curves = {}
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["run", "agent_step", "simulator_step", "eval_return", "eval_success"])
        for run in runs:
            returns = scalars(run, "eval/episodic_return")
            success = dict(scalars(run, "eval/success", required=False))
            curves[run.name] = returns if metric == "return" else sorted(success.items())
            for step, value in returns:
                out.writerow([run.name, step, step * repeat, f"{value:.2f}",
                              "" if step not in success else f"{success[step]:.3f}"])
    return curves


def band(curves: dict[str, list]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps every run evaluated at, the mean return there and the 95% t half-width
    (mbrl-ray compare's interval)."""
    common = sorted(set.intersection(*(set(s for s, _ in c) for c in curves.values())))
    stats = np.array([mean_and_half_width([dict(c)[s] for c in curves.values()])
                      for s in common]).reshape(-1, 2)
    return np.array(common), stats[:, 0], stats[:, 1]


def figure(path: Path, curves: dict[str, list], repeat: int, anchors, title: str,
           ylabel: str = "evaluation return") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    alone = len(curves) < 3  # too few runs for a band: each run's line is the result
    for name, points in curves.items():
        steps, values = zip(*points)
        ax.plot(np.array(steps) * repeat, values, lw=2 if alone else 0.8,
                alpha=1 if alone else 0.5, marker="o" if alone else None, ms=4, label=name)
    if not alone:
        steps, mean, half = band(curves)
        ax.plot(steps * repeat, mean, lw=2, color="k", label=f"mean of {len(curves)} runs")
        ax.fill_between(steps * repeat, mean - half, mean + half, color="k", alpha=0.15,
                        label="95% interval")
    last = max(s for points in curves.values() for s, _ in points) * repeat
    for label, step, value in anchors:
        if step <= 1.5 * last:
            ax.scatter([step], [value], marker="*", s=140, zorder=5, label=label)
        else:  # far beyond this run: a level to read against, not a point to stretch the axis to
            ax.axhline(value, ls="--", lw=1.2, color="tab:red",
                       label=f"{label} (at {step:,.0f} simulator steps)")
    ax.set_xlabel(f"simulator steps (agent steps x action repeat {repeat})")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--action-repeat", type=int, default=1)
    parser.add_argument("--title", default="", help="figure title (default: --name)")
    parser.add_argument("--anchor", nargs=3, action="append", default=[],
                        metavar=("LABEL", "SIMULATOR_STEP", "VALUE"))
    parser.add_argument("--metric", choices=("return", "success"), default="return",
                        help="what the figure draws: eval/episodic_return or eval/success")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    curves = write_csv(RESULTS / f"{args.name}.csv", args.runs, args.action_repeat, args.metric)
    anchors = [(label, float(step), float(value)) for label, step, value in args.anchor]
    try:
        figure(RESULTS / f"{args.name}.png", curves, args.action_repeat, anchors,
               args.title or args.name,
               "evaluation return" if args.metric == "return" else "evaluation success rate")
    except ImportError:
        print("matplotlib missing (pip install matplotlib): no figure", file=sys.stderr)
    for name, points in curves.items():
        print(name, " ".join(f"{s}:{v:.2f}" for s, v in points))


if __name__ == "__main__":
    main()
