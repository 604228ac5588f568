"""Checkpoints of a run: learner state, replay contents, counters and RNG state.

A checkpoint is a folder `checkpoints/step_NNNNNNNNN` written as `.tmp` and renamed when
complete; its counters.json lists every file's size. A resume verifies the checkpoint it will
use and falls back to an older one when a file is missing, truncated or unreadable; the broken
folder is renamed `.broken`, never deleted."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

KEEP = 2  # newest checkpoints kept on disk
FILES = ("learner.pt", "replay.npz")  # beside counters.json
COUNTER_KEYS = ("env_steps", "replay")


def checkpoint_root(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def new_checkpoint_dir(run_dir: Path, step: int) -> Path:
    path = checkpoint_root(run_dir) / f"step_{step:09d}.tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def commit(path: Path, counters: dict) -> Path:
    """Write counters (with the files' sizes), then atomically rename the .tmp folder; prune
    old committed checkpoints."""
    sizes = {name: (path / name).stat().st_size for name in FILES}
    (path / "counters.json").write_text(json.dumps({**counters, "files": sizes}, indent=1))
    final = path.with_suffix("")
    if final.exists():  # a re-run of the same step after a fallback: keep the old one aside
        final.rename(final.with_suffix(".replaced"))
    path.rename(final)
    for old in committed(path.parent.parent)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def committed(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (not .tmp, .broken or .replaced folders)."""
    return [p for p in sorted(checkpoint_root(run_dir).glob("step_*"))
            if p.is_dir() and not p.suffix]


def latest(run_dir: Path) -> Path | None:
    done = committed(run_dir)
    return done[-1] if done else None


def read_counters(path: Path) -> dict:
    return json.loads((path / "counters.json").read_text())


def problem(path: Path) -> str | None:
    """What is wrong with a committed checkpoint (naming the file), or None when every file
    is there, complete, and loads."""
    try:
        counters = read_counters(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"{path / 'counters.json'} is unreadable: {err}"
    if not isinstance(counters, dict) or any(k not in counters for k in COUNTER_KEYS):
        return f"{path / 'counters.json'} lacks {', '.join(COUNTER_KEYS)}"
    for name, size in counters.get("files", {}).items():
        file = path / name
        if not file.is_file() or file.stat().st_size != size:
            have = file.stat().st_size if file.is_file() else "missing"
            return f"{file} is truncated or replaced: {have} bytes, {size} written"
    try:
        with zipfile.ZipFile(path / "replay.npz") as archive:
            archive.namelist()  # the central directory at the end: a cut file has none
    except (OSError, zipfile.BadZipFile) as err:
        return f"{path / 'replay.npz'} is unreadable: {err}"
    return _learner_problem(path / "learner.pt")


def _learner_problem(file: Path) -> str | None:
    import torch  # heavy: only when a resume checks its checkpoint
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to load is the finding
        return f"{file} does not load: {type(err).__name__}: {str(err)[:200]}"
    if not isinstance(state, dict) or "agent" not in state:
        return f"{file} holds no learner state"
    return None


def choose(run_dir: Path, warn) -> Path | None:
    """The newest checkpoint that passes `problem`; each broken newer one is renamed .broken
    (kept) with a warning naming the broken file. None when no checkpoint is usable."""
    for path in reversed(committed(run_dir)):
        found = problem(path)
        if found is None:
            return path
        warn(f"warning: checkpoint {path.name} is broken ({found}); trying the one before")
    return None


def set_aside_broken(run_dir: Path, chosen: Path | None) -> None:
    """Rename the committed checkpoints newer than `chosen` to .broken (nothing is deleted);
    called once the run is sure to start from `chosen`."""
    for path in committed(run_dir):
        if chosen is None or path.name > chosen.name:
            path.rename(path.with_suffix(".broken"))
