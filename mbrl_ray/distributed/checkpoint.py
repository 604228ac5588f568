"""Checkpoints of a run: learner state, replay contents, counters and RNG state, config."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

KEEP = 2  # newest checkpoints kept on disk


def checkpoint_root(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def new_checkpoint_dir(run_dir: Path, step: int) -> Path:
    path = checkpoint_root(run_dir) / f"step_{step:09d}.tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def commit(path: Path, counters: dict) -> Path:
    """Write counters, then atomically rename the .tmp folder; prune old checkpoints."""
    (path / "counters.json").write_text(json.dumps(counters, indent=1))
    final = path.with_suffix("")
    if final.exists():
        shutil.rmtree(final)
    path.rename(final)
    for old in sorted(checkpoint_root(path.parent.parent).glob("step_*"))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest(run_dir: Path) -> Path | None:
    done = [p for p in sorted(checkpoint_root(run_dir).glob("step_*")) if p.suffix != ".tmp"]
    return done[-1] if done else None


def read_counters(path: Path) -> dict:
    return json.loads((path / "counters.json").read_text())
