"""What an agent and the replay need to know of an env: observation shape and dtype, action dim."""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np


@dataclass(frozen=True)
class EnvSpec:
    """obs_shape: (D,) for state vectors (float32), (3, S, S) for pixels (uint8)."""
    obs_shape: tuple[int, ...]
    obs_dtype: str
    act_dim: int

    @property
    def kind(self) -> str:
        """'pixels' for uint8 frames, 'state' for flat float vectors."""
        return "pixels" if self.obs_dtype == "uint8" else "state"

    @property
    def obs_dim(self) -> int:
        """Flat size of one observation (what a state model's input layer takes)."""
        return prod(self.obs_shape)

    @property
    def np_obs_dtype(self) -> np.dtype:
        return np.dtype(self.obs_dtype)

    @classmethod
    def from_env(cls, env) -> "EnvSpec":
        space = env.observation_space
        return cls(tuple(int(d) for d in space.shape), np.dtype(space.dtype).name,
                   int(env.action_space.shape[0]))

    @classmethod
    def state(cls, obs_dim: int, act_dim: int) -> "EnvSpec":
        """A state-vector spec (tests and benches build these without an env)."""
        return cls((obs_dim,), "float32", act_dim)
