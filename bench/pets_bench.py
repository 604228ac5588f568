"""PETS benchmarks, every ratio against a baseline measured in this same run.

1. CEM planning at PETS HalfCheetah size (5x4x200 ensemble, pop 500 x 20 particles x horizon 30
   x 5 iterations): seconds per action, FLOPs performed, achieved FLOP/s as a fraction of this
   machine's float32 square-GEMM peak (measured here, same thread count: the larger of
   torch.mm's and oneDNN's; the fraction of torch.mm's alone in brackets), through the
   planning view, the same view without its oneDNN path, and the plain nn.Module.
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

from mbrl_ray.agents import PETSLearner  # noqa: E402
from mbrl_ray.config import apply_overrides, load_preset, to_dict  # noqa: E402
from mbrl_ray.envs import EnvSpec  # noqa: E402
from mbrl_ray.world_models.ensemble import planning_flops  # noqa: E402
from mbrl_ray.world_models.planning_ensemble import ONEDNN  # noqa: E402


def matmul_peak_gflops(threads: int, n: int = 2048, repeats: int = 30) -> float:
    """Best-of float32 GEMM throughput with `threads` threads (square n x n)."""
    torch.set_num_threads(threads)
    return gemm_gflops(1, n, n, n, repeats)


def onednn_peak_gflops(threads: int, n: int = 2048, repeats: int = 30) -> float:
    """Best-of float32 square GEMM throughput through oneDNN (the planner's CPU path), 0 when
    torch has no oneDNN. On AMD CPUs MKL's torch.mm can fall short of it."""
    if not ONEDNN:
        return 0.0
    torch.set_num_threads(threads)
    a, w, b = torch.randn(n, n), torch.randn(n, n), torch.zeros(n)
    return _best_gflops(lambda: torch.ops.mkldnn._linear_pointwise(a, w, b, "none", [], ""),
                        2 * n ** 3, repeats)


def _best_gflops(run, flops: float, repeats: int) -> float:
    for _ in range(3):
        run()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return flops / best / 1e9


def peaks(threads: int) -> tuple[float, float]:
    """(torch.mm square peak, the larger of it and oneDNN's), both measured now, with a line."""
    mm, onednn = matmul_peak_gflops(threads), onednn_peak_gflops(threads)
    print(f"float32 square GEMM peak, {threads} thread(s): torch.mm {mm:.1f} GFLOP/s, oneDNN "
          f"{onednn:.1f} GFLOP/s")
    return mm, max(mm, onednn)


def gemm_gflops(batch: int, rows: int, inner: int, cols: int, repeats: int = 30) -> float:
    """Best-of float32 GEMM throughput for `batch` independent (rows x inner x cols) products,
    one torch.mm each (the planner's layout at this size)."""
    a, b = torch.randn(batch, rows, inner), torch.randn(batch, inner, cols)
    c = torch.empty(batch, rows, cols)

    def run():
        for i in range(batch):
            torch.mm(a[i], b[i], out=c[i])

    return _best_gflops(run, 2 * batch * rows * inner * cols, repeats)


def fitted_agent(cfg, obs_dim: int, act_dim: int, device: str = "cpu") -> PETSLearner:
    """An agent whose planning model is the (random-init) ensemble's elites: timing only."""
    agent = PETSLearner(EnvSpec.state(obs_dim, act_dim), cfg, device, seed=0)
    agent.plan_model = agent.model.select(list(range(cfg.model.num_elites)))
    return agent


def time_actions(agent: PETSLearner, obs_dim: int, actions: int, envs: int = 1) -> float:
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


def time_view(agent: PETSLearner, obs_dim: int, actions: int, envs: int = 1,
              onednn: bool = True) -> float:
    """Seconds per planning call through the planning view, its oneDNN path on or off."""
    if agent._planning is None:  # the view is built on the first call
        agent.act(np.zeros((envs, obs_dim), np.float32), agent.initial_state(envs))
    agent._planning.onednn = onednn and ONEDNN
    return time_actions(agent, obs_dim, actions, envs)


def time_all(agent: PETSLearner, obs_dim: int, actions: int) -> tuple[float, float, float]:
    """(planning view, the view without oneDNN, plain module) seconds per action, interleaved
    so that all three see the same machine noise."""
    import mbrl_ray.agents.pets as pets

    fast, no_onednn, plain = [], [], []
    for _ in range(actions):
        fast.append(time_view(agent, obs_dim, 1))
        no_onednn.append(time_view(agent, obs_dim, 1, onednn=False))
        view, pets.PlanningEnsemble = pets.PlanningEnsemble, _PlainModule
        agent._planning = None
        plain.append(time_actions(agent, obs_dim, 1))
        pets.PlanningEnsemble = view
        agent._planning = None
    return min(fast), min(no_onednn), min(plain)


def bench_planning(threads: int, quick: bool) -> None:
    mm_peak, peak = peaks(threads)
    cheetah = load_preset("pets-halfcheetah")
    if quick:
        cheetah = apply_overrides(cheetah, ["planner.population=100"])
    agent = fitted_agent(cheetah, 17, 6)
    sec, no_onednn, plain = time_all(agent, 17, 1 if quick else 5)
    flops = planning_flops(cheetah, 17, 6)
    rows = cheetah.planner.population * cheetah.model.particles // cheetah.model.num_elites
    shape_peak = gemm_gflops(cheetah.model.num_elites, rows, 201, 200)
    print(f"  torch.mm at the hidden layers' own shape ({cheetah.model.num_elites} x {rows} x "
          f"201 x 200): {shape_peak:.1f} GFLOP/s = {shape_peak / peak:.2f} of peak")

    def fraction(s: float) -> str:
        return (f"{s:.2f} s/action = {flops / s / 1e9 / peak:.2f} of peak "
                f"({flops / s / 1e9 / mm_peak:.2f} of torch.mm's)")

    print(f"CEM at PETS HalfCheetah size (pop {cheetah.planner.population}, "
          f"{flops / 1e9:.0f} GFLOP/action): planning view {fraction(sec)}; without its "
          f"oneDNN path {fraction(no_onednn)}; plain nn.Module path {fraction(plain)}")
    pend = load_preset("pets-pendulum")
    agent = fitted_agent(pend, 4, 1)
    sec, no_onednn, plain = time_all(agent, 4, 10)
    flops = planning_flops(pend, 4, 1)
    print(f"CEM at pets-pendulum size: {1000 * sec:.1f} ms/action (without oneDNN "
          f"{1000 * no_onednn:.1f}, plain nn.Module path {1000 * plain:.1f}), "
          f"{flops / 1e9:.2f} GFLOP/action, {flops / sec / 1e9 / peak:.2f} of peak")


def bench_topology(steps: int) -> None:
    """Worker.collect through Ray vs the same EnvBatch + agent loop in this process."""
    import ray

    from mbrl_ray.distributed.param_server import ParameterServer
    from mbrl_ray.distributed.replay_actor import ReplayActor
    from mbrl_ray.envs.batch import EnvBatch
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
