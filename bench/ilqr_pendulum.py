"""Can control-limited iLQR through a model swing Pendulum-v1 up where GPS's local steps
cannot (issue 43)? planners/ilqr.py on Pendulum-v1's own dynamics, written in torch here (and
checked against the env's step on random states and actions first): the best case for a learned
model. From each of `gps`'s 4 Pendulum starts (condition_seed 0), 200 steps, the GPS cost
(task_costs.py), from zero actions and from --restarts uniformly random ones, --iterations
iterations each. Reported per run: the trajectory's cost (hanging still costs 800), whether it
ends upright (cos angle > 0.95 over the last 50 steps) and the seconds it took.

Usage: .venv/bin/python bench/ilqr_pendulum.py [--iterations 150] [--restarts 2]
         [--out bench/results/ilqr-pendulum]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from mbrl_ray.planners.ilqr import ilqr
from mbrl_ray.task_costs import task_cost

F64, T, CONDITIONS = torch.float64, 200, 4
G, DT, MAX_SPEED = 10.0, 0.05, 8.0  # Pendulum-v1's constants (m = l = 1, max torque 2)


def pendulum_step(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Pendulum-v1's step on observations (cos, sin, speed), actions in [-1, 1] x 2 N m."""
    angle, speed = torch.atan2(x[..., 1], x[..., 0]), x[..., 2]
    speed = (speed + (1.5 * G * torch.sin(angle) + 3.0 * 2.0 * u[..., 0]) * DT)
    speed = speed.clamp(-MAX_SPEED, MAX_SPEED)
    angle = angle + speed * DT
    return torch.stack([torch.cos(angle), torch.sin(angle), speed], -1)


def check_against_the_env(samples: int = 200) -> float:
    """The largest difference between pendulum_step and the env's step."""
    env, rng, worst = gym.make("Pendulum-v1").unwrapped, np.random.default_rng(0), 0.0
    env.reset(seed=0)
    for _ in range(samples):
        env.state = np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-8, 8)])
        obs = env._get_obs()
        action = rng.uniform(-1, 1, 1)
        want, *_ = env.step(2.0 * action)
        got = pendulum_step(torch.as_tensor(obs, dtype=F64), torch.as_tensor(action))
        worst = max(worst, float(np.abs(got.numpy() - want).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/ilqr-pendulum"))
    args = parser.parse_args()
    error = check_against_the_env()
    assert error < 1e-4, f"the torch port differs from Pendulum-v1 by {error}"
    env, cost, runs = gym.make("Pendulum-v1"), task_cost("Pendulum-v1"), []
    for cond in range(CONDITIONS):
        x0 = torch.as_tensor(env.reset(seed=cond)[0], dtype=F64)
        for init in ["zero"] + [f"random-{r}" for r in range(args.restarts)]:
            u0 = torch.zeros(T, 1, dtype=F64) if init == "zero" else \
                torch.rand(T, 1, dtype=F64, generator=torch.Generator().manual_seed(
                    int(init.split("-")[1]))) * 2 - 1
            t0 = time.perf_counter()
            traj, _ = ilqr(pendulum_step, cost, x0, u0, args.iterations)
            runs.append({"condition": cond, "init": init, "cost": traj.cost,
                         "upright": bool((traj.x[-50:, 0] > 0.95).all()),
                         "seconds": time.perf_counter() - t0})
            print(runs[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "runs.json").write_text(json.dumps({"port_error": error, "runs": runs},
                                                   indent=1) + "\n")
    lines = [f"Pendulum-v1 port checked against the env: largest difference {error:.2e}.", "",
             "| condition | init | cost | upright at the end | seconds |",
             "| ---: | --- | ---: | --- | ---: |"]
    lines += [f"| {r['condition']} | {r['init']} | {r['cost']:.0f} | "
              f"{'yes' if r['upright'] else 'no'} | {r['seconds']:.0f} |" for r in runs]
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
