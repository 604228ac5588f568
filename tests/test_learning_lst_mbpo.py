"""Slow tier: CEM-LST, SMCP-LST and MBPO presets learn InvertedPendulum-v5 through the real
topology (SAC's own test is in test_sac.py). Random play lasts ~5-20 steps (return 5-20); the
maximum is 1000. CEM-LST takes ~5 min, SMCP-LST ~7 min, MBPO ~12 min on 2 cores."""
import pytest

from mbrl_ray.config import load_preset
from mbrl_ray.distributed.driver import Driver

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# Preset -> final evaluation return it must reach. Measured (seed 0, evaluations every 1k):
# CEM-LST 97, 1000, 1000, 1000, final 1000; SMCP-LST 56 @2k, 1000 @4k, final 1000; MBPO climbs
# slowly (30, 70, 93, 225 @4.25k, final 1000), so its bar sits below its last curve value.
THRESHOLDS = {"cem-lst-pendulum": 900.0, "smcp-lst-pendulum": 500.0, "mbpo-pendulum": 200.0}


@pytest.mark.parametrize("preset", list(THRESHOLDS))
def test_preset_learns_inverted_pendulum(preset, ray_session, tmp_path):
    cfg = load_preset(preset)
    assert cfg.train.seed == 0
    result = Driver(cfg, tmp_path / preset, printer=lambda *a, **k: None).run()
    assert result.env_steps == cfg.train.steps
    assert result.final_eval_return >= THRESHOLDS[preset]
