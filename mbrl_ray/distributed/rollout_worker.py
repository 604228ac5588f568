"""Rollout worker actor: steps several envs, plans for all of them in one batched call, sends
chunks of experience to the replay actor and pulls weights when the parameter server moved on."""
from __future__ import annotations

import os
import time

import numpy as np
import ray
import torch

from mbrl_ray.agents import PETSAgent
from mbrl_ray.config import from_dict
from mbrl_ray.envs import make_env
from mbrl_ray.replay import empty_chunk
from mbrl_ray.telemetry import metrics


class EnvBatch:
    """The envs of one worker, stepped in lock-step; finished episodes reset at once."""

    def __init__(self, spec: str, count: int, seed: int, max_episode_steps: int) -> None:
        self.envs = [make_env(spec, seed + i, max_episode_steps) for i in range(count)]
        self.obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)])
        self.ret = np.zeros(count)
        self.len = np.zeros(count, np.int64)

    def step(self, actions: np.ndarray, rows: dict | None, t: int):
        """Step every env; write transition t of each into rows[k][env, t]; return finished
        episodes as (returns, lengths) and the done mask."""
        done = np.zeros(len(self.envs), bool)
        finished_ret, finished_len = [], []
        for i, env in enumerate(self.envs):
            nxt, reward, term, trunc, _ = env.step(actions[i])
            if rows is not None:
                for key, value in (("obs", self.obs[i]), ("action", actions[i]),
                                   ("reward", reward), ("next_obs", nxt),
                                   ("terminated", term), ("episode_end", term or trunc)):
                    rows[key][i, t] = value
            self.ret[i] += reward
            self.len[i] += 1
            if term or trunc:
                done[i] = True
                finished_ret.append(float(self.ret[i]))
                finished_len.append(int(self.len[i]))
                self.ret[i], self.len[i] = 0.0, 0
                nxt, _ = env.reset()
            self.obs[i] = nxt
        return finished_ret, finished_len, done


@ray.remote
class RolloutWorker:
    def __init__(self, name: str, cfg: dict, obs_dim: int, act_dim: int, replay, param_server,
                 seed: int) -> None:
        self.cfg = from_dict(cfg)
        torch.set_num_threads(max(1, int(self.cfg.workers.num_cpus)))
        self.name, self.replay, self.param_server = name, replay, param_server
        self.agent = PETSAgent(obs_dim, act_dim, self.cfg, self.cfg.workers.device, seed=seed,
                               trainable=False)
        self.envs = EnvBatch(self.cfg.env.id, self.cfg.workers.envs_per_worker, seed,
                             self.cfg.env.max_episode_steps)
        self.state = self.agent.initial_state(len(self.envs.envs))
        self.version = 0
        self.steps = 0
        self.pending_insert = None
        self.restarted = ray.get_runtime_context().was_current_actor_reconstructed
        self.tags = {"worker": name}
        self.m_steps = metrics.make("mbrl_env_steps_total")
        self.m_steps_per_s = metrics.make("mbrl_env_steps_per_s")
        self.m_plan_ms = metrics.make("mbrl_plan_latency_ms")

    def node_id(self) -> str:
        """The Ray node this worker runs on (placement checks)."""
        return ray.get_runtime_context().get_node_id()

    def sync_weights(self) -> int:
        """Load the newest weights if the parameter server moved past ours; return our version."""
        newer = ray.get(self.param_server.get_if_newer.remote(self.name, self.version))
        if newer is not None:
            version, (ref,) = newer
            self.agent.load_inference_weights(ray.get(ref))
            self.version = version
            self.param_server.loaded.remote(self.name, version)
        return self.version

    def collect(self, num_steps: int) -> dict:
        """Step all envs until at least num_steps transitions; send them to replay as one chunk."""
        self.sync_weights()
        n_envs = len(self.envs.envs)
        iters = -(-num_steps // n_envs)
        rows = {k: np.zeros((n_envs, iters, *v.shape[1:]), v.dtype)
                for k, v in empty_chunk(self.agent.obs_dim, self.agent.act_dim, 1).items()}
        returns, lengths, plan_s = [], [], 0.0
        t_start = time.perf_counter()
        for t in range(iters):
            t0 = time.perf_counter()
            actions, self.state = self.agent.act(self.envs.obs, self.state)
            plan_step_s = time.perf_counter() - t0
            plan_s += plan_step_s
            self.m_plan_ms.observe(1000 * plan_step_s, tags=self.tags)
            ret, length, done = self.envs.step(actions, rows, t)
            self.state = self.agent.reset_state(self.state, done)
            returns += ret
            lengths += length
            self.steps += n_envs
            self._maybe_crash()
        elapsed = time.perf_counter() - t_start
        self.m_steps.inc(n_envs * iters, tags=self.tags)
        self.m_steps_per_s.set(n_envs * iters / elapsed, tags=self.tags)
        self._send({k: v.reshape(n_envs * iters, *v.shape[2:]) for k, v in rows.items()})
        return {"steps": n_envs * iters, "episode_returns": returns, "episode_lengths": lengths,
                "plan_ms": 1000 * plan_s / iters, "env_steps_per_s": n_envs * iters / elapsed,
                "version": self.version, "worker": self.name}

    def evaluate(self, num_episodes: int, seed: int) -> list[float]:
        """Episodes on a fresh env with the newest weights; nothing goes to replay."""
        self.sync_weights()
        envs = EnvBatch(self.cfg.env.id, 1, seed, self.cfg.env.max_episode_steps)
        state = self.agent.initial_state(1)
        returns: list[float] = []
        while len(returns) < num_episodes:
            actions, state = self.agent.act(envs.obs, state)
            ret, _, done = envs.step(actions, None, 0)
            state = self.agent.reset_state(state, done)
            returns += ret
        return returns

    def _send(self, chunk: dict[str, np.ndarray]) -> None:
        """One insert in flight at most: waiting on the previous one is the limiter's backpressure."""
        if self.pending_insert is not None:
            ray.get(self.pending_insert)
        self.pending_insert = self.replay.insert.remote(chunk)

    def flush(self) -> None:
        if self.pending_insert is not None:
            ray.get(self.pending_insert)
            self.pending_insert = None

    def _maybe_crash(self) -> None:
        """Fault injection for tests: worker 0 dies once, mid-episode, at the configured step."""
        at = self.cfg.train.crash_worker_at_step
        if at and self.name == "worker-0" and not self.restarted and self.steps >= at:
            os._exit(1)
