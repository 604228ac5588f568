"""Pools `bench/lst_frozen.py` results of several training seeds (one --out folder each, its
episodes.csv) into one table per stage and LST/MPC pair: the paired difference LST - MPC per
training seed (mean over its episodes, 95% bootstrap interval), then over the training seeds
given as --confirm (those not used to find the effect being tested):
- fixed effects: all their paired episodes pooled, a 95% bootstrap interval and a sign-flip
  p-value (is there an effect on these trained models?);
- random effects: the per-seed mean differences, a 95% t interval over seeds (would it hold
  for a new training seed?).

Usage: .venv/bin/python bench/lst_frozen_pool.py --runs 0=DIR0 1=DIR1|FILE1.csv ... [--confirm 1 2 3 4]
       [--out FILE.md]
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from lst_figure3 import paired_stats, t_half_width  # bench/ is the script's sys.path[0]


def parse_episodes(path: Path) -> list[dict]:
    """Rows of an episodes.csv (lst_frozen's output), numbers parsed; an empty ESS or action
    gap (the MPC rule's rows) reads as nan."""
    with open(path, newline="") as f:
        return [{**r, "stage": int(r["stage"]), "episode": int(r["episode"]),
                 **{k: float(r[k]) if r[k] else np.nan for k in ("return", "ess", "gap")}}
                for r in csv.DictReader(f)]


def load(runs: list[str]) -> dict[int, list[dict]]:
    """{training seed: rows of its episodes.csv (a folder's, or the .csv named)}."""
    out = {}
    for item in runs:
        seed, where = item.split("=", 1)
        path = Path(where) if where.endswith(".csv") else Path(where) / "episodes.csv"
        out[int(seed)] = parse_episodes(path)
    return out


def paired(rows: list[dict], stage: int, lst: str, mpc: str) -> np.ndarray | None:
    """LST - MPC returns over the episodes both rules ran at `stage`, by episode index."""
    by = {rule: {r["episode"]: r["return"] for r in rows
                 if r["stage"] == stage and r["rule"] == rule} for rule in (lst, mpc)}
    episodes = sorted(set(by[lst]) & set(by[mpc]))
    return np.array([by[lst][e] - by[mpc][e] for e in episodes]) if episodes else None


def table(data: dict[int, list[dict]], confirm: list[int]) -> str:
    lines = ["| stage | LST - MPC | training seed(s) | episodes | mean difference | 95% CI | "
             "p (sign flip) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    rules = {r["rule"] for rows in data.values() for r in rows}
    stages = sorted({r["stage"] for rows in data.values() for r in rows})
    for stage in stages:
        for lst in sorted(r for r in rules if r.endswith("LST")):
            mpc = lst.replace("LST", "MPC")
            diffs = {s: d for s, rows in data.items()
                     if (d := paired(rows, stage, lst, mpc)) is not None}
            for seed, d in sorted(diffs.items()):
                mean, lo, hi, p = paired_stats(d)
                lines.append(f"| {stage} | {lst} - {mpc} | {seed} | {len(d)} | {mean:+.1f} | "
                             f"{lo:+.1f}, {hi:+.1f} | {p:.3f} |")
            held = [s for s in confirm if s in diffs]
            if len(held) < 2:
                continue
            pooled = np.concatenate([diffs[s] for s in held])
            mean, lo, hi, p = paired_stats(pooled)
            names = ", ".join(map(str, held))
            lines.append(f"| {stage} | {lst} - {mpc} | {names}: fixed effects | {len(pooled)} | "
                         f"{mean:+.1f} | {lo:+.1f}, {hi:+.1f} | {p:.3f} |")
            means = np.array([diffs[s].mean() for s in held])
            half = float(t_half_width(means))
            lo, hi = means.mean() - half, means.mean() + half
            lines.append(f"| {stage} | {lst} - {mpc} | {names}: random effects (t over seeds) | "
                         f"{len(pooled)} | {means.mean():+.1f} | {lo:+.1f}, {hi:+.1f} | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", required=True,
                    help="SEED=FOLDER (its episodes.csv) or SEED=FILE.csv")
    ap.add_argument("--confirm", type=int, nargs="*", default=[],
                    help="training seeds pooled for the confirmatory test")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    text = table(load(args.runs), args.confirm) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
