"""A tiny point-mass env with a known optimal policy, for fast tests of the whole stack."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

STEP = 0.2    # how far one full action moves the point
BOUND = 2.0   # leaving the box [-BOUND, BOUND]^2 terminates the episode


class PointMassEnv(gym.Env):
    """Move a point in the plane to the origin.

    obs: position (2,), float32; action in [-1, 1]^2; x' = x + STEP * a.
    reward: 1 - |x'| per step; terminated when the point leaves the box.
    The optimal policy is `optimal_action(x) = clip(-x / STEP, -1, 1)`.
    """

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-BOUND, BOUND, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._x = np.zeros(2, np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._x = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        return self._x.copy(), {}

    def step(self, action):
        a = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
        self._x = (self._x + STEP * a).astype(np.float32)
        terminated = bool(np.any(np.abs(self._x) >= BOUND))
        reward = float(1.0 - np.linalg.norm(self._x))
        return self._x.copy(), reward, terminated, False, {}


def optimal_action(obs: np.ndarray) -> np.ndarray:
    """The policy that moves straight to the origin as fast as actions allow."""
    return np.clip(-np.asarray(obs) / STEP, -1.0, 1.0).astype(np.float32)
