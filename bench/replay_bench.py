"""Data-path benchmarks: what one replay actor, one learner and one parameter server can carry.
Every figure is measured in this run; ratios are against a baseline measured here too.

1. Memory: bytes per stored 64x64x3 frame, on a replay of 100k frames (nbytes and the
   process's resident-memory growth while filling it).
2. Sequences per second (B=16, L=64), state (17-dim) and 64x64 pixels: in-process, and through
   the replay actor (ray.get per batch): the actor's sample capacity.
3. Insert capacity of the replay actor, rows/s, state and pixels, in chunks of one collect
   (8 envs x 250 steps): how many env steps/s the rollout workers together may send.
4. Learner updates/s through the topology (learner actor sampling from the replay actor, with
   prefetch) vs an in-process loop sampling the same storage and running the same updates
   (target >= 0.9), for the pets-pendulum and sac-pendulum agents.
5. Parameter-server hand-out: seconds from publish until k lightweight fake workers (async
   tasks in one actor, each asking get_if_newer and fetching the weights) all hold a new
   version of pets-halfcheetah-size weights, k = 1..64.

Usage: .venv/bin/python bench/replay_bench.py [--quick] [--part memory|sample|insert|learner|params]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import time

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402
import ray  # noqa: E402

from mbrl_ray.agents import make_learner  # noqa: E402
from mbrl_ray.config import apply_overrides, load_preset, to_dict  # noqa: E402
from mbrl_ray.envs import EnvSpec  # noqa: E402
from mbrl_ray.replay import BatchSpec, StreamStorage, empty_rows, sample  # noqa: E402

STATE = EnvSpec.state(17, 6)
PIXELS = EnvSpec((3, 64, 64), "uint8", 6)


def episode_rows(spec: EnvSpec, n: int, rng: np.random.Generator, episode: int = 1000):
    """n rows of one stream with episodes of `episode` steps and random content."""
    rows = empty_rows(spec, n)
    if spec.kind == "pixels":
        rows["obs"][:] = rng.integers(0, 256, (1, *spec.obs_shape), dtype=np.uint8)
    else:
        rows["obs"][:] = rng.standard_normal((n, *spec.obs_shape), dtype=np.float32)
    rows["action"][:] = rng.uniform(-1, 1, rows["action"].shape)
    rows["reward"][:] = rng.standard_normal(n)
    t = np.arange(n) % (episode + 1)
    rows["is_first"][:] = t == 0
    rows["is_last"][:] = t == episode
    return rows


def filled(spec: EnvSpec, capacity: int, streams: int = 8, seed: int = 0) -> StreamStorage:
    store = StreamStorage(capacity, spec)
    rng = np.random.default_rng(seed)
    per = capacity // streams
    for s in range(streams):
        store.add(episode_rows(spec, per, rng), ("bench", s))
    return store


def rate(fn, seconds: float = 2.0, warmup: int = 2) -> float:
    """Calls of fn per second over about `seconds`."""
    for _ in range(warmup):
        fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


# ---- 1. memory ------------------------------------------------------------------------------
def resident_bytes() -> int:
    """This process's resident memory (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_memory(frames: int) -> None:
    before = resident_bytes()
    store = filled(PIXELS, frames)
    grown = resident_bytes() - before
    print(f"memory: {frames:,} frames of 64x64x3: nbytes {store.nbytes / frames:,.0f} B/frame, "
          f"resident growth {grown / frames:,.0f} B/frame (frame itself 12,288 B; float32 "
          f"obs+next_obs would be {2 * 4 * 12288:,} B)")


# ---- 2. sampling ----------------------------------------------------------------------------
def bench_sample(capacity: int, seconds: float) -> None:
    seq = BatchSpec("sequences", 16, length=64)
    for name, spec in (("state", STATE), ("pixels", PIXELS)):
        store = filled(spec, capacity)
        rng = np.random.default_rng(0)
        local = rate(lambda: sample(store, seq, rng), seconds)
        actor = replay_actor(store)
        remote = rate(lambda: ray.get(actor.sample.remote(seq, False)), seconds)
        print(f"sequences B=16 L=64 {name}: in-process {16 * local:,.0f} seq/s, through the "
              f"replay actor {16 * remote:,.0f} seq/s ({remote / local:.2f} of in-process)")
        ray.kill(actor)


def replay_actor(store: StreamStorage, limiter: dict | None = None, name: str | None = None):
    """A replay actor holding `store` (saved and loaded, the way a resume hands it over)."""
    from mbrl_ray.distributed.replay_actor import ReplayActor

    path = f"/tmp/replay-bench-{os.getpid()}.npz"
    store.save(path)
    actor = ReplayActor.options(name=name).remote(store.capacity, store.spec, 0, limiter, path)
    ray.get(actor.stats.remote())
    os.remove(path)
    return actor


# ---- 3. inserts -----------------------------------------------------------------------------
def bench_insert(seconds: float) -> None:
    from mbrl_ray.distributed.replay_actor import ReplayActor

    for name, spec, capacity in (("state", STATE, 1_000_000), ("pixels", PIXELS, 100_000)):
        actor = ReplayActor.remote(capacity, spec, 0)
        rng = np.random.default_rng(0)
        first = [(("w", e), episode_rows(spec, 251, rng)) for e in range(8)]
        later = [(key, _continued(rows)) for key, rows in first]  # the same streams go on
        calls = iter(range(10**9))

        def insert():
            ray.get(actor.insert.remote(first if next(calls) == 0 else later))

        rows_per_call = 8 * 251
        per_s = rate(insert, seconds, warmup=1) * rows_per_call
        obs_mb = per_s * spec.obs_dim * spec.np_obs_dtype.itemsize / 1e6
        print(f"insert {name}: {per_s:,.0f} rows/s into the replay actor (chunks of 8 envs x "
              f"251 rows; {obs_mb:,.0f} MB/s of observations)")
        ray.kill(actor)


