"""Evaluation plays a batch of envs, one episode each: exactly the first episode of every env,
whatever their lengths (a batch that took the episodes ending first would favour short ones)."""

import numpy as np
import pytest

from mbrl_ray.config.schema import EnvConfig
from mbrl_ray.envs.batch import EnvBatch
from mbrl_ray.distributed.rollout_worker import first_episodes
from mbrl_ray.envs import make_env

pytestmark = pytest.mark.unit

CFG = EnvConfig(id="dummy", max_episode_steps=40)


class Outward:
    """A policy that pushes the point away from the origin at a speed set by where it starts
    (so episode lengths differ between envs, and between an env's first and later episodes)."""

    def initial_state(self, batch):
        return {}

    def reset_state(self, state, done):
        return state

    def act(self, obs, state, explore=True):
        speed = 0.2 + 0.8 * np.abs(obs).max(1, keepdims=True) / 2
        return (np.sign(obs) * speed).astype(np.float32), state

    def one(self, obs):
        return self.act(obs[None], {})[0][0]


def _episode_alone(seed: int) -> tuple[float, int]:
    """The first episode of the env seeded `seed`, played by itself."""
    env, policy = make_env("dummy", seed, max_episode_steps=40), Outward()
    obs, _ = env.reset(seed=seed)
    total, steps = 0.0, 0
    while True:
        obs, reward, term, trunc, _ = env.step(policy.one(obs))
        total, steps = total + reward, steps + 1
        if term or trunc:
            return total, steps


def test_each_env_contributes_its_first_episode_in_env_order():
    envs = EnvBatch(CFG, 12, seed=100)
    episodes = first_episodes(Outward(), envs)
    expected = [_episode_alone(100 + i) for i in range(12)]
    assert len({steps for _, steps in expected}) > 3, "the lengths must differ for the test"
    assert [e.length for e in episodes] == [steps for _, steps in expected]
    np.testing.assert_allclose([e.ret for e in episodes], [r for r, _ in expected], rtol=1e-6)
