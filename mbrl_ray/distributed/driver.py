"""Driver: composition only. Builds the graph, runs the sync or async schedule, evaluates,
logs to TensorBoard, checkpoints, survives rollout-worker deaths, stops at the step budget."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray
import yaml

from mbrl_ray.config import Config, ConfigError, from_dict, to_dict, validate
from mbrl_ray.distributed import checkpoint as ckpt
from mbrl_ray.distributed import topology
from mbrl_ray.envs import check_env_spec, env_dims, env_kwargs
from mbrl_ray.telemetry import Progress, TBLogger

MAX_WORKER_RETRIES = 20  # calls re-sent to one failing worker before the run gives up
RETRY_WAIT_S = 0.5


@dataclass
class RunResult:
    run_dir: Path
    env_steps: int
    final_eval_return: float
    worker_restarts: int


def preflight(cfg: Config) -> None:
    """Every check that needs no actor: raises ConfigError naming the key and value."""
    validate(cfg)
    check_env_spec(cfg.env.id, cfg.env.max_episode_steps)
    if cfg.env.obs == "pixels":
        raise ConfigError("env.obs='pixels' needs an agent with an image encoder; the pets, sac "
                          "and mbpo agents act on state vectors: use env.obs=state")
    m, t = cfg.model, cfg.train
    rows, keys = ((cfg.sac.batch_size, "sac.batch_size") if cfg.agent.name == "sac" else
                  (m.ensemble_size * m.batch_size, "model.ensemble_size x model.batch_size"))
    if t.schedule == "async" and t.spi_error_buffer < rows:
        raise ConfigError(f"train.spi_error_buffer={t.spi_error_buffer:g} must be at least one "
                          f"sample request, {keys} = {rows}")


def init_ray(cfg: Config) -> None:
    """Join the cluster of `ray job submit` (RAY_ADDRESS) or cfg.ray.address, else start locally."""
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs = {"num_cpus": cfg.ray.num_cpus} if cfg.ray.num_cpus else {}
    ray.init(address=cfg.ray.address or None, log_to_driver=True, **kwargs)


def save_config(cfg: Config, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def load_run_config(run_dir: Path) -> Config:
    path = run_dir / "config.yaml"
    if not path.exists():
        raise ConfigError(f"run dir {str(run_dir)!r} has no config.yaml: not a run directory")
    return from_dict(yaml.safe_load(path.read_text()))


class Driver:
    """Runs one training run in `run_dir`; `resume=True` continues from its newest checkpoint."""

    def __init__(self, cfg: Config, run_dir: Path, resume: bool = False, printer=print) -> None:
        self.cfg, self.run_dir, self.printer = cfg, Path(run_dir), printer
        self.counters = {"env_steps": 0, "rounds": 0, "evals": 0, "resumes": 0,
                         "worker_restarts": 0, "limiter": None}
        self.checkpoint = ckpt.latest(self.run_dir) if resume else None
        if resume and self.checkpoint is None:
            raise ConfigError(f"run dir {str(self.run_dir)!r} has no checkpoint to resume from")
        if self.checkpoint is not None:
            self.counters.update(ckpt.read_counters(self.checkpoint))
            self.counters["resumes"] += 1
        self.last_return: float | None = None
        self.last_eval: float | None = None
        self.pending_eval: tuple | None = None  # (ref, step)
        self.next_eval = self._next_multiple(self.cfg.train.eval_every)
        self.next_ckpt = self._next_multiple(self.cfg.train.checkpoint_every)

    def _next_multiple(self, every: int) -> int:
        if every <= 0:
            return math.inf
        return (self.counters["env_steps"] // every + 1) * every

    # ---- the run ------------------------------------------------------------------------------
    def run(self) -> RunResult:
        preflight(self.cfg)
        save_config(self.cfg, self.run_dir)
        init_ray(self.cfg)
        topology.check_resources(self.cfg)
        obs_dim, act_dim = env_dims(self.cfg.env.id, **env_kwargs(self.cfg.env))
        self.topo = topology.build(self.cfg, obs_dim, act_dim, self.counters["resumes"],
                                   self.checkpoint, self.counters["limiter"])
        try:  # however the run ends, its actors go with it
            nodes = {"start": self._worker_nodes()}
            final = self._train_and_evaluate()
            nodes["end"] = self._worker_nodes()
        finally:
            for actor in self.topo.all_actors():
                ray.kill(actor)
            topology.release_resource_request(self.cfg)
        result = RunResult(self.run_dir, self.counters["env_steps"], final,
                           self.counters["worker_restarts"])
        (self.run_dir / "result.json").write_text(json.dumps(
            {"env_steps": result.env_steps, "final_eval_return": final,
             "worker_restarts": result.worker_restarts, "worker_nodes": nodes}))
        return result

    def _worker_nodes(self) -> list[str]:
        """Ray node id of every rollout worker, in worker order (where placement put them)."""
        return ray.get([w.node_id.remote() for w in self.topo.workers])

    def _train_and_evaluate(self) -> float:
        self.tb = TBLogger(self.run_dir / "tb", purge_step=self.counters["env_steps"] or None)
        self.progress = Progress(self.cfg.train.steps, self.counters["env_steps"], self.printer)
        device = ray.get(self.topo.learner.device_name.remote())
        self.printer(f"run dir {self.run_dir}  TensorBoard: tensorboard --logdir "
                     f"{self.run_dir / 'tb'}  learner on {device}", flush=True)
        try:
            if self.cfg.train.schedule == "sync":
                self._run_sync()
            else:
                self._run_async()
            final = self._final_eval()
            self._checkpoint()
        finally:
            self.tb.close()
        return final

    def _run_sync(self) -> None:
        """PETS's loop: collect a round on all workers, fit the model on all data, broadcast."""
        t = self.cfg.train
        while self.counters["env_steps"] < t.steps:
            first = self.counters["env_steps"] < t.random_steps
            round_steps = t.random_steps if first else t.steps_per_round
            round_steps = min(round_steps, t.steps - self.counters["env_steps"])
            per_worker = -(-round_steps // len(self.topo.workers))
            t0 = time.perf_counter()
            results = self._collect_all(per_worker)
            self._log_collect(results, time.perf_counter() - t0)
            self._log_learner(ray.get(self.topo.learner.fit.remote()))
            self._after_round()

    def _run_async(self) -> None:
        """Free-running workers and learner; the replay limiter holds samples per insert."""
        t, topo = self.cfg.train, self.topo
        chunk = max(1, t.steps_per_round // len(topo.workers))
        inflight = {w.collect.remote(chunk): (w, 0) for w in topo.workers}
        learner_ref = topo.learner.train.remote(t.updates_per_round)
        submitted = self.counters["env_steps"] + chunk * len(topo.workers)
        t0 = time.perf_counter()
        while inflight:
            ready, _ = ray.wait(list(inflight) + [learner_ref], num_returns=1)
            ref = ready[0]
            if ref == learner_ref:
                self._log_learner(ray.get(ref))
                learner_ref = topo.learner.train.remote(t.updates_per_round)
                continue
            worker, tries = inflight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError as err:
                self._on_worker_error(err, tries)
                inflight[worker.collect.remote(chunk)] = (worker, tries + 1)
                continue
            self._log_collect([result], time.perf_counter() - t0)
            t0 = time.perf_counter()
            self._after_round()
            if submitted < t.steps:
                inflight[worker.collect.remote(chunk)] = (worker, 0)
                submitted += chunk
        ray.get(topo.replay.release_limiter.remote())  # let the learner's last call finish
        self._log_learner(ray.get(learner_ref))

    # ---- pieces of a round --------------------------------------------------------------------
    def _collect_all(self, per_worker: int) -> list[dict]:
        """collect() on every worker; a worker that died is restarted by Ray and asked again."""
        refs = {w.collect.remote(per_worker): (w, 0) for w in self.topo.workers}
        results = []
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            worker, tries = refs.pop(ready[0])
            try:
                results.append(ray.get(ready[0]))
            except ray.exceptions.RayActorError as err:
                self._on_worker_error(err, tries)
                refs[worker.collect.remote(per_worker)] = (worker, tries + 1)
        for w in self.topo.workers:  # inserts are in flight; a fit must see the whole round
            try:
                ray.get(w.flush.remote())
            except ray.exceptions.RayActorError:
                pass  # died since its collect returned: its next collect counts the restart
        return results

    def _on_worker_error(self, err: Exception, tries: int) -> None:
        """A died worker is restarted by Ray and its call re-sent; errors of the re-sent calls
        (the actor still restarting) are the same death and are not counted again."""
        if tries >= MAX_WORKER_RETRIES:
            raise RuntimeError("a rollout worker keeps failing; giving up") from err
        time.sleep(RETRY_WAIT_S)
        if tries > 0:
            return
        self.counters["worker_restarts"] += 1
        self.printer("a rollout worker died; Ray restarts it and the run goes on "
                     f"(the episode in flight is lost): {type(err).__name__}", flush=True)

    def _log_collect(self, results: list[dict], seconds: float) -> None:
        steps = sum(r["steps"] for r in results)
        self.counters["env_steps"] += steps
        step = self.counters["env_steps"]
        returns = [x for r in results for x in r["episode_returns"]]
        lengths = [x for r in results for x in r["episode_lengths"]]
        successes = [x for r in results for x in r["episode_successes"]]
        if returns:
            self.last_return = float(np.mean(returns))
        stats = ray.get(self.topo.replay.stats.remote())
        self.tb.scalars({
            "charts/episodic_return": self.last_return if returns else None,
            "charts/episode_length": float(np.mean(lengths)) if lengths else None,
            "charts/success": float(np.mean(successes)) if successes else None,
            "perf/env_steps_per_s": steps / max(seconds, 1e-9),
            "perf/plan_ms": float(np.mean([r["plan_ms"] for r in results])),
            "replay/size": stats["size"],
            "replay/samples_per_insert": stats["samples_per_insert"],
            "params/version_lag": ray.get(self.topo.param_server.version_lag.remote()),
            "faults/worker_restarts": self.counters["worker_restarts"],
        }, step)

    def _log_learner(self, metrics: dict) -> None:
        step = self.counters["env_steps"]
        self.tb.scalars({f"losses/{k}": v for k, v in metrics.items() if k != "train_s"}
                        | {"perf/train_s": metrics.get("train_s")}, step)

    def _after_round(self) -> None:
        self.counters["rounds"] += 1
        step = self.counters["env_steps"]
        self._poll_eval()
        if step >= self.next_eval and self.pending_eval is None:
            self._start_eval(step)
            self.next_eval = self._next_multiple(self.cfg.train.eval_every)
        if step >= self.next_ckpt and step < self.cfg.train.steps:
            self._checkpoint()
            self.next_ckpt = self._next_multiple(self.cfg.train.checkpoint_every)
        self.progress.report(step, self.last_return, self.last_eval)

    # ---- evaluation and checkpoints -----------------------------------------------------------
    def _start_eval(self, step: int, final: bool = False) -> None:
        """Evaluate on the evaluator; film every train.video_every-th evaluation and the last."""
        seed = self.cfg.train.seed + 7919 * (self.counters["evals"] + 1)
        self.counters["evals"] += 1
        every = self.cfg.train.video_every
        film = every > 0 and (final or (self.counters["evals"] - 1) % every == 0)
        ref = self.topo.evaluator.evaluate.remote(self.cfg.train.eval_episodes, seed,
                                                  self.cfg.train.video_size if film else 0)
        self.pending_eval = (ref, step)

    def _poll_eval(self, block: bool = False) -> None:
        if self.pending_eval is None:
            return
        ref, step = self.pending_eval
        if not block and not ray.wait([ref], timeout=0)[0]:
            return
        self.pending_eval = None
        result = ray.get(ref)
        self.last_eval = float(np.mean(result["returns"]))
        successes = result["successes"]
        self.tb.scalars({"eval/episodic_return": self.last_eval,
                         "eval/success": float(np.mean(successes)) if successes else None}, step)
        if "video" in result:
            gif, size = result["video"]
            self.tb.video("eval/video", gif, size, size, step)

    def _final_eval(self) -> float:
        self._poll_eval(block=True)
        self._start_eval(self.counters["env_steps"], final=True)
        self._poll_eval(block=True)
        self.progress.report(self.counters["env_steps"], self.last_return, self.last_eval)
        return self.last_eval

    def _checkpoint(self) -> Path:
        path = ckpt.new_checkpoint_dir(self.run_dir, self.counters["env_steps"])
        learner_done = self.topo.learner.save.remote(str(path / "learner.pt"))
        self.counters["limiter"] = ray.get(self.topo.replay.save.remote(str(path / "replay.npz")))
        ray.get(learner_done)
        return ckpt.commit(path, self.counters)
