"""Can GPS swing Pendulum-v1 up: with control-limited local steps, or planning through a
learned model? (issue 43)

GPS's learner and a worker's acting part in one process, as tests/test_gps.py drives them (no
Ray: the question is the controllers', not the topology's): 4 fixed starts (condition_seed 0),
200-step episodes, each round 5 episodes per condition from the local controllers, then the
learner's step on every transition so far and the supervised policy step. Arms: the
unconstrained KL-bounded LQR step on local fits (gps.kl_step 1, actions clipped by the env),
`gps.action_limits=true` (a box QP per step at the samples' mean states), and
`gps.dynamics=model` (MPC then iLQR through a delta network fitted to all data, ARMS below).
Per round: the mean cost of an episode (the env's reward negated, with 2 (1 - cos) for the
angle term; hanging still costs 800), the share of episodes upright (cos angle > 0.95) over
their last 50 steps, and the neural policy's (its mean, noise-free) cost and upright count over
the 4 starts.

Usage: .venv/bin/python bench/gps_pendulum_limits.py [--seeds 0 1] [--rounds 15]
         [--arms unconstrained limited model] [--out bench/results/gps-pendulum-limits]
         [--summarise]  (tabulate the per-run JSON present, run nothing)
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from mbrl_ray.agents import make_actor, make_learner
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs import env_kwargs, env_spec
from mbrl_ray.envs.batch import EnvBatch, StreamRows
from mbrl_ray.replay import StreamStorage, all_transitions
from mbrl_ray.task_costs import task_cost

T, PER_CONDITION, ENVS, CONDITIONS = 200, 5, 4, 4
SETTINGS = ["env.id=Pendulum-v1", f"env.max_episode_steps={T}", "env.condition_seed=0",
            f"env.conditions={CONDITIONS}", "gps.policy_step=supervised",
            "gps.policy_steps=50"]
ARMS = {"unconstrained": [], "limited": ["gps.action_limits=true"],
        "model": ["gps.dynamics=model", "delta.hidden_size=200", "delta.epochs=20",
                  "planner.horizon=40", "planner.population=200", "planner.num_elites=20",
                  "planner.iterations=3"]}


def play_round(cfg, spec, actor, seed: int) -> dict:
    """Every env plays PER_CONDITION whole episodes, cycling through the conditions."""
    steps = PER_CONDITION * T
    store = StreamStorage(ENVS * (steps + 10), spec)
    envs, rows = EnvBatch(cfg.env, ENVS, seed), StreamRows(spec, ENVS, steps)
    state = actor.initial_state(ENVS)
    for _ in range(steps):
        actions, state = actor.act(envs.obs, state)
        _, done = envs.step(actions, rows)
        state = actor.reset_state(state, done)
    for key, segment in rows.segments(list(range(ENVS))):
        store.add(segment, key)
    envs.close()
    return all_transitions(store)


def policy_costs(learner, spec) -> tuple[float, int]:
    """The neural policy's mean played from each start on Pendulum-v1: its mean episode cost
    (the GPS cost, task_costs.py) and how many starts end upright over the last 50 steps."""
    env, cost = gym.make("Pendulum-v1").unwrapped, task_cost("Pendulum-v1")
    costs, upright = [], 0
    env.reset(seed=0)
    for x0 in learner.starts.numpy():
        env.state = np.array([np.arctan2(x0[1], x0[0]), x0[2]])
        obs, total, tops = env._get_obs(), 0.0, []
        for _ in range(T):
            x = torch.as_tensor(obs, dtype=torch.float32)
            with torch.no_grad():
                u = learner.policy(x).clamp(-1, 1)
            total += float(cost.step(x, u))
            obs, *_ = env.step(2 * u.numpy())
            tops.append(obs[0] > 0.95)
        costs.append(total)
        upright += all(tops[-50:])
    env.close()
    return float(np.mean(costs)), upright


def run(arm: str, seed: int, rounds: int) -> dict:
    cfg = apply_overrides(load_preset("gps-reacher"), SETTINGS + ARMS[arm])
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    learner, actor = make_learner(spec, cfg, seed=seed), make_actor(spec, cfg, seed=seed + 1)
    rows, env_steps, held = [], 0, None
    for r in range(rounds):
        t0 = time.perf_counter()
        data = play_round(cfg, spec, actor, seed=1000 * seed + r)
        held = data if held is None else {k: np.concatenate([held[k], data[k]]) for k in held}
        env_steps += len(data["obs"])
        logs = learner.fit(held, env_steps)
        actor.load_inference_weights(copy.deepcopy(learner.inference_weights()))
        seconds = time.perf_counter() - t0
        episodes = data["obs"].reshape(-1, T, spec.obs_dim)
        policy_cost, policy_upright = policy_costs(learner, spec)
        rows.append({"round": r, "env_steps": env_steps,
                     "episode_cost": float(np.mean([logs[f"gps_sample_cost_{c}"]
                                                    for c in range(CONDITIONS)])),
                     "upright_share": float((episodes[:, -50:, 0] > 0.95).all(1).mean()),
                     "policy_cost": policy_cost, "policy_upright": policy_upright,
                     "seconds": seconds})
        print(arm, seed, rows[-1], flush=True)
    return {"arm": arm, "seed": seed, "rounds": rows}


def summary(results: list[dict]) -> str:
    lines = ["| arm | seed | cost, round 1 | cost, last round | lowest cost | upright share, "
             "best round | policy cost, last round (lowest) | policy upright, best round | "
             "s per round |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for res in results:
        r = res["rounds"]
        costs = [x["episode_cost"] for x in r]
        policy = [x["policy_cost"] for x in r if "policy_cost" in x]
        policy_cells = (f"{policy[-1]:.0f} ({min(policy):.0f}) | "
                        f"{max(x['policy_upright'] for x in r)} of {CONDITIONS}" if policy
                        else "not recorded | not recorded")
        lines.append(f"| {res['arm']} | {res['seed']} | {costs[0]:.0f} | {costs[-1]:.0f} | "
                     f"{min(costs):.0f} | {max(x['upright_share'] for x in r):.2f} | "
                     f"{policy_cells} | {np.mean([x['seconds'] for x in r]):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--out", type=Path, default=Path("bench/results/gps-pendulum-limits"))
    parser.add_argument("--summarise", action="store_true",
                        help="only tabulate the runs already in --out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.summarise:
        results = [json.loads(p.read_text()) for p in sorted(args.out.glob("*-seed*.json"))]
        (args.out / "summary.md").write_text(summary(results))
        print(summary(results))
        return
    results = []
    for seed in args.seeds:
        for arm in args.arms:
            path = args.out / f"{arm}-seed{seed}.json"
            if not path.exists():
                path.write_text(json.dumps(run(arm, seed, args.rounds), indent=1) + "\n")
            results.append(json.loads(path.read_text()))
    (args.out / "summary.md").write_text(summary(results))
    print(summary(results))


if __name__ == "__main__":
    main()
