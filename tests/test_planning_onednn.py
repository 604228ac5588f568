"""The planning view's oneDNN path (fused linear + SiLU, one member at a time) computes what the
plain path computes: the same predictions up to float rounding, and the same plans for a fixed
generator."""
import numpy as np
import pytest
import torch

from mbrl_ray.agents import PETSLearner
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs import EnvSpec
from mbrl_ray.world_models import ProbabilisticEnsemble
from mbrl_ray.world_models import planning_ensemble
from mbrl_ray.world_models.planning_ensemble import PER_MEMBER_ROWS, PlanningEnsemble
from test_ensemble import normalised_ensemble

pytestmark = [pytest.mark.unit,
              pytest.mark.skipif(not planning_ensemble.ONEDNN, reason="torch without oneDNN")]

ROWS = PER_MEMBER_ROWS + 88  # the oneDNN path serves member batches from PER_MEMBER_ROWS on


def _views(termination: bool) -> tuple[ProbabilisticEnsemble, PlanningEnsemble,
                                        PlanningEnsemble]:
    model = normalised_ensemble(5, 2, members=3, hidden=32, layers=3, termination=termination)
    fused, plain = PlanningEnsemble(model), PlanningEnsemble(model)
    plain.onednn = False
    return model, fused, plain


@pytest.mark.parametrize("termination", [True, False])
def test_onednn_step_matches_the_plain_path_and_the_module(termination):
    model, fused, plain = _views(termination)
    obs, act = torch.randn(3, ROWS, 5), torch.randn(3, ROWS, 2)
    want = model.step(obs, act, torch.Generator().manual_seed(1))
    for view in (fused, plain):
        got = view.step(obs, act, torch.Generator().manual_seed(1))
        for w, g in zip(want, got):
            torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


def test_onednn_member_gaussians_and_information_match_the_plain_path():
    _, fused, plain = _views(termination=False)
    obs, act = torch.randn(ROWS, 5), torch.randn(ROWS, 2)
    for want, got in zip(plain.member_gaussians(obs, act), fused.member_gaussians(obs, act)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    obs, act = torch.randn(3, ROWS, 5), torch.randn(3, ROWS, 2)
    for kind in ("mi", "std"):
        want = plain.information(obs, act, kind, torch.Generator().manual_seed(2))
        got = fused.information(obs, act, kind, torch.Generator().manual_seed(2))
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_onednn_path_is_taken_only_for_large_member_batches():
    _, fused, _ = _views(termination=False)
    calls = []
    original = fused._mlp_onednn
    fused._mlp_onednn = lambda *a: calls.append(a[0].shape[1]) or original(*a)
    fused.step(torch.randn(3, 8, 5), torch.randn(3, 8, 2))
    assert calls == []
    fused.step(torch.randn(3, ROWS, 5), torch.randn(3, ROWS, 2))
    assert calls == [ROWS]


@pytest.mark.parametrize("planner", ["cem", "cem-lst", "mppi"])
def test_onednn_path_plans_the_same_actions(planner):
    """Two agents with the same seed, one planning through each path: the same first action
    (elites chosen from returns that differ only by float rounding)."""
    name, _, posterior = planner.partition("-")
    cfg = apply_overrides(load_preset("pets-pendulum"), [
        f"planner.name={name}", f"planner.posterior={posterior or 'mpc'}",
        "planner.population=1500", "planner.iterations=2", "planner.horizon=4"])
    actions = []
    for onednn in (True, False):
        agent = PETSLearner(EnvSpec.state(4, 1), cfg, "cpu", seed=3)
        agent.plan_model = agent.model.select(list(range(cfg.model.num_elites)))
        obs = np.array([[0.1, -0.2, 0.05, 0.3]], np.float32)
        state = agent.initial_state(1)
        agent.act(obs, state)  # builds the planning view
        agent._planning.onednn = onednn
        step = []
        for _ in range(3):
            action, state = agent.act(obs, state)
            step.append(action)
        actions.append(np.concatenate(step))
    np.testing.assert_allclose(actions[0], actions[1], atol=1e-4)
