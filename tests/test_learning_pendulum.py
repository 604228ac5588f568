"""Slow tier: the pets-pendulum preset (PETS + a SAC critic's terminal value) learns
InvertedPendulum-v5 through the real topology."""
import pytest

from mbrl_ray.config import load_preset
from mbrl_ray.distributed.driver import Driver

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# Random play on InvertedPendulum-v5 lasts ~5-20 steps (return 5-20); the maximum is 1000.
THRESHOLD = 900.0


def test_pets_pendulum_reaches_900_within_5000_steps(ray_session, tmp_path):
    cfg = load_preset("pets-pendulum")
    assert cfg.train.steps == 5000 and cfg.train.seed == 0
    result = Driver(cfg, tmp_path / "pets-pendulum").run()
    assert result.env_steps == 5000
    assert result.final_eval_return >= THRESHOLD