def _continued(rows: dict) -> dict:
    out = dict(rows)
    out["is_first"] = np.zeros_like(rows["is_first"])
    return out


# ---- 4. learner -----------------------------------------------------------------------------
def bench_learner(updates: int) -> None:
    from mbrl_ray.distributed.learner import Learner
    from mbrl_ray.distributed.param_server import ParameterServer

    import torch

    spec = EnvSpec.state(4, 1)  # InvertedPendulum's sizes
    torch.set_num_threads(1)  # as the learner actor's learner.num_cpus=1
    for preset in ("pets-pendulum", "sac-pendulum"):
        cfg = apply_overrides(load_preset(preset), ["learner.device=cpu", "learner.num_cpus=1",
                                                    "train.schedule=async"])
        store = filled(spec, 50_000)
        agent = make_learner(spec, cfg, "cpu", seed=0)
        rng = np.random.default_rng(0)
        bspec = agent.batch_spec

        def local_round():  # what Learner.train does, without Ray in between
            if agent.refresh_rows:
                agent.refresh(sample(store, BatchSpec("transitions", agent.refresh_rows), rng))
            for _ in range(updates):
                agent.update(sample(store, bspec, rng))

        replay = replay_actor(store, name=f"bench-replay-{preset}")
        ps = ParameterServer.options(name=f"bench-params-{preset}").remote()
        learner = Learner.options(num_cpus=1).remote(to_dict(cfg), spec, f"bench-replay-{preset}",
                                                     f"bench-params-{preset}")
        ray.get(learner.train.remote(10))  # warm-up
        local_round()
        ratios, rates = [], []
        for _ in range(3):  # alternated, so that drifts of the machine hit both alike
            t0 = time.perf_counter()
            local_round()
            local = updates / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            ray.get(learner.train.remote(updates))
            remote = updates / (time.perf_counter() - t0)
            ratios.append(remote / local)
            rates.append((local, remote))
        local, remote = np.median(rates, axis=0)
        print(f"learner {preset} ({bspec.rows} rows/update): in-process {local:,.0f} "
              f"updates/s, through the topology {remote:,.0f} updates/s; ratio median "
              f"{np.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}; "
              f"target >= 0.9)")
        for actor in (learner, replay, ps):
            ray.kill(actor)


# ---- 5. parameter server --------------------------------------------------------------------
@ray.remote(num_cpus=0)
class FakeWorkers:
    """k virtual rollout workers as async tasks: each polls get_if_newer until it holds
    `version`, then fetches the weights (as RolloutWorker.sync_weights does)."""

    def __init__(self, param_server) -> None:
        self.ps = param_server

    async def pull(self, k: int, version: int) -> None:
        async def one(i: int) -> None:
            while True:
                newer = await self.ps.get_if_newer.remote(f"fake-{i}", version - 1)
                if newer is not None:
                    await newer[1][0]
                    return
                await asyncio.sleep(0.001)

        await asyncio.gather(*(one(i) for i in range(k)))


def bench_params(counts: list[int]) -> None:
    import torch

    from mbrl_ray.distributed.param_server import ParameterServer

    cfg = load_preset("pets-halfcheetah")
    agent = make_learner(EnvSpec.state(17, 6), cfg, "cpu", seed=0)
    weights = {"model": {k: v.detach() for k, v in agent.model.state_dict().items()}}
    mb = sum(v.numel() * v.element_size() for v in weights["model"].values()) / 1e6
    ps = ParameterServer.remote()
    fakes = FakeWorkers.remote(ps)
    version = 0
    for k in counts:
        times = []
        for _ in range(5):
            version += 1
            weights["model"]["head.bias"] = torch.full_like(weights["model"]["head.bias"],
                                                            version)
            t0 = time.perf_counter()
            ray.get(ps.publish.remote(version, [ray.put(weights)]))
            ray.get(fakes.pull.remote(k, version))
            times.append(time.perf_counter() - t0)
        print(f"params: {k:3d} workers hold a new {mb:.1f} MB version after "
              f"{1000 * np.median(times):.1f} ms (median of 5)")
    ray.kill(fakes)
    ray.kill(ps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter timings")
    parser.add_argument("--part", choices=("memory", "sample", "insert", "learner", "params"))
    args = parser.parse_args()
    quick = args.quick
    parts = [args.part] if args.part else ["memory", "sample", "insert", "learner", "params"]
    print(f"machine: {os.cpu_count()} CPUs; quick={quick}")
    if "memory" in parts:
        bench_memory(10_000 if quick else 100_000)
    if set(parts) - {"memory"}:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    seconds = 0.5 if quick else 3.0
    if "sample" in parts:
        bench_sample(10_000 if quick else 100_000, seconds)
    if "insert" in parts:
        bench_insert(seconds)
    if "learner" in parts:
        bench_learner(50 if quick else 500)
    if "params" in parts:
        bench_params([1, 4] if quick else [1, 4, 16, 64])


if __name__ == "__main__":
    main()
