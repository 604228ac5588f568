"""Slow tier: CEM-LST, SMCP-LST and MBPO presets learn InvertedPendulum-v5 through the real
topology (SAC's own test is in test_sac.py). Random play lasts ~5-20 steps (return 5-20); the
maximum is 1000. Each run takes ~3-5 min on 2 cores."""
import pytest

from mbrl_ray.config import load_preset
from mbrl_ray.distributed.driver import Driver

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# Preset -> final evaluation return it must reach (measured: see the README's LST table).
THRESHOLDS = {"cem-lst-pendulum": 900.0, "smcp-lst-pendulum": 500.0, "mbpo-pendulum": 500.0}


@pytest.mark.parametrize("preset", list(THRESHOLDS))
def test_preset_learns_inverted_pendulum(preset, ray_session, tmp_path):
    cfg = load_preset(preset)
    assert cfg.train.seed == 0
    result = Driver(cfg, tmp_path / preset, printer=lambda *a, **k: None).run()
    assert result.env_steps == cfg.train.steps
    assert result.final_eval_return >= THRESHOLDS[preset]
