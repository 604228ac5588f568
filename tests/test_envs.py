import numpy as np
import pytest

from mbrl_ray.config import ConfigError
from mbrl_ray.envs import check_env_spec, make_env, optimal_action

pytestmark = pytest.mark.unit


def _rollout(env, policy, episodes=20):
    returns = []
    for _ in range(episodes):
        obs, _ = env.reset()
        total, done = 0.0, False
        while not done:
            obs, reward, term, trunc, _ = env.step(policy(obs))
            total += reward
            done = term or trunc
        returns.append(total)
    return float(np.mean(returns))


@pytest.mark.parametrize("spec", ["dummy", "InvertedPendulum-v5", "HalfCheetah-v5"])
def test_contract(spec):
    env = make_env(spec, seed=1)
    assert env.action_space.low.min() == -1.0 and env.action_space.high.max() == 1.0
    obs, _ = env.reset(seed=1)
    assert obs.dtype == np.float32 and obs.ndim == 1
    obs, reward, term, trunc, _ = env.step(env.action_space.sample())
    assert obs.dtype == np.float32 and isinstance(term, bool) and isinstance(trunc, bool)


def test_seeding_is_deterministic():
    first = [make_env("InvertedPendulum-v5", seed=3).reset(seed=3)[0] for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])


def test_time_limits_are_kept():
    assert make_env("InvertedPendulum-v5").spec.max_episode_steps == 1000
    env = make_env("dummy", seed=0)
    env.reset(seed=0)
    steps, trunc = 0, False
    while not trunc:
        _, _, term, trunc, _ = env.step(np.zeros(2, np.float32))
        assert not term
        steps += 1
    assert steps == 50


def test_dummy_optimal_policy_beats_random():
    env = make_env("dummy", seed=0)
    optimal = _rollout(env, optimal_action)
    random = _rollout(env, lambda obs: env.action_space.sample())
    assert optimal > 45 and random < 15


@pytest.mark.parametrize("spec, words", [
    ("InvertedPendulm-v5", ["InvertedPendulm-v5", "InvertedPendulum-v5"]),
    ("atari:pong", ["unknown suite", "dmc, metaworld"]),
])
def test_bad_spec(spec, words):
    with pytest.raises(ConfigError) as err:
        check_env_spec(spec)
    for word in words:
        assert word in str(err.value)
