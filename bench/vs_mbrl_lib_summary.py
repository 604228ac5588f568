"""Pools bench/vs_mbrl_lib.py's per-run JSON ({side}-seed{n}.json in one folder, one
algorithm) into summary.md and curves.png: over the seeds each pair of sides ran (paired), the
return by fixed env steps (PETS: the last round's mean training-episode return at or before the
step; MBPO: the last evaluation's mean return at or before it), each side's mean and ours minus
mbrl-lib's with its 95% t interval; the wall-clock from launch to the first point that reaches
each threshold; planning milliseconds per action (PETS) or SAC updates counted (MBPO);
whole-run seconds. A difference whose interval spans 0 is not resolved by these seeds.

Usage: .venv/bin/python bench/vs_mbrl_lib_summary.py [bench/results/vs-mbrl-lib[-mbpo]]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from lst_figure3 import t_half_width  # bench/ is the script's sys.path[0]

BASE = "mbrl-lib"
CHECKPOINTS = (1000, 2000, 3000, 4000, 5000)
THRESHOLDS = (100.0, 200.0, 500.0, 900.0)
RANDOM_PLAY = "random play: episodes of ~5-20 steps (return 5-20); the maximum is 1000"
CURVE = {"pets": "Training episode returns", "mbpo": "Evaluation returns (deterministic actor, "
         "mean of the settings' eval_episodes)"}


def load(folder: Path) -> dict[str, dict[int, dict]]:
    """{side: {seed: run}}."""
    runs: dict[str, dict[int, dict]] = {}
    for path in sorted(folder.glob("*-seed*.json")):
        side, seed = path.stem.rsplit("-seed", 1)
        runs.setdefault(side, {})[int(seed)] = json.loads(path.read_text())
    order = [BASE, "ours", "ours-2w"]  # the reference first, then ours by workers
    return dict(sorted(runs.items(), key=lambda kv: (order + [kv[0]]).index(kv[0])))


def return_by(run: dict, step: int) -> float:
    """The mean return of the last round at or before `step` in which an episode ended."""
    before = [ret for end, ret, _ in run["rounds"] if end <= step]
    return before[-1] if before else float("nan")


def seconds_to(run: dict, threshold: float) -> float:
    """Seconds from launch to the end of the first round whose mean return reaches it."""
    return next((t for _, ret, t in run["rounds"] if ret >= threshold), float("nan"))


def fmt(mean: float, half: float, digits: int = 0) -> str:
    if np.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" + ("" if np.isnan(half) else f" ± {half:.{digits}f}")


def paired(runs: dict, side: str, value) -> tuple[np.ndarray, np.ndarray]:
    """(side's values, base's values) over the seeds both ran, for value(run)."""
    seeds = sorted(runs[side].keys() & runs[BASE].keys())
    return (np.array([value(runs[side][s]) for s in seeds]),
            np.array([value(runs[BASE][s]) for s in seeds]))


def returns_table(runs: dict) -> list[str]:
    sides = [s for s in runs if s != BASE]
    head = ["| env steps | mbrl-lib |"] + [f" {s} | {s} − mbrl-lib |" for s in sides]
    lines = ["".join(head), "| --- " * (2 + 2 * len(sides)) + "|"]
    for step in CHECKPOINTS:
        base = np.array([return_by(r, step) for r in runs[BASE].values()])
        row = f"| {step} | {fmt(base.mean(), t_half_width(base))} |"
        for side in sides:
            mine, theirs = paired(runs, side, lambda r: return_by(r, step))
            diff = mine - theirs
            row += (f" {fmt(mine.mean(), t_half_width(mine))} |"
                    f" {fmt(diff.mean(), t_half_width(diff))} (n={len(diff)}) |")
        lines.append(row)
    return lines


def work(run: dict) -> float:
    """PETS: planning ms per action; MBPO: SAC updates (each side's own count)."""
    return run.get("plan_ms", run.get("sac_updates", float("nan")))


def timing_table(runs: dict, work_name: str) -> list[str]:
    lines = [f"| side | whole run, s | {work_name} | " + " | ".join(
        f"s to {t:g} (reached)" for t in THRESHOLDS) + " |",
        "| --- " * (3 + len(THRESHOLDS)) + "|"]
    for side, by_seed in runs.items():
        whole = np.array([r["wall_s"] for r in by_seed.values()])
        plan = np.array([work(r) for r in by_seed.values()])
        cells = []
        for t in THRESHOLDS:
            secs = np.array([seconds_to(r, t) for r in by_seed.values()])
            hit = secs[~np.isnan(secs)]
            cells.append(f"{fmt(hit.mean(), t_half_width(hit)) if len(hit) else '-'} "
                         f"({len(hit)}/{len(secs)})")
        lines.append(f"| {side} | {fmt(whole.mean(), t_half_width(whole))} | "
                     f"{fmt(plan.mean(), t_half_width(plan), int('ms' in work_name))} | " + " | ".join(cells) + " |")
    return lines


def ratio_lines(runs: dict, algo: str) -> list[str]:
    """Paired ratios against mbrl-lib: planning time (PETS) or SAC updates (MBPO), whole run,
    time to each threshold."""
    lines = []
    for side in (s for s in runs if s != BASE):
        mine, theirs = paired(runs, side, work)
        ratio = theirs / mine if algo == "pets" else mine / theirs
        lines.append(f"- {side}: " + ("planning {}× mbrl-lib's speed per action" if algo == "pets"
                                      else "{}× mbrl-lib's SAC updates").format(
            fmt(ratio.mean(), t_half_width(ratio), 2)) + f" (n={len(ratio)}, paired)")
        mine, theirs = paired(runs, side, lambda r: r["wall_s"])
        ratio = mine / theirs
        lines.append(f"- {side}: whole run {fmt(ratio.mean(), t_half_width(ratio), 2)}× "
                     "mbrl-lib's wall-clock")
        for t in THRESHOLDS:
            mine, theirs = paired(runs, side, lambda r: seconds_to(r, t))
            both = ~np.isnan(mine) & ~np.isnan(theirs)
            if both.any():
                ratio = mine[both] / theirs[both]
                lines.append(f"- {side}: wall-clock to {t:g}: "
                             f"{fmt(ratio.mean(), t_half_width(ratio), 2)}× mbrl-lib's over "
                             f"the {both.sum()} seeds both reached it (ours reached it on "
                             f"{(~np.isnan(mine)).sum()}, mbrl-lib on "
                             f"{(~np.isnan(theirs)).sum()} of {len(mine)})")
    return lines


def figure(runs: dict, path: Path, algo: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.arange(250, max(CHECKPOINTS) + 1, 250)
    fig, (by_steps, by_time) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (side, by_seed) in enumerate(runs.items()):
        color = f"C{i}"
        curves = np.array([[return_by(r, s) for s in grid] for r in by_seed.values()])
        mean, half = np.nanmean(curves, 0), t_half_width(curves)
        by_steps.plot(grid, mean, color=color, label=f"{side} (n={len(curves)})")
        by_steps.fill_between(grid, mean - half, mean + half, color=color, alpha=0.2)
        for j, run in enumerate(by_seed.values()):
            t = [x[2] for x in run["rounds"]]
            by_time.plot(t, [x[1] for x in run["rounds"]], color=color, lw=0.8, alpha=0.7,
                         label=side if j == 0 else None)
    ylabel = {"pets": "training episode return (mean per 250 steps)",
              "mbpo": "evaluation return (mean of its episodes)"}[algo]
    by_steps.set(xlabel="env steps", ylabel=ylabel,
                 title=f"{algo.upper()} on InvertedPendulum: mean and 95% t band over seeds")
    by_time.set(xlabel="wall-clock from launch, s (2 CPU cores)",
                ylabel=ylabel.split(" (")[0], title="each seed against wall-clock")
    for ax in (by_steps, by_time):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/vs-mbrl-lib")
    runs = load(folder)
    settings = next(iter(runs[BASE].values()))["settings"]
    algo = settings.get("algo", "pets")  # runs recorded before --algo are PETS
    work_name = {"pets": "plan ms/action", "mbpo": "SAC updates"}[algo]
    lines = [f"# {algo.upper()}: ours against mbrl-lib 0.2.0 at identical settings",
             "", "Made by `bench/vs_mbrl_lib_summary.py` from the JSON beside it "
             "(`bench/vs_mbrl_lib.py` wrote them). Settings: `" + json.dumps(settings) + "`.",
             f"{CURVE[algo]} ({RANDOM_PLAY}).", "", *returns_table(runs), "",
             *timing_table(runs, work_name), "", *ratio_lines(runs, algo), "",
             "![curves](curves.png)", ""]
    (folder / "summary.md").write_text("\n".join(lines))
    figure(runs, folder / "curves.png", algo)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
