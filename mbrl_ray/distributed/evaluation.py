"""Evaluations of a run on the evaluator actor, beside training: one in flight at a time, each
with the weights published when it started, its results logged at the step it was due (with
train.eval_wait the driver waits for each, so none is skipped).

On the async schedule each also logs how many learner updates its weights are behind those the
samples-per-insert ratio had granted when it was due (eval/updates_behind; negative: ahead).
With train.eval_max_lag >= 0 an evaluation is held back until the learner publishes weights at
most that many updates behind, while training goes on (the driver's loop polls), so that two
runs are evaluated at equal training progress. Updates a restarted learner lost (samples drawn
that no published weights hold) are not counted as due: no learner could make them up, since
the limiter counted their samples."""
from __future__ import annotations

import numpy as np
import ray

from mbrl_ray.agents import agent_class
from mbrl_ray.telemetry import TBLogger


class Evaluations:
    def __init__(self, cfg, topo, tb: TBLogger, done_so_far: int) -> None:
        self.cfg, self.topo, self.tb = cfg, topo, tb
        self.count = done_so_far
        self.pending: tuple | None = None  # (ref, step) of the evaluation running
        self.held: tuple | None = None     # (step, updates due) of one waiting on the learner
        self.last: float | None = None
        self.lost = 0.0  # updates drawn but held by no weights: a restarted learner's loss
        # rows one update samples: updates due = samples due / rows (async only)
        self.rows = (agent_class(cfg).batch_spec_for(cfg).rows
                     if cfg.train.schedule == "async" else 0)

    def start(self, step: int, final: bool = False) -> None:
        """Evaluate the newest published weights, or (async, train.eval_max_lag >= 0, not
        final) hold the evaluation until they are at most eval_max_lag updates behind."""
        due = None
        if self.rows:
            due = ray.get(self.topo.replay.stats.remote())["samples_due"] / self.rows
        self.count += 1
        self.held = (step, due)
        self._launch_if_caught_up(final)

    def _launch_if_caught_up(self, final: bool = False) -> None:
        step, due = self.held
        newest = ray.get(self.topo.param_server.newest.remote())  # ((version, [ref]), updates)
        behind = None if due is None else due - self.lost - newest[1]
        lag = self.cfg.train.eval_max_lag
        if behind is not None and not final and lag >= 0 and behind > lag:
            return
        self.held = None
        t = self.cfg.train
        film = t.video_every > 0 and (final or (self.count - 1) % t.video_every == 0)
        if behind is not None:
            self.tb.scalars({"eval/updates_behind": behind}, step)
        self.pending = (self.topo.evaluator.evaluate.remote(
            t.eval_episodes, self.count, t.video_size if film else 0, newest[0]), step)

    @property
    def busy(self) -> bool:
        return self.pending is not None or self.held is not None

    def poll(self, block: bool = False, learner_idle: bool = False) -> None:
        """Start a held evaluation whose weights have come; log the running one if it
        finished (or wait for it: `block`). learner_idle: the learner has just finished a
        round and has no sample in flight, so the samples it drew that its weights lack are
        lost work (a restart), 0 otherwise."""
        if learner_idle and self.rows:
            stats, newest = ray.get([self.topo.replay.stats.remote(),
                                     self.topo.param_server.newest.remote()])
            self.lost = stats["samples_drawn"] / self.rows - newest[1]
        if self.held is not None:
            self._launch_if_caught_up()
        if self.pending is None:
            return
        ref, step = self.pending
        if not block and not ray.wait([ref], timeout=0)[0]:
            return
        self.pending = None
        result = ray.get(ref)
        self.last = float(np.mean(result["returns"]))
        successes = result["successes"]
        self.tb.scalars({"eval/episodic_return": self.last,
                         "eval/success": float(np.mean(successes)) if successes else None,
                         "eval/seconds": result.get("seconds")}, step)
        if "video" in result:
            gif, size = result["video"]
            self.tb.video("eval/video", gif, size, size, step)
        if "open_loop" in result:
            gif, height, width, error = result["open_loop"]
            self.tb.video("eval/open_loop", gif, height, width, step)
            self.tb.scalars({"eval/open_loop_error": error}, step)

    def final(self, step: int) -> float:
        """Finish the pending evaluation (a held one with the weights there are), then
        evaluate the final weights."""
        if self.held is not None:
            self._launch_if_caught_up(final=True)
        self.poll(block=True)
        self.start(step, final=True)
        self.poll(block=True)
        return self.last
