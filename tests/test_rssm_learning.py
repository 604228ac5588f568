"""Slow tier: PlaNet, DreamerV3 and Dreamer with the 2020 heads (state observations, CPU sizes)
learn InvertedPendulum-v5 through the real topology, on at least 2 of 3 fixed seeds."""
import pytest

from slow_runs import eval_histories, timeout_s

pytestmark = pytest.mark.slow  # the tier (these runs use the ray_session fixture)

# Random play on InvertedPendulum-v5: 5.0 +- 3.5 per episode, at most 24 in 300 episodes; the
# maximum is 1000 (balanced to the time limit).


@pytest.mark.timeout(timeout_s(6000, 0.03))
def test_planet_balances_the_pendulum(ray_session, tmp_path):
    """An evaluation (mean of 2 episodes) reaches 500 within 6,000 steps on 2 of 3 seeds.
    Measured (evaluations at 1k..6k steps, about 5 min a seed with evaluation on 2 cores):
    seed 0: 22, 101, 180, 1000, 232; seed 1: 48.5, 86, 1000, 250.5, 200; seed 2: 16.5, 100.5,
    1000, 774, 196.5. Every seed balances, and falls back after it (docs/operations.md, Known
    gaps): the claim is about reaching the bar, not keeping it. Two fresh-clone slow-tier runs
    (3.0-4.9 min a seed): best evaluations 948.5, 1000, 1000 and 1000, 687, 1000."""
    histories = eval_histories("planet-pendulum", tmp_path)
    assert sum(max(h) >= 500.0 for h in histories) >= 2, histories


@pytest.mark.timeout(timeout_s(8000, 0.16))
def test_dreamerv3_learns_the_pendulum(ray_session, tmp_path):
    """DreamerV3's heads (dreamer-pendulum): an evaluation (mean of 2 episodes) reaches 100
    (4x random play's best episode) within 8,000 steps on 2 of 3 seeds. Measured with the
    preset (2026-12-07, runs of the same seeds outside this test): seed 0: 32.5, 54, 60.5, 46.5,
    51.5, 186, 1000, 258.5; seed 1: 24, 49, 57.5, 58.5, 863.5, 563, 1000, 1000; seed 2: 13.5,
    45, 39, 39, 535.5, 1000, 1000, 1000 -- the bar passed at 5,000-6,000 steps, every seed
    balanced; 18-27 min a seed (part of it beside other runs), hence the timeout. Seeds 3, 4,
    5 (the same helper, a later stop): first 1000 at 6,000, 6,000 and 7,000, 13.2 min each."""
    histories = eval_histories("dreamer-pendulum", tmp_path)
    assert sum(max(h) >= 100.0 for h in histories) >= 2, histories


@pytest.mark.timeout(timeout_s(8000, 0.05))
def test_dreamer_v1_learns_the_pendulum(ray_session, tmp_path):
    """An evaluation (mean of 2 episodes) reaches 100 (4x random play's best episode) within
    8,000 steps on 2 of 3 seeds. Measured with the preset at 8,000 steps (about 6.3 min a seed
    on 2 cores; evaluations at 1k..8k): seed 0: 38.5, 52.5, 72, 202, 376.5, 147.5, 1000, 1000;
    seed 1: 16.5, 58, 168.5, 1000, 1000, 348.5, 178, 122.5; seed 2: 42, 233.5, 1000, 1000,
    1000, 99, 204.5, 1000 -- every seed balances, and the bar is passed by 3,000-5,000 steps.
    This test, run after (28.6 min with PlaNet's): seed 0 first passed 100 at 3,000 and
    balanced at 8,000, seed 1 passed at 3,000 and balanced from 4,000, seed 2 as above.
    The budget was 6,000, where an earlier run of the same seeds had reached only 1000, 119
    and 96 (the async schedule makes runs differ after the first points): too little margin.
    Dreamer falls back after balancing as PlaNet does (docs/operations.md, Known gaps).
    Fresh-clone slow tier (6.0-6.2 min each): seed 0 as above, seed 1 passed 100 only at 7,000
    (1000 there), seed 2 peaked at 90, below the bar: 2 of 3 with no seed to spare in that run. The second
    fresh-clone run: seeds 0 and 1 exactly as in the first, seed 2 peaked at 119.5 at 6,000
    (passes by 19.5) and never balanced; 11 of the 12 seed-runs measured reached the bar."""
    histories = eval_histories("dreamer-v1-pendulum", tmp_path)
    assert sum(max(h) >= 100.0 for h in histories) >= 2, histories
