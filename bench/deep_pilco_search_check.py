"""Deep PILCO's other half: its particle policy search, given PILCO's GP as the dynamics, in
the trial loop, outside Ray.

Each trial: PILCO's GP is refitted on every transition so far (as `pilco` fits it); each
particle steps by a draw from the GP's posterior at its input (mean + std x noise, fresh each
step: the GP in the dropout network's place); the particles are moment-matched and resampled
as Deep PILCO does (planners/particle_rollout.py); the RBF policy (Deep PILCO's, warm started)
is improved by one of
- `adam`: the preset's search: Adam steps (deep_pilco.policy_steps, policy_lr), the draws held
  for deep_pilco.resample_every steps (common random numbers), the gradient clipped;
- `adam-fresh`: the preset's search before common random numbers: 500 Adam steps at 1e-2 on 10
  particles, fresh draws each step, no clipping;
- `lbfgs`: L-BFGS (100 iterations, strong Wolfe; PILCO's optimiser) on --particles fixed draws,
  kept only if it lowers the cost on them;
- `reinforce`: adam-fresh's Adam steps on the likelihood-ratio gradient
  (`deep_pilco.policy_gradient=reinforce`, its `reinforce_std` exploration, particles apart);
- `reinforce-held`: the same gradient with the preset's search (adam's held draws, steps,
  rate, particles and clipping): the lecture's REINFORCE against the paper's pathwise gradient
  at equal settings.
Then the policy plays the next trial. Trial 1 is random. Per trial: the cost predicted with 200
particles, the actual cost, and the tip's largest distance over the last 5 steps (the PILCO
bench's success measure: below 0.1 m).

Usage: .venv/bin/python bench/deep_pilco_search_check.py [--seed 0] [--trials 10]
         [--searches adam adam-fresh lbfgs reinforce reinforce-held] [--particles 50]
         [--set KEY=VALUE ...]
         [--out bench/results/deep-pilco-search-check]
Each search's rows are kept in --out (rows-SEARCH.json) and reused when present; then
summary.md from all of them.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from deep_pilco_model_check import KEYS, STEPS, GPDynamics, play  # bench/ is sys.path[0]

from mbrl_ray.agents.deep_pilco import DeepPILCOLearner
from mbrl_ray.agents.pilco import F64, PILCOLearner
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs.make import env_spec, make_env
from mbrl_ray.planners.particle_rollout import particle_costs, reinforce_surrogate


def cost(agent, model, particles: int, seed: int) -> torch.Tensor:
    model.generator = torch.Generator().manual_seed(seed + 1)
    return particle_costs(agent.task, agent.policy, model, STEPS, particles,
                          torch.Generator().manual_seed(seed)).sum()


def search_adam(agent: DeepPILCOLearner, model: GPDynamics, reinforce: bool = False) -> None:
    c = agent.cfg.deep_pilco
    for step in range(c.policy_steps):
        if step % max(c.resample_every, 1) == 0:  # fresh draws, or held (common random numbers)
            seed = int(torch.randint(1 << 30, (1,), generator=agent.generator))
        if reinforce:
            model.generator = torch.Generator().manual_seed(seed + 1)
            loss = reinforce_surrogate(agent.task, agent.policy, model, STEPS, c.particles,
                                       c.reinforce_std, torch.Generator().manual_seed(seed))[0]
        else:
            loss = cost(agent, model, c.particles, seed)
        agent.policy_opt.zero_grad(set_to_none=True)
        loss.backward()
        if c.policy_clip:
            torch.nn.utils.clip_grad_norm_(agent.policy.parameters(), c.policy_clip)
        agent.policy_opt.step()


def search_lbfgs(agent: DeepPILCOLearner, model: GPDynamics, particles: int) -> None:
    seed = int(torch.randint(1 << 30, (1,), generator=agent.generator))
    opt = torch.optim.LBFGS(agent.policy.parameters(), max_iter=100,
                            line_search_fn="strong_wolfe")
    start = {k: v.clone() for k, v in agent.policy.state_dict().items()}

    def closure():
        opt.zero_grad()
        loss = cost(agent, model, particles, seed)
        loss.backward()
        return loss

    before = float(closure().detach())
    opt.step(closure)
    if not float(closure().detach()) < before:
        agent.policy.load_state_dict(start)


FRESH = ["deep_pilco.particles=10", "deep_pilco.resample_every=0", "deep_pilco.policy_clip=0",
         "deep_pilco.policy_lr=1e-2", "deep_pilco.policy_steps=500"]


def run(search: str, args) -> list[dict]:
    over = [f"train.seed={args.seed}"]
    cfg = apply_overrides(load_preset("deep-pilco-cartpole-swingup"),
                          over + (FRESH if search in ("adam-fresh", "reinforce") else [])
                          + args.set)
    spec = env_spec(cfg.env.id, max_episode_steps=STEPS)
    env = make_env(cfg.env.id, seed=args.seed, max_episode_steps=STEPS)
    agent = DeepPILCOLearner(spec, cfg, seed=args.seed)
    pilco = PILCOLearner(spec, apply_overrides(load_preset("pilco-cartpole-swingup"), over),
                       seed=args.seed)
    model, data, rows = GPDynamics(), play(env, agent), []
    for trial in range(2, args.trials + 1):
        t0 = time.monotonic()
        model.gp = pilco.model(data)
        model.gp.fit(pilco.cfg.pilco.gp_iterations)
        pilco.hyper = model.gp.hyper
        if search == "lbfgs":
            search_lbfgs(agent, model, args.particles)
        else:
            search_adam(agent, model, reinforce=search.startswith("reinforce"))
        with torch.no_grad():
            predicted = float(cost(agent, model, 200, 0))
        agent.trained = True
        new = play(env, agent)
        nxt = torch.as_tensor(new["next_obs"], dtype=F64)
        rows.append({"search": search, "trial": trial, "predicted": predicted,
                     "actual": float(agent.task.cost(nxt).sum()),
                     "end_distance": float(agent.task.distance(nxt)[-5:].max()),
                     "seconds": time.monotonic() - t0})
        print(json.dumps(rows[-1]), flush=True)
        data = {k: np.concatenate([data[k], new[k]]) for k in KEYS}
    return rows


def summarise(rows: list[dict], args) -> str:
    lines = [f"# Deep PILCO's particle search on PILCO's GP, seed {args.seed}", "",
             "Made by `bench/deep_pilco_search_check.py`. Costs are sums over the 25 steps (25: "
             "never near upright); end distance: the tip's largest over the trial's last 5 "
             f"steps (success below 0.1 m). lbfgs: {args.particles} fixed particles.", "",
             "| search | trial | predicted | actual | end distance (m) | s |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['search']} | {r['trial']} | {r['predicted']:.1f} | {r['actual']:.1f} | "
              f"{r['end_distance']:.2f} | {r['seconds']:.0f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--searches", nargs="+",
                        default=["adam", "adam-fresh", "lbfgs", "reinforce", "reinforce-held"],
                        choices=["adam", "adam-fresh", "lbfgs", "reinforce",
                                 "reinforce-held"])
    parser.add_argument("--particles", type=int, default=50)
    parser.add_argument("--set", nargs="*", default=[],
                        help="overrides of the deep-pilco preset (deep_pilco.*)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/deep-pilco-search-check"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for search in args.searches:
        path = args.out / f"rows-{search}.json"
        if not path.exists():
            path.write_text(json.dumps(run(search, args), indent=1))
        rows += json.loads(path.read_text())
    summary = summarise(rows, args)
    (args.out / "summary.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
