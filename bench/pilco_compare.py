"""PILCO against Deep PILCO on cart-pole swing-up (issue 42's comparison), from the per-seed JSON
that `bench/pilco_cartpole.py` writes for each (`--preset pilco-cartpole-swingup` and
`--preset deep-pilco-cartpole-swingup`, each in its own --out). Runs nothing.

One figure (compare.png) with two panels over trials: the tip's largest distance from upright
over each trial's last 0.5 s (median over seeds, band from the lowest to the highest seed, the
success threshold dashed), and the learner's seconds per fit (mean over seeds, band min-max);
and a table (compare.md): per method, seeds solved, trials to success (median, range), the
interaction time to success and the median seconds per fit; then each later method's paired
difference in trials to success from the first, over the seeds both ran and both solved.

Usage: .venv/bin/python bench/pilco_compare.py LABEL=DIR [LABEL=DIR ...]
         [--threshold 0.1] [--out bench/results/pilco-compare]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from lst_figure3 import save  # bench/ is the script's sys.path[0]
from pilco_cartpole import TRIAL_SECONDS, trials_to_success

from mbrl_ray.compare import mean_and_half_width


def load(folder: Path) -> list[dict]:
    """The per-seed runs in `folder`, by seed."""
    runs = [json.loads(p.read_text()) for p in sorted(folder.glob("seed*.json"))]
    if not runs:
        raise SystemExit(f"{folder}: no seed*.json (run bench/pilco_cartpole.py --out there)")
    return sorted(runs, key=lambda r: r["seed"])


def per_trial(runs: list[dict], key: str) -> np.ndarray:
    """(seeds, trials) of a per-trial series; nan past a run's last trial."""
    if key == "fit_seconds":
        series = [r["fit_seconds"] for r in runs]
    else:
        series = [[r[key][str(t)] for t in range(1, len(r[key]) + 1)] for r in runs]
    table = np.full((len(series), max(map(len, series))), np.nan)
    for i, row in enumerate(series):
        table[i, :len(row)] = row
    return table


def row(label: str, runs: list[dict], threshold: float) -> str:
    found = [k for k in (trials_to_success(r, threshold) for r in runs) if k]
    fits = np.nanmedian(per_trial(runs, "fit_seconds"))
    if not found:
        return f"| {label} | 0 / {len(runs)} | - | - | {fits:.0f} |"
    return (f"| {label} | {len(found)} / {len(runs)} | {np.median(found):g} "
            f"({min(found)}-{max(found)}) | {np.median(found) * TRIAL_SECONDS:.1f} s | "
            f"{fits:.0f} |")


def paired(label: str, runs: list[dict], base_label: str, base: list[dict],
           threshold: float) -> str:
    """`label` minus `base_label` in trials to success, seed by seed (95% t interval)."""
    mine = {r["seed"]: trials_to_success(r, threshold) for r in runs}
    theirs = {r["seed"]: trials_to_success(r, threshold) for r in base}
    seeds = sorted(mine.keys() & theirs.keys())
    both = [s for s in seeds if mine[s] and theirs[s]]
    diffs = [mine[s] - theirs[s] for s in both]
    if not diffs:
        return f"{label} - {base_label}: no seed that both solved"
    mean, half = mean_and_half_width(diffs)
    left_out = sorted(set(seeds) - set(both))
    return (f"{label} - {base_label}, trials to success, paired over seeds {both}: "
            f"{' '.join(f'{d:+d}' for d in diffs)}, mean {mean:+.1f} +- {half:.1f} (95% t)"
            + (f"; seeds not solved by both: {left_out}" if left_out else ""))


def figure(methods: dict[str, list[dict]], threshold: float, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for (label, runs), color in zip(methods.items(), ("tab:blue", "tab:orange", "tab:green")):
        for ax, key, centre in ((left, "pilco_trial_end_distance", np.nanmedian),
                                (right, "fit_seconds", np.nanmean)):
            table = per_trial(runs, key)
            if key == "fit_seconds":  # fit k plays trial k + 1; the one after the last, none
                trials = per_trial(runs, "pilco_trial_end_distance").shape[1]
                table = table[:, :trials - 1]
            x = np.arange(1, table.shape[1] + 1) + (key == "fit_seconds")
            ax.plot(x, centre(table, 0), color=color, lw=2, label=f"{label} ({len(runs)} seeds)")
            ax.fill_between(x, np.nanmin(table, 0), np.nanmax(table, 0), color=color, alpha=0.2)
    left.axhline(threshold, color="k", ls="--", lw=1, label=f"success ({threshold} m)")
    left.set_yscale("log")
    left.set_xlabel("trial (1: random actions)")
    left.set_ylabel("tip's largest distance over the last 0.5 s (m)")
    left.set_title("median over seeds, band: min-max")
    right.set_xlabel("trial the fit's policy plays")
    right.set_ylabel("learner seconds per fit")
    right.set_title("mean over seeds, band: min-max")
    left.legend(loc="upper right", fontsize=8)
    save(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("methods", nargs="+", metavar="LABEL=DIR")
    parser.add_argument("--threshold", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=Path("bench/results/pilco-compare"))
    args = parser.parse_args()
    methods = {m.split("=", 1)[0]: load(Path(m.split("=", 1)[1])) for m in args.methods}
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["| method | seeds solved | trials to success, median (range) | interaction to "
             "success (median) | learner s per fit (median) |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [row(label, runs, args.threshold) for label, runs in methods.items()]
    (base_label, base), *others = methods.items()
    for label, runs in others:
        lines += ["", paired(label, runs, base_label, base, args.threshold)]
    text = (f"Cart-pole swing-up, success: tip within {args.threshold} m over a trial's last "
            f"0.5 s; trials of {TRIAL_SECONDS} s, the random first one counted.\n\n"
            + "\n".join(lines) + "\n")
    (args.out / "compare.md").write_text(text)
    figure(methods, args.threshold, args.out / "compare.png")
    print(text)


if __name__ == "__main__":
    main()
