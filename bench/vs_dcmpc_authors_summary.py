"""Pools bench/vs_dcmpc_authors.py's per-run JSON ({side}-seed{n}.json in one folder) into
summary.md and curves.png: over the seeds both sides ran (paired), the evaluation return at each
--eval-every point (each side's mean, ours minus the authors' with its 95% t interval, and the
same for the mean over all points: the curve's area), and the wall-clock: whole run, and per
agent step at the evaluation points both sides make (the authors' extra ones taken out), updates
counted by each side. A
difference whose interval spans 0 is not resolved by these seeds. The figure draws the paper's
published cartpole-swingup points (paper size, GPU) as a labelled anchor, not like for like.

Usage: .venv/bin/python bench/vs_dcmpc_authors_summary.py [bench/results/vs-dcmpc-authors]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from lst_figure3 import t_half_width  # bench/ is the script's sys.path[0]
from vs_dcmpc_authors import PUBLISHED
from vs_mbrl_lib_summary import fmt

BASE, OURS = "authors", "ours"
RANDOM_PLAY = "random play: mean 44 per episode, best of 20 episodes 125 (docs/results.md)"


def load(folder: Path) -> dict[str, dict[int, dict]]:
    """{side: {seed: run}}, the authors' side first."""
    runs: dict[str, dict[int, dict]] = {}
    for path in sorted(folder.glob("*-seed*.json")):
        side, seed = path.stem.rsplit("-seed", 1)
        runs.setdefault(side, {})[int(seed)] = json.loads(path.read_text())
    return {side: runs[side] for side in (BASE, OURS) if side in runs}


def return_at(run: dict, step: int) -> float:
    """The mean return of the evaluations logged at `step` agent steps (NaN if none): the
    authors' loop evaluates the last weights twice (its last point and its final one)."""
    at = [e[1] for e in run["evals"] if e[0] == step]
    return float(np.mean(at)) if at else float("nan")


def shared_ms(run: dict, steps: list[int]) -> float:
    """Milliseconds per agent step of the run less its evaluations off the shared points
    (the authors' before training and their second at the last step). Ours keeps training
    while it evaluates, so whole runs, not runs less all evaluations, compare alike."""
    seen, extra = set(), 0.0
    for e in run["evals"]:
        if e[0] in steps and e[0] not in seen:
            seen.add(e[0])
        else:
            extra += e[4]
    return 1000 * (run["wall_s"] - extra) / run["agent_steps"]


def paired(runs: dict, value) -> tuple[np.ndarray, np.ndarray]:
    """(ours, the authors') over the seeds both ran, for value(run)."""
    seeds = sorted(runs[OURS].keys() & runs[BASE].keys())
    return (np.array([value(runs[OURS][s]) for s in seeds]),
            np.array([value(runs[BASE][s]) for s in seeds]))


def points(settings: dict) -> list[int]:
    return list(range(settings["eval_every"], settings["steps"] + 1, settings["eval_every"]))


def returns_table(runs: dict, steps: list[int]) -> list[str]:
    lines = ["| agent steps (simulator) | authors | ours | ours − authors (paired) |",
             "| --- | --- | --- | --- |"]
    rows = [(f"{s:,} ({2 * s:,})", lambda r, s=s: return_at(r, s)) for s in steps]
    rows.append(("mean over the points (area)",
                 lambda r: float(np.mean([return_at(r, s) for s in steps]))))
    for label, value in rows:
        mine, theirs = paired(runs, value)
        diff = mine - theirs
        lines.append(f"| {label} | {fmt(theirs.mean(), t_half_width(theirs))} | "
                     f"{fmt(mine.mean(), t_half_width(mine))} | "
                     f"{fmt(diff.mean(), t_half_width(diff))} (n={len(diff)}) |")
    return lines


def cost_table(runs: dict, steps: list[int]) -> list[str]:
    lines = ["| side | whole run, s | evaluations (count, s) | run at the shared evaluation "
             "points, ms per agent step | updates |", "| --- | --- | --- | --- | --- |"]
    for side, by_seed in runs.items():
        cols = [np.array([f(r) for r in by_seed.values()]) for f in (
            lambda r: r["wall_s"], lambda r: r["eval_s"], lambda r: shared_ms(r, steps),
            lambda r: r["updates"])]
        count = np.mean([len(r["evals"]) for r in by_seed.values()])
        lines.append(f"| {side} (n={len(by_seed)}) | {fmt(cols[0].mean(), t_half_width(cols[0]))}"
                     f" | {count:g}, {fmt(cols[1].mean(), t_half_width(cols[1]))} | "
                     f"{fmt(cols[2].mean(), t_half_width(cols[2]))} | "
                     f"{fmt(cols[3].mean(), t_half_width(cols[3]))} |")
    shared = np.divide(*paired(runs, lambda r: shared_ms(r, steps)))
    whole = np.divide(*paired(runs, lambda r: r["wall_s"]))
    lines += ["", f"- wall-clock per agent step at the shared evaluation points: ours "
              f"{fmt(shared.mean(), t_half_width(shared), 2)}× the authors' "
              f"(n={len(shared)}, paired)",
              f"- whole run: ours {fmt(whole.mean(), t_half_width(whole), 2)}× the authors'"]
    return lines


def figure(runs: dict, steps: list[int], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_steps, by_time) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (side, by_seed) in enumerate(runs.items()):
        color = f"C{i}"
        curves = np.array([[return_at(r, s) for s in steps] for r in by_seed.values()])
        mean, half = np.nanmean(curves, 0), t_half_width(curves)
        x = 2 * np.array(steps)
        by_steps.plot(x, mean, color=color, marker="o", label=f"{side} (n={len(curves)})")
        by_steps.fill_between(x, mean - half, mean + half, color=color, alpha=0.2)
        for j, run in enumerate(by_seed.values()):
            by_time.plot([e[2] for e in run["evals"]], [e[1] for e in run["evals"]],
                         color=color, lw=0.8, alpha=0.7, marker=".",
                         label=side if j == 0 else None)
    published = np.array([PUBLISHED[k] for k in sorted(PUBLISHED)], float)
    by_steps.errorbar(sorted(PUBLISHED), published.mean(1), yerr=t_half_width(published.T),
                      color="k", fmt="s", ms=4, capsize=3,
                      label="paper size, authors' published (GPU, 5 seeds)")
    by_steps.set(xlabel="simulator steps (action repeat 2)", ylabel="evaluation return",
                 title="DC-MPC, cartpole-swingup: mean and 95% t band over seeds")
    by_time.set(xlabel="wall-clock from launch, s (2 CPU cores)", ylabel="evaluation return",
                title="each seed against wall-clock")
    for ax in (by_steps, by_time):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/vs-dcmpc-authors")
    runs = load(folder)
    settings = next(iter(runs[BASE].values()))["settings"]
    steps = points(settings)
    lines = ["# DC-MPC: ours against the authors' code at identical settings", "",
             "Made by `bench/vs_dcmpc_authors_summary.py` from the JSON beside it "
             "(`bench/vs_dcmpc_authors.py` wrote them). Settings: `" + json.dumps(settings)
             + "`.", f"Evaluation returns, mean of each point's episodes ({RANDOM_PLAY}).", "",
             *returns_table(runs, steps), "", *cost_table(runs, steps), "", "![curves](curves.png)",
             ""]
    (folder / "summary.md").write_text("\n".join(lines))
    figure(runs, steps, folder / "curves.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
