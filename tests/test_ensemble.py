import math

import numpy as np
import pytest
import torch

from mbrl_ray.world_models import (ProbabilisticEnsemble, expected_returns, fit_ensemble,
                                   policy_sequences)
from mbrl_ray.world_models.information import mutual_information

pytestmark = pytest.mark.unit


def normalised_ensemble(obs_dim: int, act_dim: int, members: int, hidden: int, layers: int,
                        termination: bool) -> ProbabilisticEnsemble:
    """A seeded ensemble with non-trivial input and output normalisers (what the planning view
    folds into its layers)."""
    torch.manual_seed(0)
    model = ProbabilisticEnsemble(obs_dim, act_dim, members=members, hidden=hidden,
                                  layers=layers, termination=termination)
    with torch.no_grad():
        model.in_norm.mean.uniform_(-1, 1)
        model.in_norm.std.uniform_(0.5, 2)
        model.out_norm.mean.uniform_(-1, 1)
        model.out_norm.std.uniform_(0.5, 2)
    return model


def _linear_data(n=2000, seed=0):
    """s' = s + 0.1 a, reward = -|s'|, terminated when |s'_0| > 0.8."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    act = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    nxt = obs + 0.1 * act
    return {"obs": obs, "action": act, "next_obs": nxt,
            "reward": -np.linalg.norm(nxt, axis=1).astype(np.float32),
            "terminated": np.abs(nxt[:, 0]) > 0.8}


def test_batched_layers_equal_per_member_mlps():
    torch.manual_seed(0)
    model = ProbabilisticEnsemble(3, 2, members=4, hidden=16, layers=2)
    obs, act = torch.randn(4, 7, 3), torch.randn(4, 7, 2)
    mean, logvar = model(obs, act)
    for e in range(4):
        single = model.select([e])
        m1, lv1 = single(obs[e:e + 1], act[e:e + 1])
        torch.testing.assert_close(m1[0], mean[e])
        torch.testing.assert_close(lv1[0], logvar[e])
    assert (logvar <= model.max_logvar + 1e-5).all() and (logvar >= model.min_logvar - 1e-5).all()


def test_fit_learns_dynamics_reward_and_termination():
    torch.manual_seed(0)
    model = ProbabilisticEnsemble(2, 2, members=3, hidden=64, layers=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    data = _linear_data()
    res = fit_ensemble(model, opt, data, num_elites=2, batch_size=64, holdout=0.2, patience=5,
                       max_epochs=40, generator=torch.Generator().manual_seed(0))
    assert len(res.elites) == 2 and res.val_mse < 0.05, res
    test = _linear_data(500, seed=1)
    obs = torch.tensor(test["obs"])[None].expand(3, -1, -1)
    act = torch.tensor(test["action"])[None].expand(3, -1, -1)
    nxt, reward, p_term = model.step(obs, act)
    assert (nxt - torch.tensor(test["next_obs"])).abs().mean() < 0.02
    term = torch.tensor(test["terminated"])
    assert p_term[:, term].mean() > 0.7 and p_term[:, ~term].mean() < 0.1


def _constant_model(members: int, termination: bool = True) -> ProbabilisticEnsemble:
    """1-D obs and action; every member predicts its head's bias (zero until a test sets it)
    with next to no variance."""
    model = ProbabilisticEnsemble(1, 1, members=members, hidden=8, layers=1,
                                  termination=termination)
    with torch.no_grad():
        model.min_logvar.fill_(-30.0)
        model.max_logvar.fill_(-29.0)
        model.head.weight.zero_()
        model.head.bias.zero_()
    return model


def test_ts_inf_keeps_one_member_per_particle():
    """With members that differ only by a constant reward, TS-inf returns are member-pure."""
    torch.manual_seed(0)
    model = _constant_model(members=2, termination=False)
    with torch.no_grad():
        model.head.bias[0, 0, 1] = 1.0   # member 0: reward 1
        model.head.bias[1, 0, 1] = 3.0   # member 1: reward 3
    actions = torch.zeros(1, 4, 5, 1)
    ret = expected_returns(model, torch.zeros(1, 1), actions, particles=2, propagation="ts_inf")
    torch.testing.assert_close(ret, torch.full((1, 4), 10.0))  # mean of 5*1 and 5*3
    ret1 = expected_returns(model, torch.zeros(1, 1), actions, particles=2, propagation="ts1",
                            generator=torch.Generator().manual_seed(0))
    assert ret1.shape == (1, 4) and (ret1 >= 5 - 1e-4).all() and (ret1 <= 15 + 1e-4).all()


@pytest.mark.parametrize("propagation", ["ts_inf", "ts1"])
def test_fewer_rows_than_members_are_scored(propagation):
    """One sequence x one particle on five members (e.g. random shooting's carried-over best):
    the rows are padded up to a multiple of E, and the padding is dropped again."""
    model = _constant_model(members=5, termination=False)
    with torch.no_grad():
        model.head.bias[:, 0, 1] = 2.0  # reward 2 per step from every member
    ret = expected_returns(model, torch.zeros(1, 1), torch.zeros(1, 1, 3, 1), particles=1,
                           propagation=propagation, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ret, torch.tensor([[6.0]]))


@pytest.mark.parametrize("propagation", ["ts_inf", "ts1"])
def test_terminal_value_counts_at_the_horizon_with_survival_and_discount(propagation):
    """reward 1 per step, p(terminated) 0.5 per step, V(s_H) = 10, discount 0.9, H = 2:
    1 + 0.9 * 0.5 + 0.9^2 * 0.25 * 10."""
    model = _constant_model(members=2)
    with torch.no_grad():
        model.head.bias[:, 0, 1] = 1.0
        for layer in model.term:
            layer.weight.zero_()
            layer.bias.zero_()
    seen = []

    def value(states):
        seen.append(states.shape)
        return torch.full(states.shape[:1], 10.0)

    ret = expected_returns(model, torch.zeros(1, 1), torch.zeros(1, 3, 2, 1), particles=2,
                           propagation=propagation, discount=0.9, terminal_value=value,
                           generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ret, torch.full((1, 3), 1 + 0.45 + 0.81 * 0.25 * 10))
    assert seen == [(6, 1)]  # every particle's final state, once


def test_policy_sequences_follow_the_policy_through_the_model():
    """Every member moves the state by +0.5 per step (Δobs bias); the policy acts -s, so the
    sequence from s0 is -s0, -(s0 + 0.5), -(s0 + 1.0) for every sample and env."""
    model = _constant_model(members=3, termination=False)
    with torch.no_grad():
        model.head.bias[:, 0, 0] = 0.5 * model.out_norm.std[0] ** -1 - model.out_norm.mean[0] \
            / model.out_norm.std[0]
    obs = torch.tensor([[0.0], [1.0]])
    seq = policy_sequences(model, obs, lambda s: -s, count=4, horizon=3,
                           generator=torch.Generator().manual_seed(0))
    assert seq.shape == (2, 4, 3, 1)
    expected = -(obs[:, None, None, :] + torch.tensor([0.0, 0.5, 1.0])[None, None, :, None])
    torch.testing.assert_close(seq, expected.expand(2, 4, 3, 1), atol=1e-4, rtol=0)


def test_termination_discounts_later_rewards():
    model = _constant_model(members=1)
    with torch.no_grad():
        model.head.bias[0, 0, 1] = 1.0      # reward 1 per step
        for layer in model.term:
            layer.weight.zero_()
            layer.bias.zero_()
        model.term[-1].bias.fill_(0.0)       # p(terminated) = 0.5 each step
    ret = expected_returns(model, torch.zeros(1, 1), torch.zeros(1, 1, 3, 1), particles=1,
                           propagation="ts_inf")
    torch.testing.assert_close(ret, torch.tensor([[1 + 0.5 + 0.25]]))


@pytest.mark.parametrize("termination", [True, False])
def test_planning_view_matches_the_model(termination):
    """Folded normalisers, bias-in-matmul and reused buffers compute the same step."""
    from mbrl_ray.world_models.planning_ensemble import PlanningEnsemble

    model = normalised_ensemble(3, 2, members=4, hidden=16, layers=3, termination=termination)
    fast = PlanningEnsemble(model)
    for rows in (5, 7, 5):  # buffers are reused and resized
        obs, act = torch.randn(4, rows, 3), torch.randn(4, rows, 2)
        want = model.step(obs, act, torch.Generator().manual_seed(rows))
        got = fast.step(obs, act, torch.Generator().manual_seed(rows))
        for w, g in zip(want, got):
            torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("propagation", ["ts_inf", "ts1"])
def test_information_term_std_proxy_charges_member_disagreement(propagation):
    """Two members that differ by a constant state change disagree by std([0, 1]) on every row;
    a negative weight charges it."""
    from mbrl_ray.world_models.planning_ensemble import PlanningEnsemble

    model = _constant_model(members=2, termination=False)
    with torch.no_grad():
        model.head.bias[1, 0, 0] = 1.0  # member 1 predicts a state change of +1, member 0 of 0
    obs, actions = torch.zeros(1, 1), torch.zeros(1, 3, 4, 1)
    kw = dict(particles=2, propagation=propagation, generator=torch.Generator().manual_seed(0))
    spread = torch.tensor([0.0, 1.0]).std()
    for m in (model, PlanningEnsemble(model)):
        torch.testing.assert_close(m.information(torch.randn(2, 5, 1), torch.randn(2, 5, 1),
                                                 "std"),
                                   torch.full((2, 5), float(spread)))
        ret = expected_returns(m, obs, actions, info_weight=-2.0, info_term="std", **kw)
        torch.testing.assert_close(ret, torch.full((1, 3), -2.0 * 4 * float(spread)))
        torch.testing.assert_close(expected_returns(m, obs, actions, **kw), torch.zeros(1, 3))


def _rows_seen(bootstrap: bool, n: int = 400, members: int = 4) -> list[torch.Tensor]:
    """Row ids each member trains on in one epoch of fit_ensemble (obs[:, 0] is the row id)."""
    model = ProbabilisticEnsemble(2, 2, members=members, hidden=8, layers=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = _linear_data(n)
    data["obs"][:, 0] = np.arange(n, dtype=np.float32)
    seen = [[] for _ in range(members)]
    loss = model.loss

    def recording_loss(obs, *rest):
        for e in range(members):
            seen[e].append(obs[e, :, 0].round().long())
        return loss(obs, *rest)

    model.loss = recording_loss
    fit_ensemble(model, opt, data, num_elites=2, batch_size=64, holdout=0.0, patience=5,
                 max_epochs=1, generator=torch.Generator().manual_seed(0), bootstrap=bootstrap)
    return [torch.cat(s) for s in seen]


def test_bootstrap_gives_each_member_its_own_sample_with_replacement():
    n = 400
    seen = _rows_seen(bootstrap=True, n=n)
    for rows in seen:
        distinct = len(rows.unique())
        assert len(rows) == n and 0.55 * n < distinct < 0.72 * n  # 1 - 1/e ~ 0.63 distinct
    assert len({tuple(r.sort().values.tolist()) for r in seen}) == len(seen)


def test_shuffle_gives_each_member_every_row_once_in_its_own_order():
    seen = _rows_seen(bootstrap=False)
    for rows in seen:
        assert rows.sort().values.tolist() == list(range(400))
    assert not torch.equal(seen[0], seen[1])


@pytest.mark.parametrize("propagation", ["ts_inf", "ts1"])
def test_information_term_mi_is_log_members_where_members_are_told_apart(propagation):
    """Two near-deterministic members 1 apart: the next state names the member, I = log 2 per
    step, added with the weight's sign (Eq. 10: +1)."""
    from mbrl_ray.world_models.planning_ensemble import PlanningEnsemble

    model = _constant_model(members=2, termination=False)
    with torch.no_grad():
        model.head.bias[1, 0, 0] = 1.0
    obs, actions = torch.zeros(1, 1), torch.zeros(1, 3, 4, 1)
    kw = dict(particles=2, propagation=propagation, generator=torch.Generator().manual_seed(0))
    for m in (model, PlanningEnsemble(model)):
        torch.testing.assert_close(m.information(torch.randn(2, 5, 1), torch.randn(2, 5, 1)),
                                   torch.full((2, 5), math.log(2)))
        ret = expected_returns(m, obs, actions, info_weight=1.0, **kw)
        torch.testing.assert_close(ret, torch.full((1, 3), 4 * math.log(2)))


def test_mutual_information_of_agreeing_members_is_zero():
    mean = torch.randn(1, 7, 3).expand(4, -1, -1)
    logvar = torch.randn(1, 7, 3).expand(4, -1, -1)
    torch.testing.assert_close(mutual_information(mean, logvar), torch.zeros(7))


@pytest.mark.parametrize("gap", [0.5, 1.5, 3.0])
def test_mutual_information_matches_quadrature_for_two_gaussians(gap):
    """Members N(0, 1) and N(gap, 1) in 1-D: I = H(mixture) - H(N(0, 1)) by quadrature; the
    one-draw-per-member estimate averaged over many rows agrees."""
    rows = 200_000
    mean = torch.tensor([0.0, gap], dtype=torch.float64)[:, None, None].expand(2, rows, 1)
    logvar = torch.zeros(2, rows, 1, dtype=torch.float64)
    got = float(mutual_information(mean, logvar, torch.Generator().manual_seed(0)).mean())
    y = torch.linspace(-12, 12 + gap, 200_001, dtype=torch.float64)
    normal = torch.distributions.Normal(0.0, 1.0)
    mix = 0.5 * (normal.log_prob(y).exp() + normal.log_prob(y - gap).exp())
    h_mix = float(-(mix * mix.log()).sum() * (y[1] - y[0]))
    exact = h_mix - 0.5 * math.log(2 * math.pi * math.e)
    assert abs(got - exact) < 0.01, (got, exact)


@pytest.mark.parametrize("propagation", ["ts_inf", "ts1"])
def test_log_prior_counts_per_step_like_a_reward(propagation):
    """An action prior's log density (here the action itself) adds discount^t x log p per step
    to a return that is otherwise zero."""
    from mbrl_ray.world_models.planning_ensemble import PlanningEnsemble

    model = PlanningEnsemble(_constant_model(members=2, termination=False))
    obs = torch.zeros(1, 1)
    actions = torch.tensor([0.1, -0.3, 0.5])[None, None, :, None].expand(1, 2, 3, 1)
    ret = expected_returns(model, obs, actions, particles=2, propagation=propagation,
                           discount=0.5, log_prior=lambda s, a: a.sum(-1),
                           generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ret, torch.full((1, 2), 0.1 - 0.3 * 0.5 + 0.5 * 0.25))
