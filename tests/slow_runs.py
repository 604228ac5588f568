"""Helpers of the slow learning tier: a preset run on several fixed seeds, and timeouts sized
from a run's own step budget (not from one machine's wall time)."""
from __future__ import annotations

import time
from pathlib import Path

from mbrl_ray.config import apply_overrides, load_preset

SEEDS = (0, 1, 2)
HEADROOM = 3.0      # x the seconds per step measured on a 2-core machine
START_S = 120.0     # per run: actors, env and Ray start-up


def timeout_s(steps: int, seconds_per_step: float, runs: int = len(SEEDS)) -> int:
    """A pytest timeout for `runs` runs of `steps` env steps each."""
    return int(runs * (steps * seconds_per_step * HEADROOM + START_S))


def run_seed(preset: str, seed: int, tmp_path: Path, overrides: tuple[str, ...] = ()):
    """One run of the preset (with `overrides`) on `seed` through the real topology -> its
    RunResult."""
    from mbrl_ray.distributed.driver import Driver

    cfg = apply_overrides(load_preset(preset), [f"train.seed={seed}", *overrides])
    start = time.monotonic()
    result = Driver(cfg, tmp_path / f"{preset}-seed{seed}", printer=lambda *a, **k: None).run()
    # Per-seed evidence for the closing notes (shown with `pytest -rA` or `-s`).
    print(f"{preset} seed {seed}: final eval return {result.final_eval_return}, "
          f"{result.env_steps} env steps in {time.monotonic() - start:.0f} s")
    assert result.env_steps == cfg.train.steps
    return result


def final_returns(preset: str, tmp_path: Path, seeds=SEEDS) -> list[float]:
    """The preset's final evaluation return on each seed, through the real topology."""
    return [run_seed(preset, seed, tmp_path).final_eval_return for seed in seeds]


def eval_histories(preset: str, tmp_path: Path, seeds=SEEDS) -> list[list[float]]:
    """Each seed's evaluation returns in order (TensorBoard's eval/episodic_return)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    histories = []
    for seed in seeds:
        acc = EventAccumulator(str(run_seed(preset, seed, tmp_path).run_dir / "tb"))
        acc.Reload()
        points = [(e.step, e.value) for e in acc.Scalars("eval/episodic_return")]
        print(preset, "seed", seed, points)
        histories.append([value for _, value in points])
    return histories
