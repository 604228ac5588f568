"""Every planner on the same ensemble at equal sample budget: ms per action for 1 and 8 envs
per call, and the achieved matmul FLOP/s as a fraction of this machine's float32 matmul peak,
measured by this script in the same run.

Budget: the sequences each planner scores per action, population x iterations (x horizon steps
x particles through the model), equal for all; iCEM, whose population shrinks per iteration,
starts larger so that its total matches. Size: the PETS HalfCheetah model (5 x 4 x 200, 20
particles, TS-inf, horizon 30) with 100 sequences x 5 iterations (1/5 of the paper's CEM
population: CPU time); --quick uses the pets-pendulum preset.

Usage: .venv/bin/python bench/planner_bench.py [--quick]
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np

import mbrl_ray.agents.pets as pets
from mbrl_ray.config import apply_overrides, load_preset
from pets_bench import fitted_agent, matmul_peak_gflops, planning_flops

PLANNERS = ("cem", "icem", "mppi", "rs")


def icem_population(total: int, iterations: int, decay: float, elites: int) -> int:
    """The first population whose decayed populations sum to `total` (or just above)."""
    pop = total // iterations
    while sum(max(round(pop * decay ** -i), 2 * elites) for i in range(iterations)) < total:
        pop += 1
    return pop


def planner_config(base, name: str):
    """A copy of `base` with planner `name` (apply_overrides changes the config it is given)."""
    base = copy.deepcopy(base)
    p = base.planner
    if name == "icem":
        pop = icem_population(p.population * p.iterations, p.iterations, p.population_decay,
                              p.num_elites)
        return apply_overrides(base, ["planner.name=icem", f"planner.population={pop}"])
    return apply_overrides(base, [f"planner.name={name}"])


def time_per_action(agent, obs_dim: int, envs: int, repeats: int) -> tuple[float, int]:
    """(best seconds per planning call for `envs` envs, sequences scored per call)."""
    counted = [0]
    real = pets.expected_returns

    def counting(model, obs, actions, **kwargs):
        counted[0] += actions.shape[0] * actions.shape[1]
        return real(model, obs, actions, **kwargs)

    pets.expected_returns = counting
    try:
        obs = np.zeros((envs, obs_dim), np.float32)
        state = agent.initial_state(envs)
        agent.act(obs, state)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            counted[0] = 0
            t0 = time.perf_counter()
            _, state = agent.act(obs, state)
            best = min(best, time.perf_counter() - t0)
        return best, counted[0]
    finally:
        pets.expected_returns = real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="pets-pendulum size, fewer repeats")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    peak = matmul_peak_gflops(args.threads)
    if args.quick:
        base, (obs_dim, act_dim), repeats = load_preset("pets-pendulum"), (4, 1), 3
    else:
        base = apply_overrides(load_preset("pets-halfcheetah"), ["planner.population=100",
                                                                 "planner.num_elites=10"])
        obs_dim, act_dim, repeats = 17, 6, 2
    m, p = base.model, base.planner
    per_sequence = planning_flops(base, obs_dim, act_dim) / (p.population * p.iterations)
    print(f"float32 matmul peak, {args.threads} thread(s): {peak:.1f} GFLOP/s. Ensemble "
          f"{m.num_elites} x {m.num_layers} x {m.hidden_size}, {m.particles} particles, horizon "
          f"{p.horizon}; budget {p.population} x {p.iterations} sequences per env")
    print(f"{'planner':8s} {'envs':>4s} {'ms/call':>9s} {'ms/env':>8s} {'sequences/env':>14s} "
          f"{'GFLOP/s':>8s} {'of peak':>8s}")
    for name in PLANNERS:
        cfg = planner_config(base, name)
        agent = fitted_agent(cfg, obs_dim, act_dim)
        for envs in (1, 8):
            sec, sequences = time_per_action(agent, obs_dim, envs, repeats)
            gflops = per_sequence * sequences / sec / 1e9
            print(f"{name:8s} {envs:4d} {1000 * sec:9.1f} {1000 * sec / envs:8.1f} "
                  f"{sequences // envs:14d} {gflops:8.1f} {gflops / peak:8.2f}", flush=True)


if __name__ == "__main__":
    main()
