"""A run's result.json: what a finished or stopped run reports, written however full the disk
got (room for it is reserved when the run starts), beside any earlier attempt's."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

RESULT_RESERVE = ".result-reserve"  # a placeholder that keeps room for result.json
RESERVE_BYTES = 8192  # result.json is a few hundred bytes; filesystems allocate in 4 KiB blocks


@dataclass
class RunResult:
    run_dir: Path
    env_steps: int
    final_eval_return: float
    worker_restarts: int
    learner_restarts: int = 0


def reserve_room(run_dir: Path) -> None:
    """Room for result.json however full the disk gets (freed just before it is written)."""
    (run_dir / RESULT_RESERVE).write_bytes(bytes(RESERVE_BYTES))


def free_name(folder: Path, pattern: str) -> Path:
    k = 1
    while (folder / pattern.format(k)).exists():
        k += 1
    return folder / pattern.format(k)


def write_result(result: RunResult, nodes: dict, stopped: str | None) -> None:
    """result.json, always valid JSON (a non-finite number is written as null)."""
    final = result.final_eval_return
    body = {"env_steps": result.env_steps,
            "final_eval_return": final if final is not None and math.isfinite(final)
            else None,
            "worker_restarts": result.worker_restarts,
            "learner_restarts": result.learner_restarts, "worker_nodes": nodes,
            "stopped": stopped}
    run_dir = result.run_dir
    (run_dir / RESULT_RESERVE).unlink(missing_ok=True)
    path = run_dir / "result.json"
    if path.exists():  # an earlier attempt's result (a resumed run's) is kept beside
        path.rename(free_name(run_dir, "result-{}.json"))
    path.write_text(json.dumps(body, allow_nan=False))
