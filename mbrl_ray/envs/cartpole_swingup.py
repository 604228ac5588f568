"""Cart-pole swing-up as PILCO's papers pose it (Deisenroth & Rasmussen 2011; Deisenroth, Fox &
Rasmussen 2015; the parameters of their public code's cart-pole scenario): a uniform pole of
length 0.5 m and mass 0.5 kg on a 0.5 kg cart with friction 0.1 N s/m, g = 9.82, force in
[-10, 10] N held for 0.1 s, 25 steps (2.5 s) per trial, the pole hanging down at the start.

Observation (float32): cart position x, cart velocity, pole angular velocity, pole angle theta
(0 hanging down, pi upright; not wrapped), the papers' order. Action in [-1, 1], the force over
10 N. Start: x_0 ~ N(0, 0.1^2 I). Reward: minus PILCO's saturating cost on the pole tip,
1 - exp(-d^2 / (2 * 0.25^2)), d the distance of the tip from its upright position above x = 0;
an episode's return is therefore in [-25, 0]. Integrated with RK4, 10 substeps per control
period (the papers' code calls an adaptive ODE solver)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

LENGTH, POLE_MASS, CART_MASS, FRICTION, GRAVITY = 0.5, 0.5, 0.5, 0.1, 9.82
MAX_FORCE = 10.0
DT, SUBSTEPS = 0.1, 10
TRIAL_STEPS = 25
START_STD = 0.1
COST_WIDTH = 0.25
ID = "mbrl_ray/CartPoleSwingUp-v0"


def derivative(s: np.ndarray, force: float) -> np.ndarray:
    """d/dt of s = (x, x', theta', theta): the Lagrange equations of a cart with a uniform pole
    (inertia m l^2 / 3 about the pivot), solved for the two accelerations."""
    _, v, w, theta = s
    m, M, l = POLE_MASS, CART_MASS, LENGTH
    sin, cos = np.sin(theta), np.cos(theta)
    # [[M + m, m l cos / 2], [cos / 2, l / 3]] @ [x'', theta''] = rhs
    a11, a12, a21, a22 = M + m, m * l * cos / 2, cos / 2, l / 3
    b1 = force - FRICTION * v + m * l * w * w * sin / 2
    b2 = -GRAVITY * sin / 2
    det = a11 * a22 - a12 * a21
    acc = (b1 * a22 - a12 * b2) / det
    alpha = (a11 * b2 - a21 * b1) / det
    return np.array([v, acc, alpha, w])


def rk4(s: np.ndarray, force: float, dt: float) -> np.ndarray:
    k1 = derivative(s, force)
    k2 = derivative(s + dt / 2 * k1, force)
    k3 = derivative(s + dt / 2 * k2, force)
    k4 = derivative(s + dt * k3, force)
    return s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def tip_distance(s: np.ndarray) -> np.ndarray:
    """Distance of the pole's tip from its upright position above x = 0, for states (..., 4)."""
    x, theta = s[..., 0], s[..., 3]
    return np.hypot(x + LENGTH * np.sin(theta), LENGTH + LENGTH * np.cos(theta))


def saturating_cost(s: np.ndarray) -> np.ndarray:
    return 1.0 - np.exp(-0.5 * tip_distance(s) ** 2 / COST_WIDTH ** 2)


class CartPoleSwingUp(gym.Env):
    """See the module docstring."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        high = np.full(4, np.inf, np.float32)
        self.observation_space = gym.spaces.Box(-high, high, (4,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._s = np.zeros(4)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._s = self.np_random.normal(0.0, START_STD, 4)
        return self._s.astype(np.float32), {}

    def step(self, action):
        force = MAX_FORCE * float(np.clip(np.asarray(action, np.float64).reshape(-1)[0], -1, 1))
        for _ in range(SUBSTEPS):
            self._s = rk4(self._s, force, DT / SUBSTEPS)
        return (self._s.astype(np.float32), -float(saturating_cost(self._s)), False, False,
                {"tip_distance": float(tip_distance(self._s))})


def register() -> None:
    if ID not in gym.registry:
        gym.register(ID, entry_point=CartPoleSwingUp, max_episode_steps=TRIAL_STEPS)
