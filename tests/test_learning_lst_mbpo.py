"""Slow tier: CEM-LST, SMCP-LST and MBPO presets learn InvertedPendulum-v5 through the real
topology (SAC's own test is in test_sac.py). Random play lasts ~5-20 steps (return 5-20); the
maximum is 1000. On 2 cores a run of CEM-LST takes about 4.5-5.5 min, SMCP-LST about 6-7, MBPO
about 11-15 (fresh-clone slow tier, 2026-12-03: 4.9-5.5, 6.9-7.2, 13.2-14.9)."""
import pytest

from slow_runs import final_returns, timeout_s

pytestmark = pytest.mark.slow  # the slow tier (these use the session's Ray too)

# preset -> (final evaluation return at least 2 of seeds 0, 1, 2 must reach, seconds per step
# measured on 2 cores). Measured (final evaluation, 1 episode):
# CEM-LST (4.5-4.6 min each): seed 0: 144, 266, 1000, 1000, 1000; seed 1: 389, 1000, 1000, 1000,
# 793; seed 2: 267, 1000, 1000, 1000, 1000 (evaluations at 1k..5k; the claim's margin is one seed).
# Re-run with the bootstrapped ensemble (the default since): seed 0: 99, 108, 1000, 1000, 1000;
# seed 1: 80, 1000, 1000, 1000, 1000; seed 2: 1000, 1000, 1000, 1000, 671.
# SMCP-LST (5.6-6.0 min each): seed 0: 73, 70, 163, 1000, 1000; seed 1: 116, 111, 109, 1000,
# 1000; seed 2: 49, 52, 82, 402, 1000 (its bar of 500 sits below a final it reaches late).
# Re-run with the bootstrapped ensemble: seed 0: 90, 94, 1000, 1000, 1000; seed 1: 78, 109,
# 1000, 1000, 1000; seed 2: 129, 74, 1000, 1000, 1000 (one run each: not a resolved effect).
LST = {"cem-lst-pendulum": (900.0, 0.06), "smcp-lst-pendulum": (500.0, 0.085)}


@pytest.mark.parametrize("preset", [
    pytest.param(name, marks=pytest.mark.timeout(timeout_s(5000, per_step)))
    for name, (_, per_step) in LST.items()])
def test_lst_preset_learns_inverted_pendulum(preset, ray_session, tmp_path):
    finals = final_returns(preset, tmp_path)
    assert sum(f >= LST[preset][0] for f in finals) >= 2, finals


# MBPO (10-11.5 min each): seed 1: 50, 74, 1000, 1000, 1000; seed 2: 38, 112, 88, 1000, 1000;
# seed 0 was measured before initial weights moved to per-network generators (59, 79, 141,
# 1000, 1000). Its bar of 200 sits below the finals it reaches from 3k-4k steps on.
# Re-run with the bootstrapped ensemble (fresh-clone slow tier, 13.2-14.9 min each): seed 0:
# 58, 64, 79, 102, 1000; seed 1: 42, 70, 199, 1000, 1000; seed 2: 74, 152, 1000, 1000, 1000.
@pytest.mark.timeout(timeout_s(5000, 0.14))
def test_mbpo_preset_learns_inverted_pendulum(ray_session, tmp_path):
    finals = final_returns("mbpo-pendulum", tmp_path)
    assert sum(f >= 200.0 for f in finals) >= 2, finals
