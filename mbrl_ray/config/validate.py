"""Range and consistency checks of a Config, run before any actor starts."""
from __future__ import annotations

import re

from mbrl_ray.config.loading import ConfigError, iter_fields
from mbrl_ray.config.schema import Config
from mbrl_ray.seeding import MAX_SEED

# Keys that count things: they must be >= 1.
POSITIVE = {
    "model.ensemble_size", "model.num_elites", "model.hidden_size", "model.num_layers",
    "model.batch_size", "model.patience", "model.max_epochs", "model.particles",
    "planner.horizon", "planner.population", "planner.num_elites", "planner.iterations",
    "workers.num", "workers.envs_per_worker", "train.steps", "train.steps_per_round",
    "train.updates_per_round", "train.replay_capacity", "train.eval_episodes",
    "train.checkpoint_every", "env.action_repeat", "env.image_size", "train.video_size",
    "sac.hidden_size", "sac.num_layers", "sac.batch_size", "sac.updates_per_fit",
    "mbpo.rollouts_per_step", "mbpo.rollout_length_start", "mbpo.rollout_length_end",
    "mbpo.updates_per_step", "mbpo.retain_steps",
}
NON_NEGATIVE = {
    "env.max_episode_steps", "workers.max_restarts", "workers.num_cpus", "learner.num_cpus",
    "learner.num_gpus", "train.random_steps", "train.eval_every", "train.spi_error_buffer",
    "ray.num_cpus", "planner.info_weight",
    "ray.resource_wait_s", "train.video_every", "planner.noise_beta", "planner.value_weight",
    "planner.prior_samples", "sac.consolidation", "mbpo.schedule_start_steps",
    "mbpo.schedule_end_steps",
}
OPEN_UNIT = {"model.holdout": (0.0, 1.0), "sac.tau": (0.0, 1.0)}
CLOSED_UNIT = {"mbpo.real_ratio": (0.0, 1.0), "planner.alpha": (0.0, 1.0), "planner.discount": (0.0, 1.0),
               "planner.keep_elites": (0.0, 1.0), "sac.gamma": (0.0, 1.0)}
DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


def validate(cfg: Config) -> Config:
    """Raise ConfigError for the first value outside its allowed range; return cfg otherwise."""
    for key, value, _help, choices in iter_fields(cfg):
        if choices and value not in choices:
            raise ConfigError(f"{key}={value!r} is not allowed; choose one of {', '.join(choices)}")
        if key in POSITIVE and value < 1:
            raise ConfigError(f"{key}={value!r} must be a positive count (>= 1)")
        if key in NON_NEGATIVE and value < 0:
            raise ConfigError(f"{key}={value!r} must be >= 0")
        if key in OPEN_UNIT and not OPEN_UNIT[key][0] < value < OPEN_UNIT[key][1]:
            raise ConfigError(f"{key}={value!r} must lie strictly between 0 and 1")
        if key in CLOSED_UNIT and not CLOSED_UNIT[key][0] <= value <= CLOSED_UNIT[key][1]:
            raise ConfigError(f"{key}={value!r} must lie in [0, 1]")
    _check_relations(cfg)
    return cfg


def _check_relations(cfg: Config) -> None:
    if cfg.model.num_elites > cfg.model.ensemble_size:
        raise ConfigError(f"model.num_elites={cfg.model.num_elites} exceeds "
                          f"model.ensemble_size={cfg.model.ensemble_size}")
    if cfg.planner.num_elites > cfg.planner.population:
        raise ConfigError(f"planner.num_elites={cfg.planner.num_elites} exceeds "
                          f"planner.population={cfg.planner.population}")
    if cfg.train.samples_per_insert <= 0:
        raise ConfigError(f"train.samples_per_insert={cfg.train.samples_per_insert!r} must be > 0")
    for key, value in (("sac.lr", cfg.sac.lr), ("sac.init_alpha", cfg.sac.init_alpha)):
        if value <= 0:
            raise ConfigError(f"{key}={value!r} must be > 0")
    if not 0 <= cfg.train.seed <= MAX_SEED:
        raise ConfigError(f"train.seed={cfg.train.seed!r} must lie in 0 .. {MAX_SEED}")
    p = cfg.planner
    if p.posterior == "lst" and p.name not in ("cem", "smcp"):
        raise ConfigError(f"planner.posterior='lst' needs planner.name cem or smcp, "
                          f"not {p.name!r}")
    if p.population_decay < 1:
        raise ConfigError(f"planner.population_decay={p.population_decay!r} must be >= 1")
    if p.temperature <= 0:
        raise ConfigError(f"planner.temperature={p.temperature!r} must be > 0")
    if not 0 < p.min_std <= p.max_std:
        raise ConfigError(f"planner.min_std={p.min_std!r} and planner.max_std={p.max_std!r} "
                          "must satisfy 0 < min_std <= max_std")
    for key, value in (("learner.device", cfg.learner.device),
                       ("workers.device", cfg.workers.device)):
        if not DEVICE.match(value):
            raise ConfigError(f"{key}={value!r} is not a device; allowed: auto, cpu, cuda, cuda:N, mps")
