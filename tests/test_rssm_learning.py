"""Slow tier: PlaNet and Dreamer (state observations, CPU sizes) learn InvertedPendulum-v5
through the real topology, on at least 2 of 3 fixed seeds."""
import pytest

from slow_runs import eval_histories, timeout_s

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# Random play on InvertedPendulum-v5: 5.0 +- 3.5 per episode, at most 24 in 300 episodes; the
# maximum is 1000 (balanced to the time limit).


@pytest.mark.timeout(timeout_s(6000, 0.03))
def test_planet_balances_the_pendulum(ray_session, tmp_path):
    """An evaluation (mean of 2 episodes) reaches 500 within 6,000 steps on 2 of 3 seeds.
    Measured (evaluations at 1k..6k steps, about 5 min a seed with evaluation on 2 cores):
    seed 0: 22, 101, 180, 1000, 232; seed 1: 48.5, 86, 1000, 250.5, 200; seed 2: 16.5, 100.5,
    1000, 774, 196.5. Every seed balances, and falls back after it (README, Known gaps): the
    claim is about reaching the bar, not keeping it."""
    histories = eval_histories("planet-pendulum", tmp_path)
    assert sum(max(h) >= 500.0 for h in histories) >= 2, histories


@pytest.mark.timeout(timeout_s(6000, 0.05))
def test_dreamer_learns_the_pendulum(ray_session, tmp_path):
    """An evaluation (mean of 2 episodes) reaches 100 (4x random play's best episode) within
    6,000 steps on 2 of 3 seeds. Measured with the preset (about 4.5 min a seed on 2 cores):
    seed 0: 38.5, 52.5, 72, 202, 376.5, 1000; seed 1: 15.5, 51.5, 62, 95.5, 56.5, 119; seed 2:
    38, 78.5, 56.5, 84, 87, 96 -- the claim holds with little margin. One more run of seed 1:
    1000 from 3,000 steps on. With 16 x 16 sequences (half the rows per step) the seeds'
    best evaluations were 238, 74.5 and 1000. About half of all runs balance (1000) within
    6,000 steps; the others are still rising slowly there."""
    histories = eval_histories("dreamer-pendulum", tmp_path)
    assert sum(max(h) >= 100.0 for h in histories) >= 2, histories
