"""Learner actor: owns the agent's training part, trains it from replay, publishes weights.
Holds no algorithm: what to sample and how to train are the agent's (agents/base.py)."""
from __future__ import annotations

import errno
import os
import shutil
import time
from collections import deque

import ray
import torch

from mbrl_ray import seeding
from mbrl_ray.agents import make_learner
from mbrl_ray.config import from_dict
from mbrl_ray.devices import resolve_device
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.finite import check_finite
from mbrl_ray.replay import BatchSpec
from mbrl_ray.telemetry import metrics

PREFETCH = 2  # sample requests kept in flight while the agent trains on the current ones
BATCHES_PER_REQUEST = 4  # batches fetched per request: one Ray round trip for several updates
FULL_DISK_BYTES = 1 << 20  # free space below this after a failed save: the disk is full


@ray.remote
class Learner:
    def __init__(self, cfg: dict, spec: EnvSpec, replay: str, param_server: str,
                 load_path: str | None = None) -> None:
        """replay, param_server: the named actors of the run (by name, so that no constructor
        argument lives in the object store); load_path: a checkpoint's learner.pt."""
        self.cfg = from_dict(cfg)
        torch.set_num_threads(max(1, int(self.cfg.learner.num_cpus)))
        self.device = resolve_device(self.cfg.learner.device)
        self.agent = make_learner(spec, self.cfg, self.device,
                                seed=self.cfg.train.seed + seeding.LEARNER)
        self.replay, self.param_server = ray.get_actor(replay), ray.get_actor(param_server)
        # A restarted learner publishes above every version handed out (workers load newer only).
        self.version = ray.get(self.param_server.latest_version.remote())
        self.updates = 0  # async updates taken, kept across checkpoints (evaluation's lag)
        self.m_updates = metrics.make("mbrl_learner_updates_total")
        if load_path:
            # On CPU: generator states must stay CPU byte tensors; modules and optimisers copy
            # their tensors to the agent's device as they load.
            state = torch.load(load_path, map_location="cpu", weights_only=True)
            self.agent.load_state_dict(state["agent"])
            self.version = max(self.version, state["version"])
            self.updates = state.get("updates", 0)  # absent in checkpoints before it was kept
            if self.agent.inference_weights() is not None:
                self._publish(self.version + 1)

    def device_name(self) -> str:
        return str(self.device)

    def fit(self) -> dict[str, float]:
        """Sync schedule: the agent's full-data fit on every transition held, then broadcast."""
        t0 = time.perf_counter()
        data, stats = ray.get([self.replay.transitions.remote(), self.replay.stats.remote()])
        result = self.agent.fit(data, stats["steps_inserted"])
        check_finite(result, "loss of the learner's fit")
        self.m_updates.inc(1)
        self._publish(self.version + 1)
        return {**result, "train_s": time.perf_counter() - t0}

    def train(self, num_updates: int) -> dict[str, float]:
        """Async schedule: `num_updates` steps on rate-limited batches, then broadcast. Batches
        come BATCHES_PER_REQUEST to a request, and PREFETCH requests wait in flight, so the
        replay samples while the agent trains."""
        t0 = time.perf_counter()
        if self.agent.refresh_rows:
            spec = BatchSpec("transitions", self.agent.refresh_rows)
            self.agent.refresh(self._on_device(ray.get(self.replay.sample.remote(spec, False))))
        spec = self.agent.batch_spec
        sizes = [min(BATCHES_PER_REQUEST, num_updates - i)
                 for i in range(0, num_updates, BATCHES_PER_REQUEST)]
        pending = deque(self.replay.sample_many.remote(spec, n) for n in sizes[:PREFETCH])
        total: dict[str, float] = {}
        for i in range(len(sizes)):
            batches = ray.get(pending.popleft())
            if i + PREFETCH < len(sizes):
                pending.append(self.replay.sample_many.remote(spec, sizes[i + PREFETCH]))
            for batch in batches:
                for k, v in self.agent.update(self._on_device(batch)).items():
                    total[k] = total.get(k, 0.0) + v / num_updates
        check_finite(total, "loss of the learner's updates")
        self.m_updates.inc(num_updates)
        self.updates += num_updates
        self._publish(self.version + 1)
        return {**total, "train_s": time.perf_counter() - t0}

    def _on_device(self, batch: dict) -> dict[str, torch.Tensor]:
        """A batch as tensors on the learner's device (one copy out of Ray's read-only shared
        memory); uint8 frames travel as bytes and become float there, in the agent."""
        return {k: torch.tensor(v, device=self.device) for k, v in batch.items()}

    def _publish(self, version: int) -> None:
        weights = self.agent.inference_weights()
        check_finite(weights, "weight (not published)")
        self.version = version
        ref = ray.put(weights)
        ray.get(self.param_server.publish.remote(version, [ref], self.updates))

    def save(self, path: str) -> None:
        """Write the agent's state; refused when any of it is non-finite."""
        state = self.agent.state_dict()
        check_finite(state, "learner state (not checkpointed)")
        try:
            torch.save({"agent": state, "version": self.version, "updates": self.updates}, path)
        except RuntimeError as err:
            # torch's writer reports a full disk as "unexpected pos" or "iostream error": say
            # what happened, as the OSError every other writer raises.
            free = shutil.disk_usage(os.path.dirname(path)).free
            if free < FULL_DISK_BYTES:
                raise OSError(errno.ENOSPC, f"No space left on device ({free:,} bytes free)",
                              path) from err
            raise
