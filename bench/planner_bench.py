"""Every planner on the same ensemble at equal sample budget: ms per action for 1 and 8 envs
per call, and the achieved matmul FLOP/s as a fraction of this machine's float32 square-GEMM
peak (the larger of torch.mm's and oneDNN's), measured by this script in the same run; each
planner with the planning view's oneDNN path on and off (`before`), timed alternately.

Budget: the model rows each planner evaluates per action, equal for all: population x
iterations sequences x particles x horizon for the sequence planners (RS, CEM, CEM-LST, iCEM,
MPPI); iCEM, whose population shrinks per iteration, starts larger so that its total matches;
SMCP and SMCP-LST run that many particles (population x iterations x particles) over the same
horizon, one row each per step. FLOPs are every matmul of one planning call (the ensemble, the
LST density, SMCP's SAC proposal and value), counted by torch's FlopCounterMode on a separate
call. Size: the PETS HalfCheetah model (5 x 4 x 200, 20 particles, TS-inf, horizon 30) with
100 sequences x 5 iterations (1/5 of the paper's CEM population: CPU time); --paper keeps the
paper's 500 x 5 (with 50 elites); --quick uses the pets-pendulum preset. --device cuda plans on
the GPU against its float32 GEMM peak; the oneDNN path is CPU-only, so `before` is then blank.

Usage: .venv/bin/python bench/planner_bench.py [--quick | --paper] [--device cuda]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from mbrl_ray.config import apply_overrides, load_preset
from dcmpc_bench import peak_gflops
from pets_bench import fitted_agent, peaks, time_view

PLANNERS = ("rs", "cem", "cem-lst", "icem", "mppi", "smcp", "smcp-lst")


def icem_population(total: int, iterations: int, decay: float, elites: int) -> int:
    """The first population whose decayed populations sum to `total` (or just above)."""
    pop = total // iterations
    while sum(max(round(pop * decay ** -i), 2 * elites) for i in range(iterations)) < total:
        pop += 1
    return pop


def planner_config(base, name: str):
    """A copy of `base` with planner `name` at the base's budget."""
    p = base.planner
    planner, _, posterior = name.partition("-")
    overrides = [f"planner.name={planner}", f"planner.posterior={posterior or 'mpc'}"]
    if planner == "icem":
        pop = icem_population(p.population * p.iterations, p.iterations, p.population_decay,
                              p.num_elites)
        overrides.append(f"planner.population={pop}")
    if planner == "smcp":
        particles = p.population * p.iterations * base.model.particles
        overrides.append(f"planner.population={particles}")
    return apply_overrides(base, overrides)


def time_per_action(agent, obs_dim: int, envs: int, repeats: int) -> tuple[float, float, float]:
    """(best seconds per planning call for `envs` envs with the oneDNN path, without it (nan off
    CPU), matmul FLOPs of one call); the two paths alternate call by call."""
    cpu = agent.device.type == "cpu"
    on, off = [], []
    for _ in range(repeats):
        on.append(time_view(agent, obs_dim, 1, envs))
        if cpu:
            off.append(time_view(agent, obs_dim, 1, envs, onednn=False))
    with FlopCounterMode(display=False) as counter:
        agent.act(np.zeros((envs, obs_dim), np.float32), agent.initial_state(envs))
    return min(on), min(off, default=float("nan")), counter.get_total_flops()


def planning_agent(cfg, obs_dim: int, act_dim: int, device: str = "cpu"):
    """A timing-only agent: random-init elites, and SMCP's SAC proposal marked usable."""
    agent = fitted_agent(cfg, obs_dim, act_dim, device)
    if agent.sac is not None:
        agent.sac.fitted = True
    return agent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="pets-pendulum size, fewer repeats")
    size.add_argument("--paper", action="store_true", help="the paper's CEM 500 x 5, 50 elites")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.device == "cpu":
        _, peak = peaks(args.threads)
    else:
        peak = peak_gflops(torch.device(args.device))
        print(f"float32 square GEMM peak on {torch.cuda.get_device_name(args.device)}: "
              f"{peak:.1f} GFLOP/s")
    if args.quick:
        base, (obs_dim, act_dim), repeats = load_preset("pets-pendulum"), (4, 1), 3
    elif args.paper:
        base, (obs_dim, act_dim), repeats = load_preset("pets-halfcheetah"), (17, 6), 3
    else:
        base = apply_overrides(load_preset("pets-halfcheetah"), ["planner.population=100",
                                                                 "planner.num_elites=10"])
        obs_dim, act_dim, repeats = 17, 6, 2
    m, p = base.model, base.planner
    print(f"Peak {peak:.1f} GFLOP/s. Ensemble "
          f"{m.num_elites} x {m.num_layers} x {m.hidden_size}, {m.particles} particles, horizon "
          f"{p.horizon}; budget {p.population} x {p.iterations} sequences per env "
          f"({p.population * p.iterations * m.particles * p.horizon} model rows)")
    print(f"{'planner':9s} {'envs':>4s} {'ms/call':>9s} {'ms/env':>8s} {'GFLOP/env':>10s} "
          f"{'GFLOP/s':>8s} {'of peak':>8s} {'before':>7s}")
    for name in PLANNERS:
        agent = planning_agent(planner_config(base, name), obs_dim, act_dim, args.device)
        for envs in (1, 8):
            sec, before, flops = time_per_action(agent, obs_dim, envs, repeats)
            gflops = flops / sec / 1e9
            print(f"{name:9s} {envs:4d} {1000 * sec:9.1f} {1000 * sec / envs:8.1f} "
                  f"{flops / envs / 1e9:10.2f} {gflops:8.1f} {gflops / peak:8.2f} "
                  f"{flops / before / 1e9 / peak:7.2f}", flush=True)


if __name__ == "__main__":
    main()
