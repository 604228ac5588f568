"""Range and consistency checks of a Config, run before any actor starts (and before torch and
Ray are imported: this module and its imports stay light)."""
from __future__ import annotations

import math
import re
import sys

from mbrl_ray.config.loading import ConfigError, iter_field_metadata
from mbrl_ray.config.machine import (check_ray_address, is_local_run, local_cpu_count,
                                     local_gpu_count)
from mbrl_ray.config.schema import BOUNDS, Config

MAX_SEED = 2**31 - 1  # seeding.py's offsets keep every derived seed below 2**32

WITHIN = {"count": lambda v: v >= 1, ">= 0": lambda v: v >= 0, "> 0": lambda v: v > 0,
          "(0, 1)": lambda v: 0 < v < 1, "[0, 1]": lambda v: 0 <= v <= 1}  # schema.BOUNDS
MAX_CODEBOOK = 2**16  # FSQ's largest codebook in its paper; the planner holds one row each
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
    """The value against its field's choices, bound and upper (config/schema.py)."""
    choices, bound, upper = meta.get("choices"), meta.get("bound"), meta.get("upper")
    if choices and value not in choices:
        raise ConfigError(f"{key}={value!r} is not allowed; choose one of {', '.join(choices)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}={value!r} must be a finite number")
    if bound and not WITHIN[bound](value):
        raise ConfigError(f"{key}={value!r} must {BOUNDS[bound]}")
    if upper is not None and value > upper:
        raise ConfigError(f"{key}={value!r} exceeds {upper:,}, the most any run can mean "
                          "(config/schema.py)")


def _check_relations(cfg: Config) -> None:
    if cfg.model.num_elites > cfg.model.ensemble_size:
        raise ConfigError(f"model.num_elites={cfg.model.num_elites} exceeds "
                          f"model.ensemble_size={cfg.model.ensemble_size}")
    p = cfg.planner
    if p.num_elites > p.population:
        raise ConfigError(f"planner.num_elites={p.num_elites} exceeds "
                          f"planner.population={p.population}")
    if p.name in ("cem", "icem", "mppi") and p.num_elites < 2:
        raise ConfigError(f"planner.num_elites={p.num_elites} leaves the {p.name} refit's "
                          "standard deviation undefined; use at least 2")
    if not 0 <= cfg.train.seed <= MAX_SEED:
        raise ConfigError(f"train.seed={cfg.train.seed!r} must lie in 0 .. {MAX_SEED}")
    if p.posterior == "lst" and p.name not in ("cem", "smcp"):
        raise ConfigError(f"planner.posterior='lst' needs planner.name cem or smcp, "
                          f"not {p.name!r}")
    if p.sweeps > 1 and (p.name, p.posterior) != ("smcp", "lst"):
        raise ConfigError(f"planner.sweeps={p.sweeps} needs planner.name=smcp with "
                          f"planner.posterior=lst, not {p.name!r} with {p.posterior!r}; "
                          "other planners iterate by planner.iterations")
    _check_action_prior(cfg)
    _check_dcmpc(cfg)
    _check_rssm(cfg)
    if p.population_decay < 1:
        raise ConfigError(f"planner.population_decay={p.population_decay!r} must be >= 1")
    if not 0 < p.min_std <= p.max_std:
        raise ConfigError(f"planner.min_std={p.min_std!r} and planner.max_std={p.max_std!r} "
                          "must satisfy 0 < min_std <= max_std")


def _check_action_prior(cfg: Config) -> None:
    p = cfg.planner
    if p.prior_weight > 0 and p.name not in ("cem", "icem", "mppi"):
        raise ConfigError(f"planner.prior_weight={p.prior_weight} needs a Gaussian sampler "
                          f"(planner.name cem, icem or mppi), not {p.name!r}")
    if p.prior_weight > 0 and cfg.agent.name != "pets":
        raise ConfigError(f"planner.prior_weight={p.prior_weight} needs agent.name=pets (a "
                          f"stochastic action prior), not {cfg.agent.name!r}")
    if p.prior_init and p.prior_samples < 2:
        raise ConfigError(f"planner.prior_init=true fits a Gaussian to the prior's sequences: "
                          f"planner.prior_samples={p.prior_samples} must be at least 2")


def _check_dcmpc(cfg: Config) -> None:
    c = cfg.dcmpc
    if not c.fsq_levels or any(level < 2 for level in c.fsq_levels):
        raise ConfigError(f"dcmpc.fsq_levels={c.fsq_levels!r}: give one or more levels, each "
                          ">= 2 (the paper: [5, 3])")
    codebook = math.prod(c.fsq_levels)
    if codebook > MAX_CODEBOOK:
        raise ConfigError(f"dcmpc.fsq_levels={c.fsq_levels!r} make a codebook of {codebook:,} "
                          f"codes per slot, above {MAX_CODEBOOK:,} (the paper: [5, 3], 15 codes)")
    if c.num_q < 2:
        raise ConfigError(f"dcmpc.num_q={c.num_q!r}: the targets take the min of 2 Q networks "
                          "drawn at random; use at least 2 (the paper: 5)")
    if c.nstep > c.horizon:
        raise ConfigError(f"dcmpc.nstep={c.nstep} exceeds dcmpc.horizon={c.horizon}: the "
                          "n-step target lies inside the sampled sequences of horizon + 1 rows")
    if cfg.agent.name == "dcmpc" and (cfg.planner.name == "smcp"
                                      or cfg.planner.posterior != "mpc"):
        raise ConfigError(f"agent.name='dcmpc' plans with a sequence planner (mppi as the "
                          f"paper, cem, icem, rs) and planner.posterior='mpc', not "
                          f"planner.name={cfg.planner.name!r} with "
                          f"planner.posterior={cfg.planner.posterior!r}")


def _check_rssm(cfg: Config) -> None:
    r = cfg.rssm
    if not 0 <= r.kl_balance < 1:
        raise ConfigError(f"rssm.kl_balance={r.kl_balance!r} must lie in [0, 1): 0 for the "
                          "plain KL, DreamerV2's 0.8 for balancing")
    if (cfg.agent.name in ("planet", "dreamer") and cfg.env.obs == "pixels"
            and cfg.env.image_size % 2 ** r.cnn_layers):
        raise ConfigError(
            f"env.image_size={cfg.env.image_size} cannot pass rssm.cnn_layers={r.cnn_layers} "
            f"conv layers of stride 2: the size must be a multiple of {2 ** r.cnn_layers} "
            "(64 as the papers)")
    p = cfg.planner
    if cfg.agent.name == "planet" and (p.name == "smcp" or p.posterior != "mpc"
                                       or p.prior_samples or p.value_weight):
        raise ConfigError(f"agent.name='planet' plans with a sequence planner (cem as the "
                          f"paper, icem, mppi, rs), planner.posterior='mpc' and no prior or "
                          f"value, not planner.name={p.name!r}, planner.posterior="
                          f"{p.posterior!r}, planner.prior_samples={p.prior_samples}, "
                          f"planner.value_weight={p.value_weight:g}")


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
