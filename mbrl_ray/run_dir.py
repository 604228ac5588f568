"""A run directory is a user's data: a new run never writes into one that holds a run, and a
run's files are read with errors that name the file. Light: no torch, no Ray."""
from __future__ import annotations

from pathlib import Path

import yaml

from mbrl_ray.config import Config, ConfigError, from_dict, to_dict

RUN_FILES = ("config.yaml", "result.json", "checkpoints", "tb")  # any of them marks a run


def check_new_run_dir(run_dir: Path) -> None:
    """A new run may go into a missing or empty-of-runs directory, nowhere else."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {str(run_dir)!r} is a file, not a directory")
    held = [name for name in RUN_FILES if (run_dir / name).exists()]
    if held:
        raise ConfigError(f"--run-dir {str(run_dir)!r} already holds a run ({', '.join(held)}); "
                          f"continue it with `mbrl-ray resume {run_dir}` or choose another "
                          "directory")


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

