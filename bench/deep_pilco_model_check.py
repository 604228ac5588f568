"""Why Deep PILCO does not learn the swing-up here: its dropout network against PILCO's GP on
the same data, outside Ray.

PILCO (the `pilco-cartpole-swingup` preset's agent) plays the trials, so the data is that of a
run that succeeds; after each trial both models are fitted on every transition so far (the GP
as PILCO fits it, the dropout network as `deep-pilco-cartpole-swingup` trains it, fresh each
round with the given Adam steps) and checked on the *next* trial, which PILCO's newest policy
plays:

- one-step error: RMSE of each model's mean prediction of x' - x on that trial's transitions,
  per state dimension, in units of the targets' std (the dropout mean over 50 masks); the
  dropout spread: the std over those masks, same units;
- predicted cost of that policy (sum over the 25 steps of the expected saturating cost): the
  GP's moment matching; the dropout network's particles (200, Deep PILCO's rollout); and the
  GP's posterior mean pushed through the same particle rollout, which checks the particle
  machinery apart from the model; beside the trial's actual cost.

Usage: .venv/bin/python bench/deep_pilco_model_check.py [--seed 0] [--rounds 5]
         [--model-steps 1000 10000] [--out bench/results/deep-pilco-model-check]
Writes rounds.json and summary.md in --out.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mbrl_ray.agents.deep_pilco import DeepPILCOLearner
from mbrl_ray.agents.pilco import F64, PILCOLearner
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs.make import env_spec, make_env
from mbrl_ray.planners.particle_rollout import particle_costs

KEYS = ("obs", "next_obs", "action")
STEPS, PARTICLES, MASKS = 25, 200, 50


class GPDynamics:
    """PILCO's GP in the dropout network's place (no masks): its posterior mean, or, while
    `generator` is set, a draw from its posterior at each input (fresh each step)."""

    def __init__(self, gp=None, generator: torch.Generator | None = None) -> None:
        self.gp, self.generator = gp, generator

    def sample_masks(self, count, generator):
        return None

    def __call__(self, x, masks):
        mean, var = self.gp.predict(x)
        if self.generator is None:
            return mean
        noise = torch.randn(mean.shape, generator=self.generator, dtype=mean.dtype)
        return mean + var.clamp(min=0).sqrt() * noise


def play(env, agent) -> dict[str, np.ndarray]:
    obs, _ = env.reset()
    rows = {k: [] for k in KEYS}
    for _ in range(STEPS):
        act, _ = agent.act(obs[None], {})
        nxt, *_ = env.step(act[0])
        for k, v in zip(KEYS, (obs, nxt, act[0])):
            rows[k].append(v)
        obs = nxt
    return {k: np.array(v) for k, v in rows.items()}


def one_step(agent: DeepPILCOLearner, gp, trial: dict) -> dict[str, list[float]]:
    obs, nxt, act = (torch.as_tensor(trial[k], dtype=F64) for k in KEYS)
    x, y = agent.task.model_inputs(obs, act), nxt - obs
    with torch.no_grad():
        masks = agent.dynamics.sample_masks(len(x) * MASKS, torch.Generator().manual_seed(1))
        samples = agent.dynamics(x.repeat(MASKS, 1), masks).reshape(MASKS, len(x), -1)
        gp_mean = gp.predict(x)[0]
    sd = y.std(0)

    def rmse(pred):
        return (((pred - y) / sd) ** 2).mean(0).sqrt().tolist()

    return {"gp_rmse": rmse(gp_mean), "dropout_rmse": rmse(samples.mean(0)),
            "dropout_spread": (samples.std(0) / sd).mean(0).tolist()}


def particle_cost(agent, model, policy) -> float:
    with torch.no_grad():
        return float(particle_costs(agent.task, policy, model, STEPS, PARTICLES,
                                    torch.Generator().manual_seed(0)).sum())


def run(args) -> list[dict]:
    seed = [f"train.seed={args.seed}"]
    pcfg = apply_overrides(load_preset("pilco-cartpole-swingup"), seed)
    spec = env_spec(pcfg.env.id, max_episode_steps=STEPS)
    env = make_env(pcfg.env.id, seed=args.seed, max_episode_steps=STEPS)
    pilco = PILCOLearner(spec, pcfg, seed=args.seed)
    data = play(env, pilco)  # trial 1: random actions
    rounds = []
    for rnd in range(1, args.rounds + 1):
        logs = pilco.fit(data, len(data["obs"]))
        trial = play(env, pilco)
        gp = pilco.model(data)
        row = {"trial": rnd + 1, "transitions": len(data["obs"]),
               "actual_cost": float(pilco.task.cost(torch.as_tensor(trial["next_obs"],
                                                                    dtype=F64)).sum()),
               "gp_predicted": logs["pilco_predicted_cost"],
               "gp_mean_particles": particle_cost(pilco, GPDynamics(gp), pilco.policy)}
        for steps in args.model_steps:
            cfg = apply_overrides(load_preset("deep-pilco-cartpole-swingup"),
                                  seed + [f"deep_pilco.model_steps={steps}"])
            deep = DeepPILCOLearner(spec, cfg, seed=args.seed)
            t0 = time.monotonic()
            deep.fit_dynamics(data)
            row[f"dropout_{steps}"] = {"fit_s": time.monotonic() - t0,
                                       "predicted": particle_cost(deep, deep.dynamics,
                                                                  pilco.policy),
                                       **one_step(deep, gp, trial)}
        rounds.append(row)
        print(json.dumps(row), flush=True)
        data = {k: np.concatenate([data[k], trial[k]]) for k in KEYS}
    return rounds


def summarise(rounds: list[dict], args) -> str:
    def fmt(values):
        return " ".join(f"{x:.3f}" for x in values)

    lines = [f"# Deep PILCO's dropout network against PILCO's GP, seed {args.seed}", "",
             "Made by `bench/deep_pilco_model_check.py`. Each row: the models fitted on the "
             "transitions before the trial, checked on the trial (played by PILCO's newest "
             "policy). RMSE and spread per state dimension (x, x', theta', theta) in units of "
             "the trial's target std; costs are sums over the 25 steps (25 = never near "
             "upright).", "",
             "| trial | transitions | actual cost | GP predicted | GP mean, particles | model | "
             "predicted (particles) | one-step RMSE | dropout spread | fit s |",
             "| ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- | ---: |"]
    for r in rounds:
        head = (f"| {r['trial']} | {r['transitions']} | {r['actual_cost']:.1f} | "
                f"{r['gp_predicted']:.1f} | {r['gp_mean_particles']:.1f} |")
        lines.append(f"{head} GP | - | {fmt(r['dropout_' + str(args.model_steps[0])]['gp_rmse'])}"
                     " | - | - |")
        for steps in args.model_steps:
            d = r[f"dropout_{steps}"]
            lines.append(f"{head} dropout, {steps} Adam steps | {d['predicted']:.1f} | "
                         f"{fmt(d['dropout_rmse'])} | {fmt(d['dropout_spread'])} | "
                         f"{d['fit_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model-steps", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--out", type=Path, default=Path("bench/results/deep-pilco-model-check"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    rounds = run(args)
    (args.out / "rounds.json").write_text(json.dumps(rounds, indent=1))
    summary = summarise(rounds, args)
    (args.out / "summary.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
