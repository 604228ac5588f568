"""Slow tier: guided policy search (gps-reacher) delivers a neural policy that reaches the 4
conditions' targets on Reacher-v5 within 15,000 env steps. Per 50-step episode, random play
returns about -43 (the first round's samples, seed 0) and holding still about -10 (the targets
lie 0.15-0.19 from the fingertip); reaching and holding costs about -2."""
import pytest

from slow_runs import SEEDS, run_seed, timeout_s

pytestmark = pytest.mark.slow

# Measured (final evaluation: the policy's mean, one episode per condition, 15,000 env steps,
# 2026-12-06): seed 0: -2.27, seed 1: -4.16 (one target still 0.21 m away), seed 2: -1.95;
# 86-99 s per run beside another bench (62-71 s in bench/results/gps-vs-sac/summary.md).
THRESHOLD = -4.0


@pytest.mark.timeout(timeout_s(15000, 0.005))
def test_the_neural_policy_reaches_the_targets(ray_session, tmp_path):
    finals = [run_seed("gps-reacher", seed, tmp_path).final_eval_return for seed in SEEDS]
    assert sum(f >= THRESHOLD for f in finals) >= 2, finals
