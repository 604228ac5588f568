"""MBMF against PPO alone on Pendulum-v1 (issue 43's sample-efficiency claim), paired seeds.

Arms, each seed, every evaluation `--episodes` episodes of the acting policy's mean (the runs'
protocol, fresh env seeds):
- mbmf: `mbmf-pendulum` through the real topology (MPC 3,000 env steps, DAgger to 5,000), then
  PPO fine-tuning from the imitation policy for `--finetune` env steps (the hook `mbrl-ray
  train` runs: MBMFAgent.after_training);
- mpc: `mb-mpc-pendulum` for 5,000 env steps (MBMF's model-based phase alone, continued);
- ppo: RLlib's PPO alone from fresh weights for `--budget` env steps, the same module and PPO
  settings as the fine-tuning (agents/mbmf_ppo.py; RLlib's Pendulum values in the preset), its
  std starting at 1 (RLlib's default) where the fine-tuning starts at the imitation's 0.1.
The claim measured: R = PPO alone's return at its budget (the mean of its last 3 evaluations);
for each seed the env steps at which each arm's curve first reaches R, and PPO's over MBMF's.

Usage: .venv/bin/python bench/mbmf_vs_ppo.py [--seeds 0 1 2 3 4] [--budget 100000]
         [--finetune 20000] [--episodes 10] [--out bench/results/mbmf-vs-ppo]
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

ARMS = ("mbmf", "mpc", "ppo")
PRESETS = {"mbmf": "mbmf-pendulum", "mpc": "mb-mpc-pendulum"}
PPO_EVAL_EVERY = 5000
RANDOM_PLAY = -1163.0  # the presets' 600 random steps, seed 0 (mean return per 200-step episode)


def run_arm(arm: str, seed: int, args, work: Path) -> dict:
    """One arm on one seed -> {'evals': [[env step, mean return], ...], 'seconds'}."""
    t0 = time.monotonic()
    evals = ppo_alone(seed, args) if arm == "ppo" else topology_run(arm, seed, args, work)
    return {"arm": arm, "seed": seed, "evals": evals, "seconds": time.monotonic() - t0}


def topology_run(arm: str, seed: int, args, work: Path) -> list:
    from mbrl_ray.agents import agent_class
    from mbrl_ray.distributed.driver import Driver
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = apply_overrides(load_preset(PRESETS[arm]), [
        f"train.seed={seed}", "train.steps=5000", f"train.eval_episodes={args.episodes}",
        f"mbmf.finetune_steps={args.finetune if arm == 'mbmf' else 0}"])
    run_dir = work / f"{arm}-seed{seed}"
    Driver(cfg, run_dir, printer=lambda *a, **k: None).run()
    agent_class(cfg).after_training(cfg, run_dir, lambda *a, **k: None)
    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    evals = [[e.step, e.value] for e in acc.Scalars("eval/episodic_return")]
    for finetune in sorted(run_dir.glob("finetune-*/result.json")):
        evals += json.loads(finetune.read_text())["evals"][1:]  # [0]: the step handed over
    return evals


def ppo_alone(seed: int, args) -> list:
    import torch

    from mbrl_ray import finetune, seeding
    from mbrl_ray.agents import make_learner
    from mbrl_ray.agents.mbmf_ppo import policy_weights, train_ppo
    from mbrl_ray.distributed.preflight import init_ray
    from mbrl_ray.envs import env_kwargs, env_spec

    cfg = apply_overrides(load_preset(PRESETS["mbmf"]), [  # PPO's own initial std: 1
        f"train.seed={seed}", f"train.eval_episodes={args.episodes}", "mbmf.std=1.0"])
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    agent = make_learner(spec, cfg, torch.device("cpu"), seed=seed)
    agent.imitating = True  # evaluations act on agent.actor: PPO's policy, loaded below
    evaluate = finetune.policy_evaluator(agent, cfg)
    evals = []

    def on_iteration(done: int, module, result: dict) -> None:
        if done // PPO_EVAL_EVERY > (evals[-1][0] // PPO_EVAL_EVERY if evals else 0) \
                or done >= args.budget:
            agent.actor.load_state_dict(policy_weights(module.pi))
            evals.append(list(evaluate(done)))

    init_ray(cfg)
    train_ppo(cfg, None, args.budget, seeding.derive(seed, seeding.SAC), on_iteration)
    return evals


def first_reach(evals: list, target: float) -> float:
    return next((step for step, ret in evals if ret >= target), float("nan"))


def summarise(runs: dict, out: Path) -> str:
    seeds = sorted(set.intersection(*(set(runs[a]) for a in ARMS)))
    lines = [f"# MBMF against PPO alone, Pendulum-v1 ({len(seeds)} paired seeds)", "",
             "| seed | PPO alone's return R at its budget | PPO alone first reaches R | "
             "MBMF first reaches R | MPC alone first reaches R | PPO / MBMF |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    ratios = []
    for s in seeds:
        target = float(np.mean([r for _, r in runs["ppo"][s]["evals"][-3:]]))
        reach = {a: first_reach(runs[a][s]["evals"], target) for a in ARMS}
        ratios.append(reach["ppo"] / reach["mbmf"])
        lines.append(f"| {s} | {target:.0f} | {reach['ppo']:.0f} | {reach['mbmf']:.0f} | "
                     f"{reach['mpc']:.0f} | {ratios[-1]:.1f}x |")
    logs = np.log(ratios)
    mean, half = logs.mean(), t_half_width(logs)
    lines += ["", f"PPO alone's env steps over MBMF's to the same return: geometric mean "
              f"{np.exp(mean):.1f}x, 95% t interval on the log ratio "
              f"[{np.exp(mean - half):.1f}x, {np.exp(mean + half):.1f}x]."]
    figure(runs, seeds, out / "curves.png")
    return "\n".join(lines) + "\n"


def figure(runs: dict, seeds: list, path: Path) -> None:
    fig, ax = new_axes()
    for arm, label in (("ppo", "PPO alone"), ("mpc", "MBMF's MPC phase alone"),
                       ("mbmf", "MBMF (MPC, DAgger, PPO fine-tuning)")):
        mean_band(ax, [runs[arm][s]["evals"] for s in seeds], label)
    ax.axhline(RANDOM_PLAY, color="grey", linestyle=":", label="random play (-1,163, seed 0)")
    for step, what in ((3000, "DAgger"), (5000, "PPO fine-tuning")):
        ax.axvline(step, color="grey", linewidth=0.8)
        ax.text(step, 0.98, f" {what}", transform=ax.get_xaxis_transform(), fontsize=8,
                va="top")
    ax.set_ylim(-1800, 0)
    ax.set_xscale("log")
    ax.set_xlabel("env steps (log scale)")
    ax.set_ylabel("evaluation return (mean over seeds, 95% t band)")
    ax.set_title(f"Pendulum-v1, {len(seeds)} seeds")
    ax.legend(loc="lower right")
    save(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=int, default=100_000)
    parser.add_argument("--finetune", type=int, default=20_000)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench/results/mbmf-vs-ppo"))
    parser.add_argument("--work", type=Path, default=Path("bench/out/mbmf-vs-ppo"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs: dict = {a: {} for a in ARMS}
    for seed in args.seeds:
        for arm in ARMS:
            path = args.out / f"{arm}-seed{seed}.json"
            if not path.exists():
                path.write_text(json.dumps(run_arm(arm, seed, args, args.work)))
            runs[arm][seed] = json.loads(path.read_text())
            print(f"{arm} seed {seed}: last evaluation {runs[arm][seed]['evals'][-1]}, "
                  f"{runs[arm][seed]['seconds']:.0f} s", flush=True)
    summary = summarise(runs, args.out)
    (args.out / "summary.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
