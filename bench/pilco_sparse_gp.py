"""PILCO's sparse GP (FITC, `pilco.inducing`) against its exact GP as the data grows: the
learner's cost per trial and what the approximation loses, measured in the same run.

Data: cart-pole swing-up trials (`mbrl_ray/CartPoleSwingUp-v0`, 25 steps) played with
temporally correlated random forces (an AR(1) of coefficient 0.8 in [-1, 1], so the pole swings
high); the first n transitions are the model's data, 10 further trials the held-out set. For
each n and model (exact; FITC with M inducing inputs learned from a random subset):

- fit s: the hyperparameters' L-BFGS (`pilco.gp_iterations` = 100) from their initial values;
- rollout s: one predicted cost of a 25-step trial and its gradient for the preset's initial
  RBF policy (the unit of the policy search, which evaluates it ~100-150 times per trial);
- one-step RMSE of the posterior mean on the held-out transitions, per state dimension in
  units of the targets' std (mean over dimensions);
- |predicted cost - exact's|: the same policy's predicted cost (sum of 25 expected costs)
  against the exact GP's on the same data.
Ratios are sparse / exact at the same n.

Usage: .venv/bin/python bench/pilco_sparse_gp.py [--sizes 250 500 1000] [--inducing 100 300]
         [--threads 2] [--out bench/results/pilco-sparse-gp]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mbrl_ray.agents.pilco import F64, PILCOLearner
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs.make import env_spec, make_env
from mbrl_ray.planners.pilco_rollout import predicted_costs
from mbrl_ray.world_models.gp import ExactGP
from mbrl_ray.world_models.sparse_gp import SparseGP

STEPS, HELD_OUT_TRIALS, ITERATIONS = 25, 10, 100


def trials(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(obs, action, next_obs) of `count` trials with AR(1) random forces."""
    env = make_env("mbrl_ray/CartPoleSwingUp-v0", seed=seed, max_episode_steps=STEPS)
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        obs, _ = env.reset()
        u = rng.uniform(-1, 1)
        for _ in range(STEPS):
            u = float(np.clip(0.8 * u + 0.6 * rng.normal(), -1, 1))
            nxt, *_ = env.step(np.array([u], dtype=np.float32))
            rows.append((obs, [u], nxt))
            obs = nxt
    return tuple(torch.as_tensor(np.array([r[i] for r in rows]), dtype=F64) for i in range(3))


def measure(gp: ExactGP, agent: PILCOLearner, held_out, exact_cost: float | None) -> dict:
    t0 = time.perf_counter()
    gp.fit(ITERATIONS)
    fit_s = time.perf_counter() - t0
    agent.policy.zero_grad()
    t0 = time.perf_counter()
    cost = predicted_costs(agent.task, agent.policy, gp, STEPS).sum()
    cost.backward()
    rollout_s = time.perf_counter() - t0
    x, y = held_out
    with torch.no_grad():
        rmse = (((gp.predict(x)[0] - y) / y.std(0)) ** 2).mean(0).sqrt()
    out = {"fit_s": fit_s, "rollout_s": rollout_s, "rmse": rmse.tolist(),
           "predicted_cost": float(cost)}
    if exact_cost is not None:
        out["cost_gap"] = abs(float(cost) - exact_cost)
    return out


def run(args) -> list[dict]:
    agent = PILCOLearner(env_spec("mbrl_ray/CartPoleSwingUp-v0", max_episode_steps=STEPS),
                       load_preset("pilco-cartpole-swingup"))
    obs, act, nxt = trials(max(args.sizes) // STEPS, seed=0)
    h_obs, h_act, h_nxt = trials(HELD_OUT_TRIALS, seed=1)
    held_out = (agent.task.model_inputs(h_obs, h_act), h_nxt - h_obs)
    X, Y = agent.task.model_inputs(obs, act), nxt - obs
    rows = []
    for n in args.sizes:
        exact = measure(ExactGP(X[:n], Y[:n]), agent, held_out, None)
        rows.append({"n": n, "model": "exact", **exact})
        print(json.dumps(rows[-1]), flush=True)
        for m in args.inducing:
            if m >= n:
                continue
            gp = SparseGP(X[:n], Y[:n], m, None, torch.Generator().manual_seed(0))
            rows.append({"n": n, "model": f"FITC M={m}",
                         **measure(gp, agent, held_out, exact["predicted_cost"])})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def summarise(rows: list[dict], args) -> str:
    exact = {r["n"]: r for r in rows if r["model"] == "exact"}
    lines = ["# PILCO's sparse GP (FITC) against the exact GP", "",
             f"Made by `bench/pilco_sparse_gp.py` ({args.threads} torch threads). Ratios: "
             "sparse / exact at the same n, measured in the same run. RMSE: one-step, held-out, "
             "in units of the targets' std, mean over the 4 state dimensions. Costs: the preset's "
             "initial RBF policy's predicted cost (25 steps).", "",
             "| n | model | fit s (ratio) | rollout + gradient s (ratio) | one-step RMSE | "
             "predicted cost | gap to exact |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        e = exact[r["n"]]
        fit = f"{r['fit_s']:.1f}" + ("" if r is e else f" ({r['fit_s'] / e['fit_s']:.2f}x)")
        roll = f"{r['rollout_s']:.2f}" + ("" if r is e else
                                         f" ({r['rollout_s'] / e['rollout_s']:.2f}x)")
        gap = f"{r['cost_gap']:.2f}" if "cost_gap" in r else "-"
        lines.append(f"| {r['n']} | {r['model']} | {fit} | {roll} | {np.mean(r['rmse']):.4f} | "
                     f"{r['predicted_cost']:.2f} | {gap} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--inducing", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/pilco-sparse-gp"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = run(args)
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    summary = summarise(rows, args)
    (args.out / "summary.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
