"""One `make_env(spec)` for every supported env, with the common contract:
flat float32 observations, actions rescaled to [-1, 1], the env's time limit kept, seeding."""
from __future__ import annotations

import difflib
import importlib.util

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RescaleAction, TimeLimit

from mbrl_ray.config.loading import ConfigError
from mbrl_ray.envs.dummy import PointMassEnv

DUMMY = "dummy"
DUMMY_EPISODE_STEPS = 50
# Suites whose spec is "<suite>:<task>" and the optional extra (and module) each needs.
SUITES = {"dmc": ("dmc", "dm_control"), "metaworld": ("metaworld", "metaworld")}


def check_env_spec(spec: str) -> None:
    """Raise ConfigError (key env.id) if `spec` cannot be built here; builds nothing."""
    if spec == DUMMY:
        return
    if ":" in spec:
        suite = spec.split(":", 1)[0]
        if suite not in SUITES:
            raise ConfigError(f"env.id={spec!r}: unknown suite {suite!r}; allowed: "
                              f"{', '.join(SUITES)} or a Gymnasium id")
        extra, module = SUITES[suite]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"env.id={spec!r} needs the optional extra '{extra}': "
                              f"pip install -c constraints.txt 'mbrl-ray[{extra}]'")
        raise ConfigError(f"env.id={spec!r}: the {suite} suite is not wired into make_env yet; "
                          "use a Gymnasium id or 'dummy'")
    if spec not in gym.registry:
        near = difflib.get_close_matches(spec, list(gym.registry), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise ConfigError(f"env.id={spec!r} is not a registered Gymnasium id nor 'dummy'{hint}")


class Float32Obs(gym.ObservationWrapper):
    """Flat float32 observations, whatever the env emits."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(
            space.low.astype(np.float32).ravel(), space.high.astype(np.float32).ravel(),
            dtype=np.float32)

    def observation(self, observation):
        return np.asarray(observation, np.float32).ravel()


def make_env(spec: str, seed: int | None = None, max_episode_steps: int = 0) -> gym.Env:
    """Build the env for `spec`, reset once with `seed` so that its RNG is seeded."""
    check_env_spec(spec)
    if spec == DUMMY:
        env: gym.Env = TimeLimit(PointMassEnv(), max_episode_steps or DUMMY_EPISODE_STEPS)
    else:
        kwargs = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
        env = gym.make(spec, **kwargs)
    ones = np.ones(env.action_space.shape, np.float32)
    env = Float32Obs(RescaleAction(env, -ones, ones))
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def env_dims(spec: str, max_episode_steps: int = 0) -> tuple[int, int]:
    """(obs_dim, act_dim) of a spec."""
    env = make_env(spec, seed=0, max_episode_steps=max_episode_steps)
    dims = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    return dims
