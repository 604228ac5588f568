"""Driver: composition only. Builds the graph, runs the sync or async schedule
(`schedules.py`), evaluates (`evaluation.py`), logs to TensorBoard, checkpoints, survives
rollout-worker and learner deaths, stops at the step budget or, clearly, on a non-finite
value."""
from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import numpy as np
import ray

from mbrl_ray.config import Config, ConfigError
from mbrl_ray.distributed import checkpoint as ckpt
from mbrl_ray.distributed import topology
from mbrl_ray.distributed.evaluation import Evaluations
from mbrl_ray.distributed.faults import RunStopped, actor_error_cause
from mbrl_ray.distributed.preflight import (check_replay_memory_on_node, describe_planning,
                                            init_ray, learner_state_loader, preflight)
from mbrl_ray.distributed.run_result import RunResult, reserve_room, write_result
from mbrl_ray.distributed.schedules import run_async, run_sync
from mbrl_ray.finite import NonFiniteError
from mbrl_ray.distributed.stop_signals import (RunInterrupted, StopSignals,
                                               raising_on_stop_signals)
from mbrl_ray.run_dir import RunDirLock, check_new_run_dir, save_config
from mbrl_ray.telemetry import Progress, TBLogger

# Calls re-sent to one failing worker before the run gives up: 60 s of RETRY_WAIT_S. A restart
# (a new process importing torch and building its envs) took over 10 s on 2 busy cores.
MAX_WORKER_RETRIES = 120
RETRY_WAIT_S = 0.5
STOP_CHECKPOINT_S = 60  # what a stop signal's checkpoint may take before the run exits without


