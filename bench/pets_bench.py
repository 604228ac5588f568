"""PETS benchmarks, every ratio against a baseline measured in this same run.

1. CEM planning at PETS HalfCheetah size (5x4x200 ensemble, pop 500 x 20 particles x horizon 30
   x 5 iterations): seconds per action, FLOPs performed, achieved FLOP/s as a fraction of this
   machine's float32 matmul peak (measured here, same thread count).
2. The same at the pets-pendulum preset size: ms per action.
3. Env steps/s through the Ray topology (one rollout worker, replay inserts, weight pulls)
   relative to a plain in-process loop doing the same act-and-step work.

Usage: .venv/bin/python bench/pets_bench.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MALLOC_MMAP_MAX_", "0")          # see REFERENCE.md, Costs: page faults
os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "1000000000000")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mbrl_ray.agents import PETSAgent  # noqa: E402
from mbrl_ray.config import apply_overrides, load_preset, to_dict  # noqa: E402
from mbrl_ray.envs import EnvSpec  # noqa: E402
from mbrl_ray.world_models.ensemble import planning_flops  # noqa: E402


def matmul_peak_gflops(threads: int, n: int = 2048, repeats: int = 30) -> float:
    """Best-of float32 GEMM throughput with `threads` threads (square n x n)."""
    torch.set_num_threads(threads)
    return gemm_gflops(1, n, n, n, repeats)


def gemm_gflops(batch: int, rows: int, inner: int, cols: int, repeats: int = 30) -> float:
    """Best-of float32 GEMM throughput for `batch` independent (rows x inner x cols) products,
    one torch.mm each (the planner's layout at this size)."""
    a, b = torch.randn(batch, rows, inner), torch.randn(batch, inner, cols)
    c = torch.empty(batch, rows, cols)

    def run():
        for i in range(batch):
            torch.mm(a[i], b[i], out=c[i])

    for _ in range(3):
        run()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return 2 * batch * rows * inner * cols / best / 1e9


def fitted_agent(cfg, obs_dim: int, act_dim: int) -> PETSAgent:
    """An agent whose planning model is the (random-init) ensemble's elites: timing only."""
    agent = PETSAgent(EnvSpec.state(obs_dim, act_dim), cfg, "cpu", seed=0)
    agent.plan_model = agent.model.select(list(range(cfg.model.num_elites)))
    return agent


def time_actions(agent: PETSAgent, obs_dim: int, actions: int, envs: int = 1) -> float:
    """Seconds per planning call for `envs` envs (best of `actions` calls, after one warm-up)."""
    obs = np.zeros((envs, obs_dim), np.float32)
    state = agent.initial_state(envs)
    agent.act(obs, state)
    best = float("inf")
    for _ in range(actions):
        t0 = time.perf_counter()
        _, state = agent.act(obs, state)
        best = min(best, time.perf_counter() - t0)
    return best


class _PlainModule:
    """Baseline: plan through the nn.Module's own step (no folded planning view)."""

    def __new__(cls, model):
        model.source = model
        return model


def time_both(agent: PETSAgent, obs_dim: int, actions: int) -> tuple[float, float]:
    """(planning view, plain module) seconds per action, interleaved so both see the same noise."""
    import mbrl_ray.agents.pets as pets

    fast, plain = [], []
    for _ in range(actions):
        fast.append(time_actions(agent, obs_dim, 1))
        view, pets.PlanningEnsemble = pets.PlanningEnsemble, _PlainModule
        agent._planning = None
        plain.append(time_actions(agent, obs_dim, 1))
        pets.PlanningEnsemble = view
        agent._planning = None
    return min(fast), min(plain)


def bench_planning(threads: int, quick: bool) -> None:
    peak = matmul_peak_gflops(threads)
    print(f"float32 matmul peak, {threads} thread(s): {peak:.1f} GFLOP/s")
    cheetah = load_preset("pets-halfcheetah")
    if quick:
        cheetah = apply_overrides(cheetah, ["planner.population=100"])
    agent = fitted_agent(cheetah, 17, 6)
    sec, plain = time_both(agent, 17, 1 if quick else 2)
    flops = planning_flops(cheetah, 17, 6)
    achieved = flops / sec / 1e9
    rows = cheetah.planner.population * cheetah.model.particles // cheetah.model.num_elites
    shape_peak = gemm_gflops(cheetah.model.num_elites, rows, 201, 200)
    print(f"  GEMM ceiling at the hidden layers' own shape ({cheetah.model.num_elites} x {rows} x "
          f"201 x 200): {shape_peak:.1f} GFLOP/s = {shape_peak / peak:.2f} of peak")
    print(f"CEM at PETS HalfCheetah size (pop {cheetah.planner.population}): "
          f"{sec:.2f} s/action, {flops / 1e9:.0f} GFLOP/action, {achieved:.1f} GFLOP/s = "
          f"{achieved / peak:.2f} of matmul peak (target >= 0.8); plain nn.Module path "
          f"{plain:.2f} s/action = {flops / plain / 1e9 / peak:.2f} of peak")
    pend = load_preset("pets-pendulum")
    agent = fitted_agent(pend, 4, 1)
    sec, plain = time_both(agent, 4, 10)
    flops = planning_flops(pend, 4, 1)
    print(f"CEM at pets-pendulum size: {1000 * sec:.1f} ms/action (plain nn.Module path "
          f"{1000 * plain:.1f}), {flops / 1e9:.2f} GFLOP/action, "
          f"{flops / sec / 1e9 / peak:.2f} of matmul peak")


def bench_topology(steps: int) -> None:
    """Worker.collect through Ray vs the same EnvBatch + agent loop in this process."""
    import ray

    from mbrl_ray.distributed.param_server import ParameterServer
    from mbrl_ray.distributed.replay_actor import ReplayActor
    from mbrl_ray.distributed.env_batch import EnvBatch
    from mbrl_ray.distributed.rollout_worker import RolloutWorker
    from mbrl_ray.envs import env_kwargs, env_spec

    cfg = load_preset("pets-pendulum")
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    agent = fitted_agent(cfg, spec.obs_dim, spec.act_dim)
    torch.set_num_threads(1)
    envs = EnvBatch(cfg.env, 1, 0)
    state = agent.initial_state(1)
    t0 = time.perf_counter()
    for _ in range(steps):
        actions, state = agent.act(envs.obs, state)
        _, done = envs.step(actions)
        state = agent.reset_state(state, done)
    local = steps / (time.perf_counter() - t0)

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ReplayActor.options(name="bench-replay").remote(100_000, spec, 0)
    ps = ParameterServer.options(name="bench-params").remote()
    ray.get(ps.publish.remote(1, [ray.put(agent.inference_weights())]))
    worker = RolloutWorker.options(num_cpus=1).remote("worker-0", to_dict(cfg), spec,
                                                      "bench-replay", "bench-params", 0)
    ray.get(worker.collect.remote(10))  # warm-up: weights pulled, envs made
    t0 = time.perf_counter()
    chunk = cfg.train.steps_per_round
    for _ in range(steps // chunk):
        ray.get(worker.collect.remote(chunk))
    ray.get(worker.flush.remote())
    remote = (steps // chunk) * chunk / (time.perf_counter() - t0)
    ray.shutdown()
    print(f"env steps/s, pets-pendulum act+step: in-process {local:.1f}, through the topology "
          f"(1 worker, {chunk}-step chunks to replay) {remote:.1f}; ratio {remote / local:.2f} "
          f"(target >= 0.9)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--part", choices=("all", "planning", "topology"), default="all")
    args = parser.parse_args()
    if args.part in ("all", "planning"):
        bench_planning(args.threads, args.quick)
    if args.part in ("all", "topology"):
        bench_topology(250 if args.quick else 1000)


if __name__ == "__main__":
    main()
