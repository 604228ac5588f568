"""Slow tier: PILCO (pilco-cartpole-swingup) swings the cart-pole up and balances it within 10
trials of 2.5 s, the random first trial counted; Deep PILCO within 12. Success: the pole tip within 0.1 m of upright
over a trial's last 0.5 s, which random play never comes near (its trials ended 1.8-8.9 m away:
bench/results/pilco-cartpole/)."""
import pytest

from slow_runs import SEEDS, run_seed, timeout_s

pytestmark = pytest.mark.slow

THRESHOLD = 0.1  # m
TRIAL_STEPS = 25


def trials_to_success(run_dir) -> int | None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    hits = [e.step // TRIAL_STEPS for e in acc.Scalars("losses/pilco_trial_end_distance")
            if e.value < THRESHOLD]
    return min(hits) if hits else None


def seeds_solved(preset: str, tmp_path, overrides: tuple[str, ...] = ()) -> list[int | None]:
    """Trials to success of each of SEEDS (None: never), one run each."""
    return [trials_to_success(run_seed(preset, seed, tmp_path, overrides).run_dir)
            for seed in SEEDS]


# 250 env steps; the learner's fits take most of it (30-120 s per trial on 2 cores).
@pytest.mark.timeout(timeout_s(250, 3.0))
def test_pilco_swings_up_within_ten_trials(ray_session, tmp_path):
    found = seeds_solved("pilco-cartpole-swingup", tmp_path)
    assert sum(k is not None for k in found) >= 2, found


# The same with the sparse GP from trial 5 on (100 inducing inputs past 100 transitions): the
# fits stay near 40 s instead of growing (bench/results/pilco-cartpole-sparse100/).
@pytest.mark.timeout(timeout_s(250, 3.0))
def test_pilco_with_the_sparse_gp_swings_up_within_ten_trials(ray_session, tmp_path):
    found = seeds_solved("pilco-cartpole-swingup", tmp_path, ("pilco.inducing=100",))
    assert sum(k is not None for k in found) >= 2, found


# Deep PILCO (deep-pilco-cartpole-swingup): 300 env steps; its fits take ~100 s a trial on 2
# cores (1,000 network steps, then 1,000 policy steps on 100 particles). Measured through the
# bench (bench/results/deep-pilco-cartpole/, 2026-12-07): seed 0 swung up at trial 7 (and again
# from trial 9 on), seed 1 at trial 10, seed 2 at trial 7; each held it over trials 10-12
# (seeds 3 and 4, not run here: trials 8 and 11).
@pytest.mark.timeout(timeout_s(300, 4.0))
def test_deep_pilco_swings_up_within_twelve_trials(ray_session, tmp_path):
    found = seeds_solved("deep-pilco-cartpole-swingup", tmp_path, ("train.steps=300",))
    assert sum(k is not None for k in found) >= 2, found
