"""Pools the per-seed results of `bench/dreamer_vs_rllib.py` (ours-seedN.json, rllib-seedN.json
in one folder) into summary.md and curves.png: per seed, both runs' throughput and returns; over
the seeds both ran (paired), the mean of each, the mean difference (ours - RLlib) with its 95%
t interval, at every evaluation step, for the curve area (the mean over evaluation steps), for
the throughput ratio per env step and per update, and for the rows each side replayed per env
step after the warm-up (issue 44 asks them matched within 2%). A difference whose interval spans
0 is not resolved by these seeds. Runs recorded before a field existed show "—" for it.

Usage: .venv/bin/python bench/dreamer_vs_rllib_summary.py [bench/results/dreamer-vs-rllib]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from dreamer_vs_rllib import REPEAT, TASK  # bench/ is the script's sys.path[0]
from lst_figure3 import t_half_width

RANDOM_PLAY = {(TASK, REPEAT): (46.0, 31.0),  # task, repeat: mean, std per episode
               ("InvertedPendulum-v5", 1): (5.0, 3.5)}


def load(folder: Path) -> dict[str, dict[int, dict]]:
    """{"ours" | "rllib": {seed: the run's summary}}."""
    runs: dict[str, dict[int, dict]] = {"ours": {}, "rllib": {}}
    for path in sorted(folder.glob("*-seed*.json")):
        name, seed = path.stem.rsplit("-seed", 1)
        runs[name][int(seed)] = json.loads(path.read_text())
    return runs


def interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and 95% t half-width (nan for one value)."""
    return float(values.mean()), float(t_half_width(values))


def whole_run_rate(run: dict) -> float | None:
    """Env steps per second of the whole run (start-up and evaluations included); None for
    RLlib runs recorded before the whole run was timed (their wall_s was training only)."""
    if run["name"].startswith("rllib") and "train_s" not in run:
        return None
    return run["env_steps"] / run["wall_s"]


def training_rate(run: dict) -> float | None:
    """RLlib's env steps per second inside `algo.train()` (None for ours, whose learner and
    workers run side by side; older RLlib runs recorded only this time, as wall_s)."""
    if not run["name"].startswith("rllib"):
        return None
    return run["env_steps"] / run.get("train_s", run["wall_s"])


def per_seed_table(runs: dict) -> list[str]:
    lines = ["| seed | run | env steps/s, whole run | env steps/s, training only | "
             "learner updates | updates/s | rows replayed per env step after warm-up | "
             "most updates behind at an evaluation | eval return (env steps: return) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for seed in sorted(set(runs["ours"]) | set(runs["rllib"])):
        for name in ("ours", "rllib"):
            run = runs[name].get(seed)
            if run is None:
                continue
            whole = whole_run_rate(run)
            train = training_rate(run)
            evals = ", ".join(f"{s}: {v:.1f}" for s, v in run["evals"])
            lines.append(f"| {seed} | {run['name']} | {_num(whole)} | {_num(train)} | "
                         f"{run['updates']:.0f} | {run['updates_per_s']:.2f} | "
                         f"{_num(run.get('rows_per_step_after_warmup'))} | "
                         f"{_num(most_behind(run))} | {evals} |")
    return lines


def most_behind(run: dict) -> float | None:
    """The most updates an evaluation's weights lacked of those due (None: not recorded)."""
    behind = run.get("updates_behind_at_evals")
    return max((v for _, v in behind), default=0.0) if behind is not None else None


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def paired_table(runs: dict) -> list[str]:
    seeds = sorted(set(runs["ours"]) & set(runs["rllib"]))
    ours = [dict(runs["ours"][s]["evals"]) for s in seeds]
    rllib = [dict(runs["rllib"][s]["evals"]) for s in seeds]
    steps = sorted(set.intersection(*(set(e) for e in ours + rllib)))
    lines = [f"Paired over seeds {', '.join(map(str, seeds))} (n = {len(seeds)}); "
             "mean ± 95% t half-width", "",
             "| measure | ours | RLlib DreamerV3 | ours - RLlib |", "| --- | --- | --- | --- |"]
    rows = [(f"eval return at {s:,} env steps", [o[s] for o in ours], [r[s] for r in rllib], 1)
            for s in steps]
    rows.append(("curve area (mean over those steps)", [np.mean([o[s] for s in steps])
                                                        for o in ours],
                 [np.mean([r[s] for s in steps]) for r in rllib], 1))
    rows.append(("learner updates/s", [runs["ours"][s]["updates_per_s"] for s in seeds],
                 [runs["rllib"][s]["updates_per_s"] for s in seeds], 3))
    for label, a, b, digits in rows:
        a, b = np.array(a), np.array(b)
        lines.append(f"| {label} | {_pm(a, digits)} | {_pm(b, digits)} | "
                     f"{_pm(a - b, digits, sign=True)} |")
    timed = [s for s in seeds if whole_run_rate(runs["rllib"][s]) is not None]
    lines += ratio_row("env steps/s ratio ours / RLlib, whole run", timed,
                       [whole_run_rate(runs["ours"][s]) / whole_run_rate(runs["rllib"][s])
                        for s in timed])
    lines += ratio_row("seconds per update ratio ours / RLlib, whole run", timed,
                       [seconds_per_update(runs["ours"][s])
                        / seconds_per_update(runs["rllib"][s]) for s in timed])
    counted = [s for s in seeds if all("rows_per_step_after_warmup" in runs[n][s]
                                       for n in ("ours", "rllib"))]
    lines += ratio_row("rows replayed per env step after warm-up, ratio ours / RLlib", counted,
                       [runs["ours"][s]["rows_per_step_after_warmup"]
                        / runs["rllib"][s]["rows_per_step_after_warmup"] for s in counted])
    return lines


def seconds_per_update(run: dict) -> float:
    """Whole-run seconds per learner update (start-up and evaluations included)."""
    return run["wall_s"] / max(run["updates"], 1)


def ratio_row(label: str, seeds: list[int], ratios: list[float]) -> list[str]:
    """One paired row of per-seed ratios (none without seeds)."""
    if not seeds:
        return []
    mean, half = interval(np.array(ratios))
    return [f"| {label} (seeds {', '.join(map(str, seeds))}) | | | {mean:.3f} ± {half:.3f} |"]


def _pm(values: np.ndarray, digits: int, sign: bool = False) -> str:
    mean, half = interval(values)
    return f"{mean:{'+' if sign else ''}.{digits}f} ± {half:.{digits}f}"


def plot(runs: dict, path: Path) -> None:
    """Mean evaluation return over seeds with a 95% t band, per framework, beside random play."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, colour in (("ours", "#1f77b4"), ("rllib", "#d62728")):
        curves = [dict(r["evals"]) for r in runs[name].values()]
        if not curves:
            continue
        steps = sorted(set.intersection(*(set(c) for c in curves)))
        table = np.array([[c[s] for s in steps] for c in curves])
        stats = [interval(col) for col in table.T]
        mean, half = np.array([m for m, _ in stats]), np.nan_to_num([h for _, h in stats])
        label = f"{next(iter(runs[name].values()))['name']} ({len(curves)} seeds)"
        ax.plot(steps, mean, color=colour, lw=2, marker="o", ms=4, label=label)
        ax.fill_between(steps, mean - half, mean + half, color=colour, alpha=0.2)
        for row in table:  # each seed, thin: three seeds make a wide band
            ax.plot(steps, row, color=colour, lw=0.7, alpha=0.5)
    task, repeat = setting(runs)
    if all(v >= 0 for side in runs.values() for r in side.values() for _, v in r["evals"]):
        ax.set_ylim(bottom=0)  # non-negative rewards: a t band of few seeds can pass below 0
    if (task, repeat) in RANDOM_PLAY:
        ax.axhline(RANDOM_PLAY[task, repeat][0], color="grey", ls="--", lw=1,
                   label="random play (mean)")
    ax.set_xlabel(f"env steps (action repeat {repeat})")
    episodes = {r.get("eval_episodes", 5) for side in runs.values() for r in side.values()}
    ax.set_ylabel(f"evaluation return ({'/'.join(map(str, sorted(episodes)))} episodes)")
    ax.set_title(f"{task} from states: mean and 95% t band over seeds", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def setting(runs: dict) -> tuple[str, int]:
    """The runs' task and action repeat (runs recorded before these and --size were: the
    bench's defaults); refused when the folder mixes tasks, repeats or sizes."""
    found = {(r.get("task", TASK), r.get("action_repeat", REPEAT), r.get("size", "XS"))
             for side in runs.values() for r in side.values()}
    if len(found) > 1:
        raise SystemExit(f"runs of different settings in one folder: {sorted(found)}")
    return found.pop()[:2] if found else (TASK, REPEAT)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/dreamer-vs-rllib")
    runs = load(folder)
    if not runs["ours"] and not runs["rllib"]:
        raise SystemExit(f"{folder}: no ours-seedN.json or rllib-seedN.json "
                         "(run bench/dreamer_vs_rllib.py --out there)")
    text = "\n".join(per_seed_table(runs) + [""] + paired_table(runs)) + "\n"
    (folder / "summary.md").write_text(text)
    plot(runs, folder / "curves.png")
    print(text)


if __name__ == "__main__":
    main()
