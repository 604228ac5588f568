"""Slow tier: CEM-LST, SMCP-LST and MBPO presets learn InvertedPendulum-v5 through the real
topology (SAC's own test is in test_sac.py). Random play lasts ~5-20 steps (return 5-20); the
maximum is 1000. On 2 cores CEM-LST takes about 4.5 min, SMCP-LST about 6, MBPO about 11-12."""
import pytest

from mbrl_ray.config import load_preset
from mbrl_ray.distributed.driver import Driver

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# Preset -> final evaluation return it must reach. Measured after the seeding fix, before
# initial weights moved to per-network generators (seed 0, evaluations every 1k): CEM-LST 106, 1000, 1000, 1000, final 1000; SMCP-LST 79, 108, 1000,
# 1000, final 1000; MBPO 59, 79, 141, 1000, final 1000 (before the fix it climbed 30, 70, 93,
# 225 @4.25k), so its bar sits below its early curve values. One seed each: issue 19 asks
# for claims over several.
THRESHOLDS = {"cem-lst-pendulum": 900.0, "smcp-lst-pendulum": 500.0, "mbpo-pendulum": 200.0}


@pytest.mark.parametrize("preset", list(THRESHOLDS))
def test_preset_learns_inverted_pendulum(preset, ray_session, tmp_path):
    cfg = load_preset(preset)
    assert cfg.train.seed == 0
    result = Driver(cfg, tmp_path / preset, printer=lambda *a, **k: None).run()
    assert result.env_steps == cfg.train.steps
    assert result.final_eval_return >= THRESHOLDS[preset]
