"""Checkpoints of a run: learner state, replay contents, counters and RNG state.

A checkpoint is a folder `checkpoints/step_NNNNNNNNN` written as `.tmp` and renamed when
complete; its counters.json lists every file's size and SHA-256. A commit never renames or
replaces a committed folder: a second checkpoint at the same step (a resume that ends where it
began) takes the next free name `step_NNNNNNNNN_rK`, so no sequence of crashes can leave a name
taken or a step without a checkpoint. A resume verifies the bytes of the checkpoint it will use
and falls back to an older one when a file is missing, altered, non-finite or unreadable; the
broken folder is renamed `.broken` (or `.broken-K`), never deleted. Only the run dir's lock
holder (run_dir.RunDirLock) writes here, so a `.tmp` folder found is a dead writer's."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from pathlib import Path
from typing import Callable

KEEP = 2  # newest checkpoints kept on disk
FILES = ("learner.pt", "replay.npz")  # beside counters.json
NAME = re.compile(r"step_(\d{9})(?:_r(\d+))?")  # committed: no suffix
COUNTS = ("env_steps", "rounds", "evals", "resumes", "worker_restarts", "learner_restarts")
HASH_CHUNK = 1 << 20


def checkpoint_root(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def new_checkpoint_dir(run_dir: Path, step: int) -> Path:
    """An empty `.tmp` folder for the checkpoint of `step` (a dead writer's leftover of the same
    name is removed: it was never committed)."""
    path = checkpoint_root(run_dir) / f"step_{step:09d}.tmp"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def remove_leftovers(run_dir: Path) -> list[Path]:
    """Remove the `.tmp` folders of writers that died mid-checkpoint; returns them."""
    leftovers = sorted(checkpoint_root(run_dir).glob("step_*.tmp"))
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    return leftovers


def sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def commit(path: Path, counters: dict) -> Path:
    """Write counters (with the files' sizes and hashes), then atomically rename the .tmp
    folder to a name no committed checkpoint has; prune old committed checkpoints."""
    files = {name: {"bytes": (path / name).stat().st_size, "sha256": sha256(path / name)}
             for name in FILES}
    (path / "counters.json").write_text(json.dumps({**counters, "files": files}, indent=1))
    final = _free_committed_name(path.with_suffix(""))
    path.rename(final)
    for old in committed(path.parent.parent)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _free_committed_name(path: Path) -> Path:
    """`path` if no folder of its step exists, else the step's next revision: above every
    revision on disk (committed or set aside), so that the newest commit sorts last."""
    revisions = [_order(p)[1] for p in path.parent.iterdir()
                 if not p.name.endswith(".tmp") and NAME.match(p.name)
                 and NAME.match(p.name).group(1) == path.name[5:]]
    return path if not revisions else path.with_name(f"{path.name}_r{max(revisions) + 1}")


def _order(path: Path) -> tuple[int, int]:
    step, revision = NAME.match(path.name).groups()
    return int(step), int(revision or 0)


def committed(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (not .tmp, .broken or other suffixed folders)."""
    root = checkpoint_root(run_dir)
    found = [p for p in root.glob("step_*") if NAME.fullmatch(p.name) and p.is_dir()]
    return sorted(found, key=_order)


def latest(run_dir: Path) -> Path | None:
    done = committed(run_dir)
    return done[-1] if done else None


def read_counters(path: Path) -> dict:
    return json.loads((path / "counters.json").read_text())


def counters_problem(counters) -> str | None:
    """What counters.json lacks or holds wrongly, or None: the counts are integers >= 0 and the
    replay entry says how many env steps the archive holds."""
    if not isinstance(counters, dict):
        return f"holds {type(counters).__name__}, not a mapping"
    for key in COUNTS:
        if not _count(counters.get(key)):
            return f"{key} is {counters.get(key)!r}, not a count >= 0"
    replay = counters.get("replay")
    if not isinstance(replay, dict) or not _count(replay.get("steps")):
        return f"replay is {replay!r}, not a mapping with steps >= 0"
    files = counters.get("files")
    if not isinstance(files, dict) or set(files) != set(FILES):
        return f"files is {files!r}, not an entry for each of {', '.join(FILES)}"
    return None


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def problem(path: Path, load: Callable[[dict], None] | None = None) -> str | None:
    """What is wrong with a committed checkpoint (naming the file), or None when every file
    is there with the bytes written at commit, the archive's CRCs hold and the learner state
    loads, is finite and (given `load`, which loads it into an agent the run's config built)
    fits that agent: every tensor there, in its shape."""
    try:
        counters = read_counters(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"{path / 'counters.json'} is unreadable: {err}"
    wrong = counters_problem(counters)
    if wrong:
        return f"{path / 'counters.json'} is not valid: {wrong}"
    for name, written in counters["files"].items():
        found = _file_problem(path / name, written)
        if found:
            return found
    return _learner_problem(path / "learner.pt", load)


def _file_problem(file: Path, written) -> str | None:
    """Size and SHA-256 against what the commit wrote (a plain size: an older checkpoint,
    whose archive's CRCs are read instead)."""
    size, digest = (written, None) if isinstance(written, int) else (
        written.get("bytes"), written.get("sha256"))
    if not file.is_file() or file.stat().st_size != size:
        have = file.stat().st_size if file.is_file() else "missing"
        return f"{file} is truncated or replaced: {have} bytes, {size} written"
    if digest is not None:
        return None if sha256(file) == digest else (
            f"{file} is corrupt: its SHA-256 differs from the one written at commit")
    if file.suffix == ".npz":
        try:
            with zipfile.ZipFile(file) as archive:
                bad = archive.testzip()  # reads every member, checks its CRC
        except (OSError, zipfile.BadZipFile) as err:
            return f"{file} is unreadable: {err}"
        if bad is not None:
            return f"{file} is corrupt: bad CRC in {bad}"
    return None


def _learner_problem(file: Path, load: Callable[[dict], None] | None) -> str | None:
    import torch  # heavy: only when a resume checks its checkpoint

    from mbrl_ray.finite import first_nonfinite
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to load is the finding
        return f"{file} does not load: {type(err).__name__}: {str(err)[:200]}"
    if not isinstance(state, dict) or "agent" not in state:
        return f"{file} holds no learner state"
    bad = first_nonfinite(state["agent"])
    if bad is not None:
        return f"{file} holds a non-finite value in {bad}"
    if load is None:
        return None
    try:
        load(state["agent"])
    except Exception as err:  # noqa: BLE001 - any refusal is the finding
        text = " ".join(str(err).split())
        return f"{file} does not fit the run's config ({type(err).__name__}: {text[:300]})"
    return None


def choose(run_dir: Path, warn, check=problem) -> Path | None:
    """The newest checkpoint that passes `check` (default `problem`), each broken newer one
    reported by a warning naming the broken file; None when no checkpoint is usable. Reads
    only: nothing is renamed until `set_aside_broken`."""
    for path in reversed(committed(run_dir)):
        found = check(path)
        if found is None:
            return path
        warn(f"warning: checkpoint {path.name} is broken ({found}); trying the one before")
    return None


def set_aside_broken(run_dir: Path, chosen: Path | None) -> None:
    """Rename the committed checkpoints newer than `chosen` to .broken (nothing is deleted; a
    name already taken gets .broken-2, -3, ...); called once the run is sure to start from
    `chosen`."""
    newer = [p for p in committed(run_dir) if chosen is None or _order(p) > _order(chosen)]
    for path in newer:
        path.rename(_free_aside_name(path, ".broken"))


def _free_aside_name(path: Path, suffix: str) -> Path:
    aside, k = path.with_name(path.name + suffix), 1
    while aside.exists():
        k += 1
        aside = path.with_name(f"{path.name}{suffix}-{k}")
    return aside
