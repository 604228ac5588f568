"""One `make_env(spec)` for every suite, with the common contract: actions in [-1, 1], flat
float32 observations (or uint8 (3, S, S) frames with pixels=True), the suite's time limit kept
as truncation, action repeat, deterministic seeding, `env.render()` when render_size > 0."""
from __future__ import annotations

import gymnasium as gym
from gymnasium.wrappers import TimeLimit

from mbrl_ray.config.loading import ConfigError
from mbrl_ray.envs.conditions import FixedStarts
from mbrl_ray.envs.dummy import PointMassEnv
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.envs.specs import DUMMY, check_env_spec, split_spec
from mbrl_ray.envs.wrappers import ActionRepeat, MujocoFrames, PixelObs, UnitContract

DUMMY_EPISODE_STEPS = 50


def base_env(spec: str, seed: int | None = None, max_episode_steps: int = 0,
             render_size: int = 0) -> gym.Env:
    """The suite's own env, before our contract wrappers (what bench/env_bench.py calls raw);
    `render()` gives (render_size, render_size, 3) frames when render_size > 0."""
    suite, task = split_spec(spec)
    if suite == "dmc":
        from mbrl_ray.envs.dmc import DMCEnv
        return DMCEnv(task, seed, max_episode_steps, render_size)
    if spec == DUMMY:
        return TimeLimit(PointMassEnv(render_size), max_episode_steps or DUMMY_EPISODE_STEPS)
    if suite == "metaworld":
        from mbrl_ray.envs.metaworld_env import make_metaworld
        env = make_metaworld(task, seed, max_episode_steps)
    else:
        env = gym.make(spec, **({"max_episode_steps": max_episode_steps}
                                if max_episode_steps else {}))
    if not render_size:
        return env
    if not hasattr(env.unwrapped, "model"):
        raise ConfigError(f"env.id={spec!r}: frames (env.obs=pixels, train.video_every) are "
                          "rendered for MuJoCo-based envs only")
    return MujocoFrames(env, render_size)


def make_env(spec: str, seed: int | None = None, max_episode_steps: int = 0,
             action_repeat: int = 1, pixels: bool = False, image_size: int = 64,
             render_size: int = 0, conditions: int = 0, condition_seed: int = 0) -> gym.Env:
    """Build the env for `spec` and reset it once with `seed` so that its RNG is seeded.

    max_episode_steps: the suite's own steps (before action repeat); 0 keeps its limit.
    pixels: observations are the rendered (3, image_size, image_size) uint8 frame.
    render_size: > 0 makes `env.render()` return (render_size, render_size, 3) frames (videos;
    with pixels=True frames are image_size).
    conditions: > 0 starts every episode from one of that many fixed states (envs/conditions.py)."""
    check_env_spec(spec, max_episode_steps)
    size = image_size if pixels else render_size
    env = UnitContract(base_env(spec, seed, max_episode_steps, size), flat_obs=not pixels)
    if action_repeat > 1:
        env = ActionRepeat(env, action_repeat)
    if pixels:
        env = PixelObs(env, image_size)
    if conditions:
        env = FixedStarts(env, conditions, condition_seed)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def env_kwargs(env_cfg) -> dict:
    """make_env's keyword arguments from the config's `env` section."""
    return {"max_episode_steps": env_cfg.max_episode_steps,
            "action_repeat": env_cfg.action_repeat, "pixels": env_cfg.obs == "pixels",
            "image_size": env_cfg.image_size, "conditions": env_cfg.conditions,
            "condition_seed": env_cfg.condition_seed}


def env_spec(spec: str, **kwargs) -> EnvSpec:
    """The EnvSpec (observation shape and dtype, action dim) of `spec` built with make_env's
    kwargs."""
    env = make_env(spec, seed=0, **kwargs)
    try:
        return EnvSpec.from_env(env)
    finally:
        env.close()
