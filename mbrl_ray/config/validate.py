"""Range and consistency checks of a Config, run before any actor starts (and before torch and
Ray are imported: this module and its imports stay light)."""
from __future__ import annotations

import dataclasses
import math
import re
import sys

from mbrl_ray.config.loading import ConfigError, iter_field_metadata
from mbrl_ray.config.machine import (check_ray_address, is_local_run, local_cpu_count,
                                     local_gpu_count)
from mbrl_ray.config.fields import BOUNDS
from mbrl_ray.config.schema import Config

DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:(\d+)|mps)$")
# Gymnasium's id grammar ([namespace/]name[-vN]); a suite's id is 'suite:task'.
ENV_ID = re.compile(r"^(?:[\w.-]+/)?[\w.-]+(?:-v\d+)?$|^[\w.-]+:.+$")


def validate(cfg: Config) -> Config:
    """Raise ConfigError for the first value outside its allowed range; return cfg otherwise.
    Depends on the config alone (presets validate anywhere); `check_machine` adds this
    machine's devices."""
    for key, value, meta in iter_field_metadata(cfg):
        _check_value(key, value, meta)
    _check_relations(cfg)
    _check_device_names(cfg)
    _check_env_id(cfg.env.id)
    return cfg


def _check_env_id(env_id: str) -> None:
    """The id's form only (whether it names a registered env is checked where the simulators
    load: envs.check_env_spec)."""
    if not ENV_ID.match(env_id):
        raise ConfigError(f"env.id={env_id!r} is neither a Gymnasium id (Name-vN), "
                          "'dmc:<domain>-<task>', 'metaworld:<task>' nor 'dummy'")


def _check_value(key: str, value, meta) -> None:
    """The value against its field's choices, bound and upper (config/fields.py: doc)."""
    choices, bound, upper = meta.get("choices"), meta.get("bound"), meta.get("upper")
    if choices and value not in choices:
        raise ConfigError(f"{key}={value!r} is not allowed; choose one of {', '.join(choices)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}={value!r} must be a finite number")
    if bound:
        words, within = BOUNDS[bound]
        if not within(value):
            raise ConfigError(f"{key}={value!r} must {words}")
    if upper is not None and value > upper:
        raise ConfigError(f"{key}={value!r} exceeds {upper:,}, the most any run can mean "
                          "(the field's upper in config/)")


def _check_relations(cfg: Config) -> None:
    """Each section's cross-key rules (its `check`), in schema order."""
    for section in dataclasses.fields(cfg):
        check = getattr(getattr(cfg, section.name), "check", None)
        if check is not None:
            check(cfg)


def _check_device_names(cfg: Config) -> None:
    for key, value in (("learner.device", cfg.learner.device),
                       ("workers.device", cfg.workers.device)):
        if not DEVICE.match(value):
            raise ConfigError(f"{key}={value!r} is not a device; allowed: auto, cpu, cuda, "
                              "cuda:N, mps")
        if value == "mps" and sys.platform != "darwin":
            raise ConfigError(f"{key}='mps' needs Apple silicon (macOS); use cpu or auto")


def check_machine(cfg: Config, ray_running: bool = False) -> Config:
    """A local run's devices exist on this machine (a cluster's GPUs, and those of a Ray this
    process already joined (`ray_running`), are checked once Ray is up:
    topology.check_resources)."""
    check_ray_address(cfg.ray.address)
    if ray_running or not is_local_run(cfg.ray.address):
        return cfg
    gpus = local_gpu_count()
    for key, value in (("learner.device", cfg.learner.device),
                       ("workers.device", cfg.workers.device)):
        match = DEVICE.match(value)
        if value.startswith("cuda") and int(match.group(2) or 0) >= gpus:
            raise ConfigError(f"{key}={value!r} but this machine has {gpus} CUDA GPU(s) "
                              "(a local run); use auto or cpu, or a cluster's ray.address")
    if cfg.learner.num_gpus > gpus:
        raise ConfigError(f"learner.num_gpus={cfg.learner.num_gpus:g} but this machine has "
                          f"{gpus} CUDA GPU(s) (a local run); set learner.num_gpus=0")
    _check_local_cpus(cfg)
    return cfg


def _check_local_cpus(cfg: Config) -> None:
    """The actors' CPUs fit the local Ray this run starts (ray.num_cpus, else this machine's
    CPUs), so that the answer comes before Ray starts. An autoscaling wait is the cluster's."""
    w, lr = cfg.workers, cfg.learner
    need = w.num * w.num_cpus + lr.num_cpus
    have = cfg.ray.num_cpus or local_cpu_count()
    if need > have and not cfg.ray.resource_wait_s:
        raise ConfigError(f"workers.num x workers.num_cpus + learner.num_cpus = {need:g} CPUs, "
                          f"but the local Ray has {have} ("
                          + ("ray.num_cpus" if cfg.ray.num_cpus else "this machine's CPUs")
                          + "); lower them, or join a cluster with ray.address")
