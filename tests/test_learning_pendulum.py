"""Slow tier: the pets-pendulum preset (PETS + a SAC critic's terminal value) learns
InvertedPendulum-v5 through the real topology, on at least 2 of 3 fixed seeds."""
import pytest

from mbrl_ray.config import load_preset
from slow_runs import final_returns, timeout_s

pytestmark = pytest.mark.slow  # the slow tier (these use the session's Ray too)

# Random play on InvertedPendulum-v5 lasts ~5-20 steps (return 5-20); the maximum is 1000.
THRESHOLD = 900.0


@pytest.mark.timeout(timeout_s(5000, 0.045))
def test_pets_pendulum_reaches_900_within_5000_steps(ray_session, tmp_path):
    """Measured (evaluations of 1 episode at 1k..5k steps), 3.4-3.6 min per seed on 2 cores.
    With the bootstrapped ensemble (model.bootstrap, the default since then): seed 0: 184, 525,
    1000, 446, 481; seed 1: 198, 132, 1000, 1000, 1000; seed 2: 196, 1000, 1000, 1000, 1000.
    Before it (each member a shuffle of all rows): seed 0: 146, 219, 95, 135, 1000; seed 1:
    113, 1000, 1000, 1000, 1000; seed 2: 1000 at every evaluation. Seed 0 ends below the bar
    in one of the two: the claim is 2 of 3."""
    assert load_preset("pets-pendulum").train.steps == 5000
    finals = final_returns("pets-pendulum", tmp_path)
    assert sum(f >= THRESHOLD for f in finals) >= 2, finals
