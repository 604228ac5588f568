"""Rollout worker actor: steps several envs, plans for all of them in one batched call, sends
chunks of experience to the replay actor and pulls weights when the parameter server moved on."""
from __future__ import annotations

import os
import time
import uuid

import numpy as np
import ray
import torch

from mbrl_ray import seeding
from mbrl_ray.agents import make_actor
from mbrl_ray.config import from_dict
from mbrl_ray.devices import resolve_device
from mbrl_ray.envs.batch import EnvBatch, StreamRows
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.finite import NonFiniteError
from mbrl_ray.telemetry import metrics
from mbrl_ray.telemetry.video import encode_gif

EVAL_BATCH = 16  # evaluation envs stepped together: one batched plan per step for all of them


@ray.remote
class RolloutWorker:
    def __init__(self, name: str, cfg: dict, spec: EnvSpec, replay: str, param_server: str,
                 seed: int, crash_at_step: int = 0) -> None:
        """replay, param_server: the run's named actors (by name: a restart needs no argument
        from the object store); crash_at_step > 0: fault injection for tests, the process
        exits once (not after a restart) when its step count reaches it."""
        self.cfg = from_dict(cfg)
        torch.set_num_threads(max(1, int(self.cfg.workers.num_cpus)))
        self.name, self.spec = name, spec
        self.replay, self.param_server = ray.get_actor(replay), ray.get_actor(param_server)
        self.agent = make_actor(spec, self.cfg, resolve_device(self.cfg.workers.device),
                                seed=seeding.derive(seed, seeding.AGENT))
        self.envs = EnvBatch(self.cfg.env, self.cfg.workers.envs_per_worker,
                             seeding.derive(seed, seeding.ENVS))
        self.seed = seed
        self.state = self.agent.initial_state(len(self.envs.envs))
        # One stream per env and process: a restarted worker starts new streams, so no
        # sequence sampled later joins the dead process's rows to the new one's.
        incarnation = uuid.uuid4().hex[:12]
        self.streams = [(name, i, incarnation) for i in range(len(self.envs.envs))]
        self.crash_at_step = crash_at_step
        self.version = 0
        self.steps = 0
        self.pending_insert = None
        self.restarted = ray.get(self.param_server.register.remote(name)) > 0
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
            try:
                self._load(*newer)
            except ray.exceptions.ObjectLostError:
                # Their owner, a learner, died after publishing: act on the weights held
                # until its restart publishes newer ones.
                pass
        return self.version

    def _load(self, version: int, refs: list) -> None:
        self.agent.load_inference_weights(ray.get(refs[0]))
        self.version = version
        self.param_server.loaded.remote(self.name, version)

    def collect(self, num_steps: int) -> dict:
        """Step all envs until at least num_steps transitions; send them to replay as one chunk."""
        self.sync_weights()
        n_envs = len(self.envs.envs)
        iters = -(-num_steps // n_envs)
        rows = StreamRows(self.spec, n_envs, iters)
        episodes, plan_s = [], 0.0
        t_start = time.perf_counter()
        for t in range(iters):
            t0 = time.perf_counter()
            actions, self.state = self.agent.act(self.envs.obs, self.state)
            self._check_actions(actions)
            plan_step_s = time.perf_counter() - t0
            plan_s += plan_step_s
            self.m_plan_ms.observe(1000 * plan_step_s, tags=self.tags)
            finished, done = self.envs.step(actions, rows)
            self.state = self.agent.reset_state(self.state, done)
            episodes += finished
            self.steps += n_envs
            self._maybe_crash()
        elapsed = time.perf_counter() - t_start
        self.m_steps.inc(n_envs * iters, tags=self.tags)
        self.m_steps_per_s.set(n_envs * iters / elapsed, tags=self.tags)
        self._send(rows.segments(self.streams))
        return {"steps": n_envs * iters, "episode_returns": [e.ret for e in episodes],
                "episode_lengths": [e.length for e in episodes],
                "episode_successes": [e.success for e in episodes if e.success is not None],
                "plan_ms": 1000 * plan_s / iters, "env_steps_per_s": n_envs * iters / elapsed,
                "version": self.version, "worker": self.name}

    def evaluate(self, num_episodes: int, k: int, video_size: int = 0,
                 weights: tuple | None = None) -> dict:
        """Episodes on fresh envs, EVAL_BATCH at a time (one batched plan per step), each env
        seeded from the k-th evaluation's seed and playing one episode; nothing goes to replay.
        weights: (version, [ref]) to act with (the driver's choice, so that a seeded run
        evaluates the same weights every time), else the newest. video_size > 0 also films
        the first episode ('video': GIF bytes, size) and, where the agent's model draws
        observations, its open-loop prediction of that episode ('open_loop': GIF, height, width, error).
        'seconds': how long its episodes took (films included)."""
        if weights is not None:
            self._load(*weights)
        else:
            self.sync_weights()
        started = time.perf_counter()
        result = evaluation_episodes(self.agent, self.cfg,
                                     seeding.evaluation_env_seed(self.seed, k), num_episodes,
                                     video_size, self._check_actions)
        return result | {"seconds": time.perf_counter() - started}

    def _send(self, chunk: list) -> None:
        """One insert in flight at most: waiting on the previous one is the limiter's backpressure."""
        if self.pending_insert is not None:
            ray.get(self.pending_insert)
        self.pending_insert = self.replay.insert.remote(chunk)

    def flush(self) -> None:
        if self.pending_insert is not None:
            ray.get(self.pending_insert)
            self.pending_insert = None

    def _check_actions(self, actions: np.ndarray) -> None:
        """A non-finite action never reaches an env (or the replay)."""
        if not np.isfinite(actions).all():
            raise NonFiniteError(f"non-finite action planned by {self.name} at its env step "
                                 f"{self.steps} (weights version {self.version})")

    def _maybe_crash(self) -> None:
        """Fault injection for tests: the process dies once, mid-episode, at crash_at_step."""
        if self.crash_at_step and not self.restarted and self.steps >= self.crash_at_step:
            os._exit(1)


@ray.remote
class EvalActor:
    """One share of `mbrl-ray eval`'s episodes, acting with the weights it is given (no replay,
    no parameter server)."""

    def __init__(self, cfg, spec: EnvSpec, seed: int) -> None:
        torch.set_num_threads(1)
        self.cfg = cfg
        self.agent = make_actor(spec, cfg, resolve_device(cfg.workers.device), seed=seed)

    def episodes(self, weights, seed: int, count: int, video_size: int) -> dict:
        self.agent.load_inference_weights(weights)
        return evaluation_episodes(self.agent, self.cfg, seed, count, video_size,
                                   self._check_actions)

    @staticmethod
    def _check_actions(actions: np.ndarray) -> None:
        if not np.isfinite(actions).all():
            raise NonFiniteError("non-finite action planned in evaluation")


def evaluation_episodes(agent, cfg, seed: int, num_episodes: int, video_size: int = 0,
                        check_actions=None) -> dict:
    """num_episodes on fresh envs acting without exploration, EVAL_BATCH at a time (one batched
    plan per step); episode e's env is seeded seed + e. {'returns', 'successes'}, and with
    video_size > 0 the first episode filmed ('video') and, where the agent's model draws
    observations, its open-loop prediction ('open_loop')."""
    episodes, film, envs = [], None, None
    while len(episodes) < num_episodes:
        count = min(num_episodes - len(episodes), EVAL_BATCH)
        envs = EnvBatch(cfg.env, count, seed + len(episodes),
                        render_size=0 if episodes else video_size)
        if video_size and not episodes:
            film = _Film(envs, agent.spec.act_dim, agent.open_loop_rows)
        episodes += first_episodes(agent, envs, check_actions, None if episodes else film)
        envs.close()
    out = {"returns": [e.ret for e in episodes],
           "successes": [e.success for e in episodes if e.success is not None]}
    if film is not None:
        fps = envs.envs[0].metadata.get("render_fps", 30) / cfg.env.action_repeat
        out.update(film.results(agent, fps, video_size))
    return out


def first_episodes(agent, envs: EnvBatch, check_actions=None,
                   film: "_Film | None" = None) -> list:
    """Act in the batch until each env has finished one episode; return those, in env order.
    Envs done early keep stepping unrecorded (taking whichever episodes end first would favour
    short ones). film records env 0's episode."""
    count = len(envs.envs)
    state = agent.initial_state(count)
    first: list = [None] * count
    while any(e is None for e in first):
        actions, state = agent.act(envs.obs, state, explore=False)
        if check_actions is not None:
            check_actions(actions)
        finished, done = envs.step(actions)
        state = agent.reset_state(state, done)
        if film is not None and first[0] is None and not done[0]:
            film.record(envs, actions[0])
        for i, episode in zip(np.flatnonzero(done), finished):
            if first[i] is None:
                first[i] = episode
    return first


class _Film:
    """The first evaluation episode: rendered frames, and the agent's first `rows` observations
    with the actions that led to them (replay's row layout) for an open-loop prediction."""

    def __init__(self, envs: EnvBatch, act_dim: int, rows: int) -> None:
        self.frames = [envs.envs[0].render()]
        self.obs = [np.array(envs.obs[0])]
        self.actions = [np.zeros(act_dim, np.float32)]
        self.rows = rows

    def record(self, envs: EnvBatch, action: np.ndarray) -> None:
        self.frames.append(envs.envs[0].render())
        if len(self.obs) < self.rows:
            self.obs.append(np.array(envs.obs[0]))
            self.actions.append(np.asarray(action, np.float32))

    def results(self, agent, fps: float, size: int) -> dict:
        out = {"video": (encode_gif(np.stack(self.frames), fps), size)}
        predicted = agent.open_loop_video(np.stack(self.obs), np.stack(self.actions))
        if predicted is not None:
            strip, error = predicted
            out["open_loop"] = (encode_gif(strip, fps), *strip.shape[1:3], error)
        return out
