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


# gps-model-reacher (controllers planned through a learned model, bench/gps_vs_sac.py's
# gps-model arm, 2026-12-07): final evaluations -1.80, -1.80, -1.78 on seeds 0-2, every target
# within 0.005 m; 309-339 s per run beside a CI run. Its first version (no warm start from the
# last guide, 500 policy steps) ended at -3.01 and -3.32 on the seeds where the policy missed a
# target by 0.18-0.33 m. This test, first run (2026-12-07, alone; 19.4 min with the test
# above, which gave -2.27, -4.16, -1.95 again): -1.80, -1.80, -1.78, 296-314 s per run.
THRESHOLD_MODEL = -2.5


@pytest.mark.timeout(timeout_s(15000, 0.02))
def test_through_a_learned_model_the_policy_reaches_the_targets(ray_session, tmp_path):
    finals = [run_seed("gps-model-reacher", seed, tmp_path).final_eval_return
              for seed in SEEDS]
    assert sum(f >= THRESHOLD_MODEL for f in finals) >= 2, finals
