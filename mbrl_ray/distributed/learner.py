"""Learner actor: owns the agent's trainable state, fits it from replay, publishes weights."""
from __future__ import annotations

import time

import ray
import torch

from mbrl_ray.agents import make_agent
from mbrl_ray.config import from_dict
from mbrl_ray.devices import resolve_device
from mbrl_ray.telemetry import metrics

NORMALIZER_ROWS = 20_000  # rows sampled (uncounted) to refresh the statistics, async schedule


@ray.remote
class Learner:
    def __init__(self, cfg: dict, obs_dim: int, act_dim: int, replay, param_server,
                 load_path: str | None = None) -> None:
        self.cfg = from_dict(cfg)
        torch.set_num_threads(max(1, int(self.cfg.learner.num_cpus)))
        self.device = resolve_device(self.cfg.learner.device)
        self.agent = make_agent(obs_dim, act_dim, self.cfg, self.device, seed=self.cfg.train.seed)
        self.replay, self.param_server = replay, param_server
        self.version = 0
        self.m_updates = metrics.make("mbrl_learner_updates_total")
        if load_path:
            state = torch.load(load_path, map_location=self.device, weights_only=False)
            self.agent.load_state_dict(state["agent"])
            self.version = state["version"]
            if self.agent.inference_weights() is not None:
                self._publish(self.version)

    def device_name(self) -> str:
        return str(self.device)

    def fit(self) -> dict[str, float]:
        """Sync schedule: train on everything in replay to convergence, then broadcast."""
        t0 = time.perf_counter()
        data, stats = ray.get([self.replay.all.remote(), self.replay.stats.remote()])
        result = self.agent.fit(data, stats["total_inserted"])
        self.m_updates.inc(1)
        self._publish(self.version + 1)
        return {**result, "train_s": time.perf_counter() - t0}

    def train(self, num_updates: int) -> dict[str, float]:
        """Async schedule: `num_updates` steps on rate-limited batches, then broadcast."""
        t0 = time.perf_counter()
        if self.agent.uses_normalizers:
            self.agent.set_normalizers(ray.get(self.replay.sample.remote(NORMALIZER_ROWS, False)))
        total: dict[str, float] = {}
        for _ in range(num_updates):
            batch = ray.get(self.replay.sample.remote(self.agent.batch_rows))
            for k, v in self.agent.update(batch).items():
                total[k] = total.get(k, 0.0) + v / num_updates
        self.m_updates.inc(num_updates)
        self._publish(self.version + 1)
        return {**total, "train_s": time.perf_counter() - t0}

    def _publish(self, version: int) -> None:
        self.version = version
        ref = ray.put(self.agent.inference_weights())
        ray.get(self.param_server.publish.remote(version, [ref]))

    def save(self, path: str) -> None:
        torch.save({"agent": self.agent.state_dict(), "version": self.version}, path)
