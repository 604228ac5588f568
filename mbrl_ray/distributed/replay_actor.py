"""Replay actor: StreamStorage and its selectors behind Ray, with the samples-per-insert limiter
of the async schedule. An async actor, so a blocked insert or sample waits without stalling the
other side."""
from __future__ import annotations

import asyncio

import numpy as np
import ray

from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.replay import BatchSpec, SamplesPerInsertLimiter, StreamStorage, all_transitions
from mbrl_ray.replay import sample as select
from mbrl_ray.telemetry import metrics

POLL_S = 0.005


@ray.remote(num_cpus=0)
class ReplayActor:
    def __init__(self, capacity: int, spec: EnvSpec, seed: int, limiter: dict | None = None,
                 load_path: str | None = None, rng_state: dict | None = None) -> None:
        """limiter: kwargs of SamplesPerInsertLimiter plus its saved 'state', or None (sync);
        rng_state: the sampler's state saved beside a checkpoint (resume)."""
        self.store = (StreamStorage.load(load_path) if load_path
                      else StreamStorage(capacity, spec))
        self.limiter = None
        if limiter is not None:
            state = limiter.pop("state", None)
            self.limiter = SamplesPerInsertLimiter(**limiter)
            if state:
                self.limiter.load_state_dict(state)
        self.rng = np.random.default_rng(seed)
        if rng_state is not None:
            self.rng.bit_generator.state = rng_state
        self.paused = False    # a checkpoint is being taken: inserts wait
        self.released = False  # the run's last steps are in: nothing waits on the limiter
        self.m_size = metrics.make("mbrl_replay_size")
        self.m_spi = metrics.make("mbrl_replay_samples_per_insert")
        self._export()

    def _export(self) -> None:
        self.m_size.set(self.store.size)
        self.m_spi.set(self._samples_per_insert())

    def _samples_per_insert(self) -> float:
        return self.limiter.ratio if self.limiter is not None else 0.0

    async def insert(self, segments: list[tuple]) -> int:
        """Add [(stream key, rows)] of one worker's collect; waits while the limiter says the
        learner is too far behind, or while a checkpoint is taken. Returns the rows held."""
        while self.paused or not (self._unlimited or self.limiter.can_insert()):
            await asyncio.sleep(POLL_S)
        before = self.store.steps_inserted
        for key, rows in segments:
            self.store.add(rows, key)
        if self.limiter is not None:
            self.limiter.insert(self.store.steps_inserted - before)
        self._export()
        return self.store.size

    async def sample(self, spec: BatchSpec, counted: bool = True) -> dict[str, np.ndarray]:
        """One batch as `spec` asks; a counted sample waits until the limiter allows it, an
        uncounted one until the warm-up steps are in."""
        return (await self.sample_many(spec, 1, counted))[0]

    async def sample_many(self, spec: BatchSpec, count: int, counted: bool = True
                          ) -> list[dict[str, np.ndarray]]:
        """`count` batches in one call (one round trip for several updates), granted by the
        limiter together."""
        while not self._may_sample(spec.rows * count, counted):
            await asyncio.sleep(POLL_S)
        batches = [select(self.store, spec, self.rng) for _ in range(count)]  # may refuse
        if counted and self.limiter is not None:
            self.limiter.sample(spec.rows * count)
            self._export()
        return batches

    @property
    def _unlimited(self) -> bool:
        return self.limiter is None or self.released

    def _may_sample(self, n: int, counted: bool) -> bool:
        if self._unlimited:
            return self.store.steps_inserted > 0
        if counted:
            return self.limiter.can_sample(n)
        return self.store.steps_inserted >= max(1, self.limiter.min_size)

    def transitions(self) -> dict[str, np.ndarray]:
        """Every 1-step transition held (a full-data fit's input)."""
        return all_transitions(self.store)

    def release_limiter(self) -> None:
        """End of an async run: let every waiting insert and sample through (the limiter
        keeps counting, so that a resumed run continues its ratio)."""
        self.released = True

    def pause(self, paused: bool) -> None:
        """Hold (True) or let through (False) inserts."""
        self.paused = paused

    def stats(self) -> dict[str, float]:
        return {"size": self.store.size, "steps_inserted": self.store.steps_inserted,
                "samples_per_insert": self._samples_per_insert(), "nbytes": self.store.nbytes,
                "samples_due": self.limiter.due if self.limiter is not None else 0.0,
                "samples_drawn": self.limiter.samples if self.limiter is not None else 0}

    def save(self, path: str) -> dict:
        """Write the storage to `path` (.npz); returns what to keep beside it: the limiter's
        and the sampler's state and the env steps held."""
        self.store.save(path)
        return {"limiter": self.limiter.state_dict() if self.limiter is not None else None,
                "rng": self.rng.bit_generator.state, "steps": self.store.steps_inserted}
