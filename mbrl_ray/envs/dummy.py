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

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_size: int = 0) -> None:
        self.render_size = render_size
        self.render_mode = "rgb_array" if render_size else None
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

    def render(self) -> np.ndarray:
        """The box seen from above: grey field, white origin, red point (HxWx3 uint8)."""
        size = self.render_size or 64
        frame = np.full((size, size, 3), 40, np.uint8)
        centre = size // 2
        frame[centre, centre] = 255
        row, col = (np.clip((self._x / BOUND + 1) / 2, 0, 1) * (size - 1)).astype(int)
        frame[max(row - 1, 0):row + 2, max(col - 1, 0):col + 2] = (220, 30, 30)
        return frame


def optimal_action(obs: np.ndarray) -> np.ndarray:
    """The policy that moves straight to the origin as fast as actions allow."""
    return np.clip(-np.asarray(obs) / STEP, -1.0, 1.0).astype(np.float32)
