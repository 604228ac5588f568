"""Meta-World v3 tasks through Meta-World's own Gymnasium registration (`Meta-World/MT1`)."""
from __future__ import annotations

import gymnasium as gym
import metaworld  # noqa: F401  (registers the Meta-World/* ids)

from mbrl_ray.envs.specs import metaworld_name


def make_metaworld(task: str, seed: int | None, max_episode_steps: int = 0) -> gym.Env:
    """One MT1 env: its 50 goal variations drawn per reset from `seed`; truncated after 500
    steps (or `max_episode_steps`); `info['success']` on every step. make_env films it from a
    free camera on the scene, an upright view (Meta-World 3's corner cameras are flipped)."""
    kwargs = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
    return gym.make("Meta-World/MT1", env_name=metaworld_name(task), seed=seed, **kwargs)
