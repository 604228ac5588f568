"""Replay actor: the ring buffer behind Ray, with the samples-per-insert limiter of the async
schedule. An async actor, so a blocked insert or sample waits without stalling the other side."""
from __future__ import annotations

import asyncio

import numpy as np
import ray

from mbrl_ray.replay import ReplayBuffer, SamplesPerInsertLimiter
from mbrl_ray.telemetry import metrics

POLL_S = 0.005


@ray.remote(num_cpus=0)
class ReplayActor:
    def __init__(self, capacity: int, obs_dim: int, act_dim: int, seed: int,
                 limiter: dict | None = None, load_path: str | None = None) -> None:
        """limiter: kwargs of SamplesPerInsertLimiter plus its saved 'state', or None (sync)."""
        self.buffer = (ReplayBuffer.load(load_path) if load_path
                       else ReplayBuffer(capacity, obs_dim, act_dim))
        self.limiter = None
        if limiter is not None:
            state = limiter.pop("state", None)
            self.limiter = SamplesPerInsertLimiter(**limiter)
            if state:
                self.limiter.load_state_dict(state)
        self.rng = np.random.default_rng(seed)
        self.m_size = metrics.make("mbrl_replay_size")
        self.m_spi = metrics.make("mbrl_replay_samples_per_insert")
        self._export()

    def _export(self) -> None:
        self.m_size.set(self.buffer.size)
        self.m_spi.set(self._samples_per_insert())

    def _samples_per_insert(self) -> float:
        return self.limiter.ratio if self.limiter is not None else 0.0

    async def insert(self, chunk: dict[str, np.ndarray]) -> int:
        """Add a chunk; waits while the limiter says the learner is too far behind."""
        while self.limiter is not None and not self.limiter.can_insert():
            await asyncio.sleep(POLL_S)
        n = len(chunk["reward"])
        self.buffer.add(chunk)
        if self.limiter is not None:
            self.limiter.insert(n)
        self._export()
        return self.buffer.size

    async def sample(self, n: int, counted: bool = True) -> dict[str, np.ndarray]:
        """n uniform rows; a counted sample waits until the limiter allows it, an uncounted one
        until the warm-up rows are in."""
        while not self._may_sample(n, counted):
            await asyncio.sleep(POLL_S)
        if counted and self.limiter is not None:
            self.limiter.sample(n)
            self._export()
        return self.buffer.sample(n, self.rng)

    def _may_sample(self, n: int, counted: bool) -> bool:
        if self.limiter is None:
            return self.buffer.size > 0
        if counted:
            return self.limiter.can_sample(n)
        return self.buffer.size >= max(1, self.limiter.min_size)

    def release_limiter(self) -> None:
        """End of an async run: let every waiting insert and sample through."""
        self.limiter = None

    def all(self) -> dict[str, np.ndarray]:
        return self.buffer.all()

    def stats(self) -> dict[str, float]:
        return {"size": self.buffer.size, "total_inserted": self.buffer.total_inserted,
                "samples_per_insert": self._samples_per_insert(), "nbytes": self.buffer.nbytes}

    def save(self, path: str) -> dict | None:
        """Write the buffer to `path` (.npz); returns the limiter state to keep beside it."""
        self.buffer.save(path)
        return self.limiter.state_dict() if self.limiter is not None else None
