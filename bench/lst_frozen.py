"""A paired, high-power comparison of action rules on frozen models (issue "LST and the
inference view", item 4).

One CEM-MPC run (`--preset`, default pets-pendulum: CPU-sized ensemble with a SAC terminal
value) is trained through the real topology and its learner state is kept at several stages.
From each stage's frozen model, every action rule acts for `--episodes` evaluation episodes on
the same env seeds (episode i: env reset with seed 10_000 + i, planner generator seeded i):
CEM-MPC (elite mean), CEM-LST (a draw from the LST posterior), and with --smcp SMCP-MPC /
SMCP-LST (the same SAC proposal and value). Per step of each LST episode the MPC rule also plans
from the same state (its own warm start carried along), so that |a_LST - a_MPC| is measured on
the states LST visits; the effective sample size of the LST weights (1 / sum w^2, over the
candidate count) is logged per step.

Reports per stage: mean return of each rule, the paired difference LST - MPC with a 95%
bootstrap confidence interval over episodes, a sign-flip permutation p-value, the mean ESS
fraction and the mean |a_LST - a_MPC|. Writes episodes.csv and table.md to --out (a folder
holding an earlier run's episodes.csv is refused, not replaced).

Usage: .venv/bin/python bench/lst_frozen.py [--stages 500 1000 2000] [--episodes 20]
       [--smcp | --rules SMCP-MPC SMCP-LST] --out NEW_DIR
       .venv/bin/python bench/lst_frozen.py --from-csv DIR/episodes.csv --out DIR   (redraw)
"""
from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from lst_figure3 import paired_stats  # bench/ is the script's sys.path[0]
from lst_frozen_pool import parse_episodes

from mbrl_ray.agents import make_actor
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs.make import env_kwargs, env_spec, make_env

ENV_SEED0 = 10_000  # evaluation env seeds, away from the training run's
RULES = {"CEM-MPC": ["planner.name=cem", "planner.posterior=mpc"],
         "CEM-LST": ["planner.name=cem", "planner.posterior=lst"],
         "SMCP-MPC": ["planner.name=smcp", "planner.posterior=mpc"],
         "SMCP-LST": ["planner.name=smcp", "planner.posterior=lst"]}
PAIRS = (("CEM-LST", "CEM-MPC"), ("SMCP-LST", "SMCP-MPC"))


def train_stages(preset: str, stages: list[int], seed: int, work: Path) -> dict[int, Path]:
    """Train one run, stopping at each stage and keeping a copy of its learner state."""
    from mbrl_ray.distributed import checkpoint
    from mbrl_ray.distributed.driver import Driver

    run_dir, saved = work / "run", {}
    for i, steps in enumerate(stages):
        cfg = apply_overrides(load_preset(preset), [f"train.steps={steps}", f"train.seed={seed}",
                                                    f"train.checkpoint_every={steps}"])
        Driver(cfg, run_dir, resume=i > 0, printer=lambda *a, **k: None).run()
        saved[steps] = work / f"learner-{steps}.pt"
        shutil.copy(checkpoint.latest(run_dir) / "learner.pt", saved[steps])
    return saved


def frozen_agent(preset: str, rule: str, learner_file: Path):
    cfg = apply_overrides(load_preset(preset), RULES[rule])
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    agent = make_actor(spec, cfg, "cpu", seed=0)
    agent.load_state_dict(torch.load(learner_file, map_location="cpu", weights_only=True)["agent"])
    return cfg, agent


def planner_of(agent):
    return agent.policy.planner


def lst_ess(agent) -> float:
    """Effective sample size of the last LST weights over the candidate count."""
    w = planner_of(agent).last_log_weights.exp()
    return float((1.0 / (w ** 2).sum(1) / w.shape[1]).mean())


