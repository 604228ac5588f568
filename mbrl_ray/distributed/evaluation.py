"""Evaluations of a run on the evaluator actor, beside training: one in flight at a time, each
with the weights published when it started, its results logged at the step it started (with
train.eval_wait the driver waits for each, so none is skipped)."""
from __future__ import annotations

import numpy as np
import ray

from mbrl_ray.telemetry import TBLogger


class Evaluations:
    def __init__(self, cfg, topo, tb: TBLogger, done_so_far: int) -> None:
        self.cfg, self.topo, self.tb = cfg, topo, tb
        self.count = done_so_far
        self.pending: tuple | None = None  # (ref, step)
        self.last: float | None = None

    def start(self, step: int, final: bool = False) -> None:
        """Evaluate the newest published weights; film every train.video_every-th evaluation
        and the final one."""
        t = self.cfg.train
        self.count += 1
        film = t.video_every > 0 and (final or (self.count - 1) % t.video_every == 0)
        weights = ray.get(self.topo.param_server.current.remote())
        self.pending = (self.topo.evaluator.evaluate.remote(
            t.eval_episodes, self.count,
            t.video_size if film else 0, weights), step)

    @property
    def busy(self) -> bool:
        return self.pending is not None

    def poll(self, block: bool = False) -> None:
        """Log the pending evaluation if it finished (or wait for it)."""
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
                         "eval/success": float(np.mean(successes)) if successes else None}, step)
        if "video" in result:
            gif, size = result["video"]
            self.tb.video("eval/video", gif, size, size, step)
        if "open_loop" in result:
            gif, height, width, error = result["open_loop"]
            self.tb.video("eval/open_loop", gif, height, width, step)
            self.tb.scalars({"eval/open_loop_error": error}, step)

    def final(self, step: int) -> float:
        """Finish the pending evaluation, then evaluate the final weights."""
        self.poll(block=True)
        self.start(step, final=True)
        self.poll(block=True)
        return self.last
