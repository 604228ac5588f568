"""Guided policy search against SAC on Reacher-v5 at the same sample budget (issue 43's GPS
claim), paired seeds, both through the real topology (`Driver`), both on the `gps-reacher`
conditions (4 fixed starts, condition_seed 8).

Arms, each seed, `--budget` env steps:
- gps: the `gps-reacher` preset (importance-sampled policy step, Levine & Koltun 2013);
- gps-supervised: the same with `gps.policy_step=supervised`;
- gps-model: the `gps-model-reacher` preset (controllers planned through a delta network fitted
  to all data, `gps.dynamics=model`; the supervised policy step);
- sac: the `sac-pendulum` preset's SAC (2 x 256, one update per env step) on the same env and
  conditions.
The measure: the delivered policy (GPS's neural policy, SAC's actor; each acting on its mean)
played from each condition's start for the episode's 50 steps, and the fingertip's distance to
the target at the end. "Solved": that distance below --threshold on every condition. Also the
runs' evaluation curves (eval/episodic_return, one episode per condition per point).

Usage: .venv/bin/python bench/gps_vs_sac.py [--seeds 0 1 2 3 4] [--budget 15000]
         [--threshold 0.05] [--out bench/results/gps-vs-sac]
Each run's JSON is kept in --out and reused when present; then summary.md and curves.png.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from lst_figure3 import mean_band, new_axes, save, t_half_width  # bench/ is the script's sys.path[0]

from mbrl_ray.config import apply_overrides, load_preset

ARMS = ("gps", "gps-supervised", "gps-model", "sac")
LABELS = {"gps": "GPS, importance-sampled policy step (2013)",
          "gps-supervised": "GPS, supervised policy step",
          "gps-model": "GPS through a learned model (supervised)", "sac": "SAC"}
CONDITIONS = ["env.id=Reacher-v5", "env.max_episode_steps=50", "env.conditions=4",
              "env.condition_seed=8"]


def arm_config(arm: str, seed: int, budget: int):
    if arm == "sac":
        overrides = CONDITIONS + ["train.eval_every=1000", "train.eval_episodes=4"]
        cfg = apply_overrides(load_preset("sac-pendulum"), overrides)
    elif arm == "gps-model":
        cfg = load_preset("gps-model-reacher")
    else:
        cfg = load_preset("gps-reacher")
        if arm == "gps-supervised":
            cfg = apply_overrides(cfg, ["gps.policy_step=supervised"])
    return apply_overrides(cfg, [f"train.seed={seed}", f"train.steps={budget}"])


def run_arm(arm: str, seed: int, args, work: Path) -> dict:
    """One arm on one seed -> {'evals': [[env step, mean return], ...], 'distances': [per
    condition], 'seconds'}."""
    from mbrl_ray.distributed.driver import Driver
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = arm_config(arm, seed, args.budget)
    run_dir = work / f"{arm}-seed{seed}"
    t0 = time.monotonic()
    Driver(cfg, run_dir, printer=lambda *a, **k: None).run()
    seconds = time.monotonic() - t0
    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    evals = [[e.step, e.value] for e in acc.Scalars("eval/episodic_return")]
    return {"arm": arm, "seed": seed, "evals": evals, "seconds": seconds,
            "distances": final_distances(cfg, run_dir)}


def final_distances(cfg, run_dir: Path) -> list[float]:
    """The run's newest checkpoint's policy, acting on its mean from each condition's start:
    the fingertip-target distance after the last step."""
    import torch

    from mbrl_ray.agents import make_learner
    from mbrl_ray.envs import env_kwargs, env_spec, make_env
    from mbrl_ray.evaluate import Request, choose_checkpoint

    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    agent = make_learner(spec, cfg, torch.device("cpu"), seed=cfg.train.seed)
    choose_checkpoint(Request(run_dir), agent, lambda *a, **k: None)
    distances = []
    for cond in range(cfg.env.conditions):
        env = make_env(cfg.env.id, seed=cond, **env_kwargs(cfg.env))
        obs, _ = env.reset(seed=cond)
        state = agent.initial_state(1)
        for _ in range(cfg.env.max_episode_steps):
            action, state = agent.act(obs[None], state, explore=False)
            obs, *_ = env.step(action[0])
        distances.append(float(np.linalg.norm(obs[8:10])))
        env.close()
    return distances


def summarise(runs: dict, threshold: float, budget: int, out: Path) -> str:
    """The tables and the figure over the arms with runs (an arm added later may have none
    at a past budget) and the seeds every one of them ran."""
    arms = [a for a in ARMS if runs.get(a)]
    seeds = sorted(set.intersection(*(set(runs[a]) for a in arms)))
    lines = [f"# GPS against SAC on Reacher-v5, 4 fixed starts, {budget:,} env steps "
             f"({len(seeds)} paired seeds)", "",
             "Final fingertip-target distance of the delivered policy per condition (m); "
             f"solved: every condition below {threshold}.", "",
             "| arm | seed | distances | worst | solved | final eval return | wall-clock s |",
             "| --- | ---: | --- | ---: | :---: | ---: | ---: |"]
    for arm in arms:
        for s in seeds:
            r = runs[arm][s]
            d = r["distances"]
            lines.append(f"| {arm} | {s} | {' '.join(f'{x:.3f}' for x in d)} | {max(d):.3f} | "
                         f"{'yes' if max(d) < threshold else 'no'} | {r['evals'][-1][1]:.2f} | "
                         f"{r['seconds']:.0f} |")
    lines += ["", "| arm | seeds solved | mean worst distance (95% t) | mean final return "
              "(95% t) |", "| --- | ---: | ---: | ---: |"]
    for arm in arms:
        worst = np.array([max(runs[arm][s]["distances"]) for s in seeds])
        final = np.array([runs[arm][s]["evals"][-1][1] for s in seeds])
        lines.append(f"| {arm} | {int((worst < threshold).sum())} / {len(seeds)} | "
                     f"{worst.mean():.3f} ± {t_half_width(worst):.3f} | "
                     f"{final.mean():.2f} ± {t_half_width(final):.2f} |")
    gap = np.array([runs["gps"][s]["evals"][-1][1] - runs["sac"][s]["evals"][-1][1]
                    for s in seeds])
    lines += ["", f"Paired final return, GPS (importance) minus SAC: {gap.mean():.2f} ± "
              f"{t_half_width(gap):.2f} (95% t)."]
    figure(runs, arms, seeds, out / "curves.png")
    return "\n".join(lines) + "\n"


def figure(runs: dict, arms: list, seeds: list, path: Path) -> None:
    fig, ax = new_axes()
    for arm in arms:
        mean_band(ax, [runs[arm][s]["evals"] for s in seeds], LABELS[arm])
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation return (mean over the 4 conditions)")
    ax.set_title(f"Reacher-v5, 4 fixed starts: mean and 95% t band over {len(seeds)} seeds")
    ax.legend(loc="lower right")
    save(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=int, default=15000)
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=Path("bench/results/gps-vs-sac"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/gps-vs-sac"))
    parser.add_argument("--arms", nargs="+", default=list(ARMS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs: dict = {a: {} for a in ARMS}
    for seed in args.seeds:
        for arm in ARMS:
            path = args.out / f"{arm}-seed{seed}.json"
            if not path.exists() and arm in args.arms:
                result = run_arm(arm, seed, args, args.work)
                path.write_text(json.dumps(result))
                print(f"{arm} seed {seed}: distances {np.round(result['distances'], 3)}, "
                      f"{result['seconds']:.0f} s", flush=True)
            if path.exists():
                runs[arm][seed] = json.loads(path.read_text())
    if all(runs[a] for a in ("gps", "sac")):
        summary = summarise(runs, args.threshold, args.budget, args.out)
        (args.out / "summary.md").write_text(summary)
        print(summary)


if __name__ == "__main__":
    main()
