"""A run directory is a user's data: a new run never writes into one that holds a run, and a
run's files are read with errors that name the file. Light: no torch, no Ray."""
from __future__ import annotations

import fcntl
import os
import socket
import tempfile
from pathlib import Path
from typing import IO

import yaml

from mbrl_ray.config import Config, ConfigError, from_dict, to_dict

RUN_FILES = ("config.yaml", "result.json", "checkpoints", "tb")  # any of them marks a run
LOCK_FILE = ".lock"  # held by the one process that writes the run; empty when none does


def check_new_run_dir(run_dir: Path) -> None:
    """A new run may go into a missing or empty-of-runs directory, nowhere else."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {str(run_dir)!r} is a file, not a directory")
    held = [name for name in RUN_FILES if (run_dir / name).exists()]
    if held:
        raise ConfigError(f"--run-dir {str(run_dir)!r} already holds a run ({', '.join(held)}); "
                          f"continue it with `mbrl-ray resume {run_dir}` or choose another "
                          "directory")


def check_writable(run_dir: Path, what: str = "run dir",
                   instead: str = "choose another --run-dir") -> None:
    """The run dir (or any folder `what` names), or the nearest folder above it that exists,
    takes a new file (tried with an unnamed temporary file, gone when closed): asked, not assumed
    from permission bits, which root and read-only mounts both make misleading."""
    existing = Path(run_dir).absolute()
    while not existing.exists():
        existing = existing.parent
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as err:
        raise ConfigError(f"{what} {str(run_dir)!r} is not writable: no file can be created "
                          f"in {existing} ({err.strerror}); {instead}") from None


def load_run_config(run_dir: Path) -> Config:
    """The Config a run was started with (its config.yaml)."""
    if not run_dir.is_dir():
        what = "is a file" if run_dir.exists() else "does not exist"
        raise ConfigError(f"run dir {str(run_dir)!r} {what}: not a run directory")
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"run dir {str(run_dir)!r} has no config.yaml: not a run directory")
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid YAML: {err}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of config sections, not "
                          f"{type(raw).__name__}")
    try:
        return from_dict(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def save_config(cfg: Config, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))



class RunDirLock:
    """One writer per run directory: an exclusive flock on `<run_dir>/.lock`, held until
    `release` or until the holder's process dies (the OS drops it then: a killed run never
    leaves a stale lock). The holder's pid and host are written into the file while held, so
    that a refused second writer can name them."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file: IO[str] | None = open(self.path, "a+")  # noqa: SIM115 - held for the run
        except OSError as err:
            raise ConfigError(f"run dir {str(run_dir)!r} is not writable: {err.strerror}") from None
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise ConfigError(f"run dir {str(run_dir)!r} is in use by {holder}: one run writes "
                              "a run dir at a time; wait for it to end or stop it") from None
        self.file.truncate(0)
        self.file.write(f"pid {os.getpid()} on host {socket.gethostname()}\n")
        self.file.flush()

    def release(self) -> None:
        """Empty the holder line and unlock; safe to call twice."""
        if self.file is None:
            return
        self.file.truncate(0)
        self.file.close()  # closing the only descriptor drops the flock
        self.file = None
