"""Slow tier: MBMF's DAgger phase (mbmf-pendulum) keeps Pendulum-v1 swung up with the imitation
policy alone acting after the hand-over at 3,000 env steps. Random play returns about -1,200
per 200-step episode (the first 600 random steps: -1,163 on seed 0); hanging still costs more."""
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from slow_runs import run_seed, timeout_s, SEEDS

pytestmark = pytest.mark.slow

# Measured (final evaluation, mean of 3 episodes, 5,000 env steps, 100-120 s per run on 2
# cores, 2026-12-06): seed 0: -164, seed 1: -208, seed 2: -276 (-208 in a second run; the
# MPC expert's evaluations at 1,400-3,000 steps averaged -140, -204, -165).
THRESHOLD = -400.0


@pytest.mark.timeout(timeout_s(5000, 0.03))
def test_the_imitation_policy_keeps_the_pendulum_up(ray_session, tmp_path):
    finals = []
    for seed in SEEDS:
        result = run_seed("mbmf-pendulum", seed, tmp_path)
        acc = EventAccumulator(str(result.run_dir / "tb"))
        acc.Reload()
        assert acc.Scalars("losses/mbmf_policy_acts")[-1].value == 1.0  # the policy acted
        finals.append(result.final_eval_return)
    assert sum(f >= THRESHOLD for f in finals) >= 2, finals