def episode(cfg, agent, shadow, index: int) -> dict:
    """One evaluation episode of `agent`; `shadow` (the MPC rule, or None) plans from the same
    states for the action gap."""
    env = make_env(cfg.env.id, seed=ENV_SEED0 + index, **env_kwargs(cfg.env))
    obs, _ = env.reset(seed=ENV_SEED0 + index)
    for a in (agent, shadow):
        if a is not None:
            a.generator.manual_seed(index)
    state = agent.initial_state(1)
    shadow_state = shadow.initial_state(1) if shadow is not None else None
    ret, steps, ess, gap, done = 0.0, 0, [], [], False
    while not done:
        action, state = agent.act(obs[None].astype(np.float32), state, explore=False)
        if shadow is not None:
            mpc_action, shadow_state = shadow.act(obs[None].astype(np.float32), shadow_state,
                                                  explore=False)
            gap.append(float(np.abs(action - mpc_action).mean()))
            ess.append(lst_ess(agent))
        obs, reward, terminated, truncated, _ = env.step(action[0])
        ret, steps, done = ret + float(reward), steps + 1, terminated or truncated
    env.close()
    return {"return": ret, "steps": steps, "ess": np.mean(ess) if ess else np.nan,
            "gap": np.mean(gap) if gap else np.nan}


def evaluate(preset: str, stages: dict[int, Path], rules: list[str], episodes: int):
    rows = []
    for stage, file in stages.items():
        for rule in rules:
            cfg, agent = frozen_agent(preset, rule, file)
            shadow = None
            if rule.endswith("LST"):
                shadow = frozen_agent(preset, rule.replace("LST", "MPC"), file)[1]
            for i in range(episodes):
                result = episode(cfg, agent, shadow, i)
                rows.append({"stage": stage, "rule": rule, "episode": i, **result})
                print(f"stage {stage} {rule} episode {i}: return {result['return']:.1f} "
                      f"ess {result['ess']:.3f} gap {result['gap']:.3f}", flush=True)
    return rows


def table(rows: list[dict], rules: list[str]) -> str:
    lines = ["| stage | rule | mean return | LST - MPC (95% CI) | p (sign flip) | ESS / N | "
             "mean abs(a_LST - a_MPC) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for stage in sorted({r["stage"] for r in rows}):
        by = {rule: sorted((r for r in rows if r["stage"] == stage and r["rule"] == rule),
                           key=lambda r: r["episode"]) for rule in rules}
        for rule in rules:
            ret = np.array([r["return"] for r in by[rule]])
            cells = [f"{ret.mean():.1f}", "", "", "", ""]
            mpc = rule.replace("LST", "MPC")
            if rule.endswith("LST") and by.get(mpc):
                base = np.array([r["return"] for r in by[mpc]])
                mean, lo, hi, p = paired_stats(ret - base)
                cells[1:] = [f"{mean:+.1f} ({lo:+.1f}, {hi:+.1f})", f"{p:.3f}",
                             f"{np.mean([r['ess'] for r in by[rule]]):.3f}",
                             f"{np.mean([r['gap'] for r in by[rule]]):.3f}"]
            lines.append(f"| {stage} | {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="pets-pendulum")
    ap.add_argument("--stages", type=int, nargs="+", default=[500, 1000, 2000])
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smcp", action="store_true", help="also SMCP-MPC and SMCP-LST")
    ap.add_argument("--rules", nargs="+", choices=list(RULES),
                    help="exactly these rules (default: the CEM pair, with --smcp all four)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/lst-frozen-pendulum"))
    ap.add_argument("--from-csv", type=Path,
                    help="redraw the table from an earlier episodes.csv into --out/table.md, no runs")
    args = ap.parse_args()
    if args.from_csv:
        rows, rules = read_episodes(args.from_csv)
    else:
        rows, rules = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(rows, rules)
    (args.out / "table.md").write_text(text + "\n")
    print(text)


def run(args) -> tuple[list[dict], list[str]]:
    """Train, freeze, evaluate; episodes.csv written to --out (refusing to replace one)."""
    rules = args.rules or (list(RULES) if args.smcp else ["CEM-MPC", "CEM-LST"])
    if (args.out / "episodes.csv").exists():
        raise SystemExit(f"--out {args.out}: holds an episodes.csv from an earlier run; "
                         "choose a new folder (or --from-csv to redraw its table)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        stages = train_stages(args.preset, sorted(args.stages), args.seed, Path(work))
        rows = evaluate(args.preset, stages, rules, args.episodes)
    with open(args.out / "episodes.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows, rules


def read_episodes(path: Path) -> tuple[list[dict], list[str]]:
    """Rows of an episodes.csv (numbers parsed) and its rules in RULES order."""
    rows = parse_episodes(path)
    present = {r["rule"] for r in rows}
    return rows, [rule for rule in RULES if rule in present]


if __name__ == "__main__":
    main()
