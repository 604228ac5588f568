"""Returns of constant-action policies on one task: the floor a learner that has only learned to
push one way reaches. Used to read early evaluation points (a deterministic actor that saturates
its action scores what a constant +-1 does, without having learned the task).

Usage: .venv/bin/python bench/constant_policy.py [--task dmc:cartpole-swingup]
           [--action-repeat 2] [--episodes 5] [--values -1 -0.5 0 0.5 1] [--seed 10003]
"""
from __future__ import annotations

import argparse

import numpy as np

from mbrl_ray.envs import make_env


def constant_returns(task: str, repeat: int, value: float, episodes: int, seed: int) -> list[float]:
    """Episode returns of the policy that always acts `value` on every action dimension."""
    env = make_env(task, seed=seed, action_repeat=repeat)
    action = np.full(env.action_space.shape, value, dtype=np.float32)
    returns = []
    for _ in range(episodes):
        env.reset()
        done, ret = False, 0.0
        while not done:
            _, reward, term, trunc, _ = env.step(action)
            ret, done = ret + float(reward), term or trunc
        returns.append(ret)
    env.close()
    return returns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="dmc:cartpole-swingup")
    ap.add_argument("--action-repeat", type=int, default=2)
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--values", type=float, nargs="+", default=[-1.0, -0.5, 0.0, 0.5, 1.0])
    ap.add_argument("--seed", type=int, default=10_003)
    args = ap.parse_args()
    print(f"{args.task}, action repeat {args.action_repeat}, {args.episodes} episodes each")
    for value in args.values:
        r = constant_returns(args.task, args.action_repeat, value, args.episodes, args.seed)
        print(f"constant {value:+.2f}: mean {np.mean(r):.1f} (min {min(r):.1f}, max {max(r):.1f})")


if __name__ == "__main__":
    main()