def checkpoint_interval(cfg: Config) -> int:
    """train.checkpoint_every, or 10% of the step budget when it is 0."""
    t = cfg.train
    return t.checkpoint_every or max(1, -(-t.steps // 10))


class Driver:
    """Runs one training run in `run_dir`; `resume=True` continues from its newest checkpoint.
    Bad input raises ConfigError here, before anything is written or started.
    faults: fault injection for tests ({'crash_worker_at_step': N}), never part of the config."""

    def __init__(self, cfg: Config, run_dir: Path, resume: bool = False, printer=print,
                 faults: dict | None = None) -> None:
        self.spec = preflight(cfg)
        self.cfg, self.run_dir, self.printer = cfg, Path(run_dir), printer
        self.resume = resume
        self.faults = faults or {}
        self.counters = {"env_steps": 0, "rounds": 0, "evals": 0, "resumes": 0,
                         "worker_restarts": 0, "learner_restarts": 0, "replay": None}
        if resume and not self.run_dir.is_dir():
            raise ConfigError(f"run dir {str(self.run_dir)!r} does not exist: nothing to resume")
        self.lock = RunDirLock(self.run_dir)  # before reading: no other writer from here on
        try:
            self._open(resume)
        except BaseException:
            self.lock.release()
            raise
        self.last_return: float | None = None
        self.checkpoint_due = False
        self.next_eval = self._next_multiple(self.cfg.train.eval_every)
        self.next_ckpt = self._next_multiple(checkpoint_interval(self.cfg))

    def _open(self, resume: bool) -> None:
        """A new run's empty dir, or a resumed run's counters from its newest usable checkpoint
        (nothing renamed or written yet)."""
        if not resume:
            check_new_run_dir(self.run_dir)  # again, under the lock: a run may have begun
        if resume:
            load = learner_state_loader(self.cfg, self.spec)
            self.saved = ckpt.choose(self.run_dir, self._warn,
                                     check=lambda path: ckpt.problem(path, load))
        else:
            self.saved = None
        if resume and self.saved is None:
            raise ConfigError(f"run dir {str(self.run_dir)!r} has no usable checkpoint to "
                              "resume from")
        if self.saved is not None:
            self.counters.update(ckpt.read_counters(self.saved))
            self.counters.pop("files", None)
            self.counters["resumes"] += 1
            # Steps counted while their chunk still waited at the limiter never reached the
            # replay (async): the resumed run counts from what the replay holds.
            self.counters["env_steps"] = self.counters["replay"]["steps"]

    def _warn(self, message: str) -> None:
        self.printer(message, flush=True)

    def _next_multiple(self, every: int) -> int:
        if every <= 0:
            return math.inf
        return (self.counters["env_steps"] // every + 1) * every

    # ---- the run ------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Train to the step budget. Raises RunStopped (after writing result.json) when a
        non-finite value or a learner that keeps dying stops the run, and RunInterrupted (after
        a checkpoint and result.json) on SIGINT or SIGTERM. The run dir's lock goes with it."""
        try:
            return self._run()
        finally:
            self.lock.release()

    def _run(self) -> RunResult:
        if self.resume:
            ckpt.set_aside_broken(self.run_dir, self.saved)
        for leftover in ckpt.remove_leftovers(self.run_dir):
            self._warn(f"warning: removed {leftover}, a checkpoint a stopped run never finished")
        started_here = init_ray(self.cfg)
        topology.check_resources(self.cfg)  # a cluster's resources: checked before writing
        if not started_here:  # a Ray this run joined (preflight checked this machine's)
            check_replay_memory_on_node(self.cfg, self.spec)
        save_config(self.cfg, self.run_dir)
        reserve_room(self.run_dir)
        with raising_on_stop_signals() as signals:  # after ray.init, which sets its own
            return self._run_actors(signals)

    def _run_actors(self, signals: StopSignals) -> RunResult:
        self.learner_start = self.saved  # the checkpoint the learner (re)started from
        self.topo = topology.build(self.cfg, self.spec, self.counters["resumes"], self.saved,
                                   self.counters["replay"],
                                   self.faults.get("crash_worker_at_step", 0))
        nodes, final, stopped, interrupt = {}, None, None, None
        try:  # however the run ends, its actors go with it
            nodes["start"] = self._worker_nodes()
            final = self._train_and_evaluate()
            nodes["end"] = self._worker_nodes()
        except (NonFiniteError, RunStopped) as err:
            stopped = self._stop_message(err)
        except (ray.exceptions.OutOfMemoryError, OSError) as err:
            # Memory or disk ran out (an actor's OSError arrives as a RayTaskError that is
            # also an OSError): one line with the cause, not a traceback.
            stopped = self._stop_message(err)
        except KeyboardInterrupt:
            interrupt = signals.interrupted()
            stopped = interrupt.word
            interrupt.message = self._interrupted_message(interrupt)
            final = self.evals.last if hasattr(self, "evals") else None
        finally:
            for actor in self.topo.all_actors():
                ray.kill(actor)
            topology.release_resource_request(self.cfg)
        result = RunResult(self.run_dir, self.counters["env_steps"], final,
                           self.counters["worker_restarts"], self.counters["learner_restarts"])
        write_result(result, nodes, stopped)
        if interrupt is not None:
            raise interrupt
        if stopped:
            raise RunStopped(stopped)
        return result

    def _interrupted_message(self, err: RunInterrupted) -> str:
        """Checkpoint now (bounded in time) and say what is saved."""
        try:
            if self.cfg.train.schedule == "async":  # the learner's round must be able to end
                ray.get(self.topo.replay.release_limiter.remote(), timeout=STOP_CHECKPOINT_S)
            saved = self.checkpoint(pause_inserts=True, timeout=STOP_CHECKPOINT_S)
            when = f"checkpoint {saved} saved now"
        except (ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError, RunStopped) as fault:
            saved = ckpt.latest(self.run_dir)
            when = (f"no checkpoint now ({type(fault).__name__}); the last good one is "
                    f"{saved or 'none'}")
        return (f"run {err.word} by {err} at env step {self.counters['env_steps']}: {when}"
                + (f"; continue with `mbrl-ray resume {self.run_dir}`" if saved else ""))

    def _stop_message(self, err: Exception) -> str:
        cause = getattr(err, "cause", None) or err  # an actor's error arrives wrapped by Ray
        if isinstance(err, ray.exceptions.OutOfMemoryError):
            cause = f"out of memory: {actor_error_cause(err)}"
        saved = ckpt.latest(self.run_dir)
        where = f"The last good checkpoint is {saved or 'none (nothing was saved)'}"
        if saved and getattr(err, "learner_failed", False):
            return (f"run stopped at env step {self.counters['env_steps']}: {cause}. {where}, "
                    "but the learner failed starting from it: resuming would fail the same "
                    "way until the cause is fixed")
        return (f"run stopped at env step {self.counters['env_steps']}: {cause}. {where}"
                + (f"; continue from it with `mbrl-ray resume {self.run_dir}`" if saved else ""))

    def _worker_nodes(self) -> list[str | None]:
        """Ray node id of every rollout worker, in worker order (where placement put them);
        None for a worker that is restarting just now."""
        nodes = []
        for worker in self.topo.workers:
            try:
                nodes.append(ray.get(worker.node_id.remote(), timeout=60))
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                nodes.append(None)
        return nodes

    def _train_and_evaluate(self) -> float:
        self.tb = TBLogger(self.run_dir / "tb", resume_step=self.counters["env_steps"] or None)
        self.evals = Evaluations(self.cfg, self.topo, self.tb, self.counters["evals"])
        self.progress = Progress(self.cfg.train.steps, self.counters["env_steps"], self.printer)
        device = self.learner_result(lambda learner: learner.device_name.remote())
        self.printer(f"run dir {self.run_dir}  TensorBoard: tensorboard --logdir "
                     f"{self.run_dir / 'tb'}  learner on {device}", flush=True)
        planning = describe_planning(self.cfg, self.spec)
        if planning:
            self.printer(planning, flush=True)
        try:
            (run_sync if self.cfg.train.schedule == "sync" else run_async)(self)
            final = self.evals.final(self.counters["env_steps"])
            self.counters["evals"] = self.evals.count
            self._report()
            self.final_checkpoint()
        finally:
            self.tb.close()
        return final

    def final_checkpoint(self) -> None:
        """The run's last checkpoint, taken again while the learner dies during it (it is
        restarted from the newest checkpoint each time, up to learner.max_restarts): the run's
        newest checkpoint then holds every env step the run reports."""
        while True:
            restarts = self.counters["learner_restarts"]
            self.checkpoint(pause_inserts=False)
            if self.counters["learner_restarts"] == restarts:
                return

    # ---- pieces of a round (called by the schedules) ------------------------------------------
    def collect_all(self, per_worker: int) -> list[dict]:
        """collect() on every worker; a worker that died is restarted by Ray and asked again."""
        refs = {w.collect.remote(per_worker): (w, 0) for w in self.topo.workers}
        results = []
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            worker, tries = refs.pop(ready[0])
            try:
                results.append(ray.get(ready[0]))
            except ray.exceptions.RayActorError as err:
                self.on_worker_error(err, tries)
                refs[worker.collect.remote(per_worker)] = (worker, tries + 1)
        self.flush_workers()  # inserts are in flight; a fit must see the whole round
        return results

    def flush_workers(self) -> None:
        """Wait until every worker's last chunk is in the replay."""
        for w in self.topo.workers:
            try:
                ray.get(w.flush.remote())
            except ray.exceptions.RayActorError:
                pass  # died since its collect returned: its next collect counts the restart

    def on_worker_error(self, err: Exception, tries: int) -> None:
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

    def log_collect(self, results: list[dict], seconds: float) -> None:
        steps = sum(r["steps"] for r in results)
        self.counters["env_steps"] += steps
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
            "faults/learner_restarts": self.counters["learner_restarts"],
        }, self.counters["env_steps"])

    def log_learner(self, metrics: dict) -> None:
        self.tb.scalars({f"losses/{k}": v for k, v in metrics.items() if k != "train_s"}
                        | {"perf/train_s": metrics.get("train_s")}, self.counters["env_steps"])

    def after_round(self, checkpoint_now: bool) -> None:
        """Evaluate and checkpoint when due. checkpoint_now=False (async) marks a due
        checkpoint for the schedule to take when the learner is between rounds."""
        self.counters["rounds"] += 1
        step = self.counters["env_steps"]
        self.evals.poll()
        # The last step's evaluation is the final one (evals.final): never twice.
        if self.next_eval <= step < self.cfg.train.steps and not self.evals.busy:
            self.evals.start(step)
            if self.cfg.train.eval_wait:
                self.evals.poll(block=True)
            self.counters["evals"] = self.evals.count
            self.next_eval = self._next_multiple(self.cfg.train.eval_every)
        if step >= self.next_ckpt and step < self.cfg.train.steps:
            self.checkpoint_due = True
            self.next_ckpt = self._next_multiple(checkpoint_interval(self.cfg))
        if self.checkpoint_due and checkpoint_now:
            self.checkpoint(pause_inserts=False)
        self._report()

    def _report(self) -> None:
        self.progress.report(self.counters["env_steps"], self.last_return, self.evals.last)

    # ---- checkpoints --------------------------------------------------------------------------
    def checkpoint(self, pause_inserts: bool, timeout: float | None = None) -> Path:
        """Learner, replay and counters in one folder, committed atomically. pause_inserts
        (async): inserts wait meanwhile, so both are saved at the same insert count (the
        learner is between rounds when this is called). timeout: seconds each save may take
        (GetTimeoutError past it). Whatever stops a checkpoint midway (a time-out, a full disk,
        a signal) leaves no .tmp behind."""
        self.checkpoint_due = False
        path = ckpt.new_checkpoint_dir(self.run_dir, self.counters["env_steps"])
        try:
            saved = self._save_into(path, pause_inserts, timeout)
            return ckpt.commit(path, self.counters) if saved else ckpt.latest(self.run_dir)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise

    def _save_into(self, path: Path, pause_inserts: bool, timeout: float | None) -> bool:
        """Learner and replay files into `path`; False when the learner died meanwhile (it is
        restarted, and this checkpoint is not taken)."""
        replay = self.topo.replay
        try:
            if pause_inserts:
                ray.get(replay.pause.remote(True), timeout=timeout)
            learner_done = self.topo.learner.save.remote(str(path / "learner.pt"))
            self.counters["replay"] = ray.get(replay.save.remote(str(path / "replay.npz")),
                                              timeout=timeout)
            try:
                ray.get(learner_done, timeout=timeout)
            except ray.exceptions.RayActorError as err:
                self.restart_learner(err)
                shutil.rmtree(path, ignore_errors=True)
                return False
        finally:
            if pause_inserts:
                ray.get(replay.pause.remote(False), timeout=timeout)
        return True

    # ---- the learner --------------------------------------------------------------------------
    def learner_result(self, call):
        """ray.get(call(learner)); a learner that died is restarted and the call sent again."""
        while True:
            try:
                return ray.get(call(self.topo.learner))
            except ray.exceptions.RayActorError as err:
                self.restart_learner(err)

    def restart_learner(self, err: Exception) -> None:
        """Start a new learner from the run's newest checkpoint (its initial state before the
        first); replay, parameter server and workers go on. Gives up after
        learner.max_restarts."""
        if self.counters["learner_restarts"] >= self.cfg.learner.max_restarts:
            # Still the checkpoint it last started from: a resume would start it the same way.
            same_start = self.learner_start == ckpt.latest(self.run_dir)
            raise RunStopped(f"the learner died {self.counters['learner_restarts'] + 1} times "
                             f"(learner.max_restarts={self.cfg.learner.max_restarts}); last "
                             f"cause: {actor_error_cause(err)}", learner_failed=same_start)
        self.counters["learner_restarts"] += 1
        ray.kill(self.topo.learner)
        saved = self.learner_start = ckpt.latest(self.run_dir)
        self.topo.learner = topology.start_learner(self.cfg, self.spec, self.topo.names, saved)
        self.printer(f"the learner died ({type(err).__name__}); restarted from "
                     f"{saved or 'its initial state (no checkpoint yet)'}; the run goes on",
                     flush=True)
