"""Contracts of the planning view's hot loop and the ensemble helpers around it, each against a
float64 recomputation written here: the per-member matmul and its buffers, the three paths of
the view's MLP (batched matmul, one matmul per member, oneDNN) on the same numbers, the Monte
Carlo mutual information, the information term's and the log prior's use in expected_returns,
flat_step on fewer rows than members, the input normaliser, the ensemble's default log-variance
bounds, `select`, the mixture density of far-off states, and `planning_flops` by hand."""
from __future__ import annotations

import math

import pytest
import torch

from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.world_models import ProbabilisticEnsemble, expected_returns
from mbrl_ray.world_models import planning_ensemble
from mbrl_ray.world_models.density import log_mixture_density
from mbrl_ray.world_models.ensemble import TERM_HIDDEN, Standardizer, planning_flops
from mbrl_ray.world_models.information import mutual_information
from mbrl_ray.world_models.planning_ensemble import PER_MEMBER_ROWS, PlanningEnsemble, _matmul
from mbrl_ray.world_models.propagation import flat_step
from test_ensemble import _constant_model, normalised_ensemble
from test_ensemble_math import ACT, E, OBS, TOL, _forward, _model, _p, _term_logit

pytestmark = pytest.mark.unit

MATMUL_TOL = dict(rtol=1e-5, atol=1e-5)  # a float32 product of 4 terms against float64
VIEW_TOL = dict(rtol=1e-4, atol=1e-4)  # folded normalisers, float32, against float64
MI_TOL = 1e-12  # float64 estimate against a float64 loop over the same draws
MI_F32_TOL = 1e-5  # float32 estimate against float64 from the same draws (it is ~1e-6)
DRIFT_TOL = dict(rtol=0.0, atol=1e-4)  # _constant_model's noise std is ~5e-7 per step
DENSITY_TOL = dict(rtol=1e-5, atol=1e-3)  # log-densities of order -1e4 from float32 Gaussians
BOUND_TOL = 1e-6  # float32 soft bounds against math


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


# -- the view's matmul and buffers ---------------------------------------------------------------

@pytest.mark.parametrize("rows", [PER_MEMBER_ROWS - 1, PER_MEMBER_ROWS])
def test_matmul_writes_every_members_product_into_the_given_buffer(rows: int) -> None:
    """`_matmul(x, w, out)` leaves x[e] @ w[e] in out (the view's reused buffer, not a fresh
    tensor) and returns it, on the batched path (below PER_MEMBER_ROWS rows) and the
    one-matmul-per-member path (from PER_MEMBER_ROWS on)."""
    g = _gen(0)
    x, w = torch.randn(3, rows, 4, generator=g), torch.randn(3, 4, 5, generator=g)
    out = torch.full((3, rows, 5), float("nan"))
    got = _matmul(x, w, out)
    assert got.data_ptr() == out.data_ptr() and got.shape == (3, rows, 5)
    for e in range(3):
        torch.testing.assert_close(_p(out[e]), _p(x[e]) @ _p(w[e]), **MATMUL_TOL)


@pytest.mark.parametrize("rows, batched", [(PER_MEMBER_ROWS - 1, True), (PER_MEMBER_ROWS, False)])
def test_matmul_switches_to_one_matmul_per_member_at_per_member_rows(
        monkeypatch: pytest.MonkeyPatch, rows: int, batched: bool) -> None:
    """The documented switch: one batched matmul below PER_MEMBER_ROWS rows per member, one
    matmul per member from exactly PER_MEMBER_ROWS rows on (whatever the feature width)."""
    calls: list[str] = []
    bmm, mm = torch.bmm, torch.mm
    monkeypatch.setattr(torch, "bmm", lambda *a, **k: calls.append("bmm") or bmm(*a, **k))
    monkeypatch.setattr(torch, "mm", lambda *a, **k: calls.append("mm") or mm(*a, **k))
    _matmul(torch.randn(3, rows, 4), torch.randn(3, 4, 5), torch.empty(3, rows, 5))
    assert calls == (["bmm"] if batched else ["mm"] * 3)


@pytest.mark.parametrize("layers", [3, 5])
def test_step_keeps_four_buffers_per_network_however_deep_and_reuses_them(layers: int) -> None:
    """Per network (dynamics and termination head): an input buffer, one matmul scratch buffer
    and two activation buffers used in turn, so 8 for any depth (hidden = TERM_HIDDEN, so the
    two networks' buffers have the same shapes and must still be told apart by name). A second
    step of the same shape allocates no new buffer and writes into the very same tensors."""
    model = normalised_ensemble(3, 2, members=3, hidden=TERM_HIDDEN, layers=layers,
                                termination=True)
    view = PlanningEnsemble(model)
    view.step(torch.randn(3, 5, 3), torch.randn(3, 5, 2), _gen(0))
    first = dict(view._buffers)
    assert len(first) == 8 and len({buf.data_ptr() for buf in first.values()}) == 8
    view.step(torch.randn(3, 5, 3), torch.randn(3, 5, 2), _gen(1))
    assert view._buffers.keys() == first.keys()
    assert all(view._buffers[k] is buf for k, buf in first.items())


# -- the view's step on its three paths ----------------------------------------------------------

def _want_step(model: ProbabilisticEnsemble, obs: torch.Tensor, act: torch.Tensor, seed: int):
    """PETS' sampled step in float64 from the weights: (d, r) = out_std (mu + eps e^(lv/2)) +
    out_mean with eps from the generator, s' = s + d, P(terminated) = sigmoid(head(s'))."""
    eps = torch.randn(E, obs.shape[1], OBS + 1, generator=_gen(seed)).double()
    mean, logvar = _forward(model, _p(obs), _p(act))
    sample = (mean + eps * torch.exp(0.5 * logvar)) * _p(model.out_norm.std) \
        + _p(model.out_norm.mean)
    nxt = _p(obs) + sample[..., :OBS]
    return nxt, sample[..., OBS], torch.sigmoid(_term_logit(model, nxt))


PATHS = [("batched", 7, False), ("per-member", PER_MEMBER_ROWS, False),
         pytest.param("onednn", PER_MEMBER_ROWS, True,
                      marks=pytest.mark.skipif(not planning_ensemble.ONEDNN,
                                               reason="torch without oneDNN"))]


@pytest.mark.filterwarnings("error")  # e.g. torch resizing a wrongly shaped out= buffer
@pytest.mark.parametrize("path, rows, onednn", PATHS)
def test_view_step_matches_float64_on_each_path(path: str, rows: int, onednn: bool) -> None:
    """The view's step (next state, reward, P(terminated)) equals the float64 recomputation on
    the batched path, the one-matmul-per-member path and the oneDNN path; oneDNN serves both
    networks exactly when it is on and a member holds PER_MEMBER_ROWS rows or more (on CPU)."""
    model = _model()
    view = PlanningEnsemble(model)
    view.onednn = onednn
    calls: list[int] = []
    fused = view._mlp_onednn
    view._mlp_onednn = lambda x, layers: calls.append(x.shape[1]) or fused(x, layers)
    g = _gen(3)
    obs, act = torch.randn(E, rows, OBS, generator=g), torch.randn(E, rows, ACT, generator=g)
    for _ in range(2):  # the second step runs on the buffers of the first
        got = view.step(obs, act, _gen(4))
        for w, v in zip(_want_step(model, obs, act, 4), got):
            assert v.shape == w.shape
            torch.testing.assert_close(_p(v), w, **VIEW_TOL)
    assert calls == ([rows, rows] * 2 if path == "onednn" else [])


# -- the mutual information ----------------------------------------------------------------------

def _mi_by_loops(mean: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> list[float]:
    """1/E sum_i [log N_i(y_i) - log 1/E sum_j N_j(y_i)], y_i = mu_i + sigma_i eps_i, per row."""
    e_count, rows, dims = mean.shape
    m, lv, z = mean.tolist(), logvar.tolist(), eps.tolist()
    out = []
    for r in range(rows):
        total = 0.0
        for i in range(e_count):
            y = [m[i][r][d] + math.exp(0.5 * lv[i][r][d]) * z[i][r][d] for d in range(dims)]
            log_n = [sum(-0.5 * ((y[d] - m[j][r][d]) ** 2 / math.exp(lv[j][r][d])
                                 + lv[j][r][d] + math.log(2 * math.pi)) for d in range(dims))
                     for j in range(e_count)]
            total += log_n[i] - (_logsumexp(log_n) - math.log(e_count))
        out.append(total / e_count)
    return out


def test_mutual_information_is_the_one_draw_per_member_estimate() -> None:
    """Float64 members with different means and log-variances: the estimate is the loop's, with
    float64 draws y_i = mu_i + sigma_i eps_i taken from the generator only (the same under two
    global seeds)."""
    g = _gen(0)
    mean = torch.randn(3, 4, 2, generator=g, dtype=torch.float64)
    logvar = torch.randn(3, 4, 2, generator=g, dtype=torch.float64)
    eps = torch.randn(3, 4, 2, generator=_gen(7), dtype=torch.float64)
    want = torch.tensor(_mi_by_loops(mean, logvar, eps), dtype=torch.float64)
    for seed in (1, 2):
        torch.manual_seed(seed)
        got = mutual_information(mean, logvar, _gen(7))
        torch.testing.assert_close(got, want, rtol=0.0, atol=MI_TOL)


def test_mutual_information_in_float32_stays_accurate_over_many_rows() -> None:
    """Planning estimates I over E x K rows in float32; over 4,096 rows the estimate stays
    within MI_F32_TOL of the float64 estimate from the same draws (a constant that grew with the
    row count would cancel on paper but not in float32)."""
    rows, g = 4096, _gen(0)
    mean, logvar = torch.randn(3, rows, 2, generator=g), 0.5 * torch.randn(3, rows, 2, generator=g)
    got = mutual_information(mean, logvar, _gen(1))
    eps = torch.randn(3, rows, 2, generator=_gen(1)).double()
    mu, std = _p(mean), torch.exp(0.5 * _p(logvar))
    y = mu + std * eps
    log_n = torch.distributions.Normal(mu[None], std[None]).log_prob(y[:, None]).sum(-1)
    own = torch.stack([log_n[i, i] for i in range(3)])
    want = (own - torch.logsumexp(log_n, 1) + math.log(3)).mean(0)
    assert float((_p(got) - want).abs().max()) < MI_F32_TOL


@pytest.mark.parametrize("propagation", ["ts_inf", "ts1"])
def test_information_term_draws_only_from_the_generator(propagation: str) -> None:
    """expected_returns with the MI term is a function of the generator passed: identical under
    two global seeds (and the MI estimate here does depend on its draws)."""
    model = normalised_ensemble(3, 2, members=3, hidden=16, layers=2, termination=False)
    obs, actions = torch.randn(2, 3, generator=_gen(0)), torch.randn(2, 4, 3, 2, generator=_gen(1))
    rows = torch.randn(3, 4, 3, generator=_gen(2)), torch.randn(3, 4, 2, generator=_gen(3))
    assert not torch.equal(model.information(*rows, "mi", _gen(0)),
                           model.information(*rows, "mi", _gen(1)))
    returns = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        returns.append(expected_returns(model, obs, actions, particles=3, propagation=propagation,
                                        info_weight=1.0, generator=_gen(5)))
    assert torch.equal(returns[0], returns[1])


# -- the log prior and flat_step -----------------------------------------------------------------

@pytest.mark.parametrize("propagation", ["ts_inf", "ts1"])
def test_log_prior_reads_each_particles_current_state_and_action(propagation: str) -> None:
    """Members move the state by +0.5 per step from s0 = 0.2; a log prior s * a adds
    sum_t discount^t (0.2 + 0.5 t) a_t to a return that is otherwise zero (3 sequences x 2
    particles on 2 members: 3 rows per member, not 1 = obs_dim)."""
    model = _constant_model(members=2, termination=False)
    with torch.no_grad():
        model.head.bias[:, 0, 0] = 0.5
    acts = [[0.3, -0.7, 1.1], [-0.4, 0.9, 0.2], [0.8, 0.5, -1.3]]
    actions = torch.tensor(acts)[None, :, :, None]
    ret = expected_returns(model, torch.full((1, 1), 0.2), actions, particles=2,
                           propagation=propagation, discount=0.9,
                           log_prior=lambda s, a: s[:, 0] * a[:, 0], generator=_gen(0))
    want = [sum(0.9 ** t * (0.2 + 0.5 * t) * a[t] for t in range(3)) for a in acts]
    torch.testing.assert_close(ret, torch.tensor([want]), **DRIFT_TOL)


def test_flat_step_of_a_single_row_on_three_members() -> None:
    """One row (fewer than E): it runs on member 0 with the first noise draw, padded with copies
    of itself, and comes back alone: the float64 step of that row."""
    model = _model()
    obs, act = torch.randn(1, OBS, generator=_gen(0)), torch.randn(1, ACT, generator=_gen(1))
    got = flat_step(model, obs, act, _gen(2))
    want = _want_step(model, obs.expand(E, 1, OBS), act.expand(E, 1, ACT), 2)
    for w, v in zip(want, got):
        torch.testing.assert_close(_p(v), w[0], **TOL)


# -- the ensemble module ------------------------------------------------------------------------

def test_standardizer_fit_on_one_row_keeps_unit_std_and_on_two_uses_the_unbiased_std() -> None:
    """A single row has no spread: its std stays 1 (not NaN); two rows give |a - b| / sqrt(2)."""
    norm = Standardizer(2)
    norm.fit(torch.tensor([[1.5, -2.0]]))
    torch.testing.assert_close(norm.mean, torch.tensor([1.5, -2.0]))
    torch.testing.assert_close(norm.std, torch.ones(2))
    norm.fit(torch.tensor([[1.0, 4.0], [4.0, 0.0]]))
    torch.testing.assert_close(norm.mean, torch.tensor([2.5, 2.0]))
    torch.testing.assert_close(norm.std, torch.tensor([3.0, 4.0]) / math.sqrt(2))


def test_fresh_ensemble_soft_bounds_the_log_variance_to_half_and_minus_ten() -> None:
    """PETS / mbrl-lib's initial bounds max_logvar = 0.5, min_logvar = -10: raw log-variances
    (head biases) far above, inside and far below come out as max - softplus(max - raw), then
    min + softplus(. - min)."""
    model = ProbabilisticEnsemble(2, 1, members=2, hidden=8, layers=1)
    raw = [[40.0, -2.0, -40.0], [3.0, 0.2, -15.0]]
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias[:, 0, 3:] = torch.tensor(raw)
    _, logvar = model(torch.randn(2, 4, 2), torch.randn(2, 4, 1))
    for e, member in enumerate(raw):
        for d, x in enumerate(member):
            bounded = 0.5 - _softplus(0.5 - x)
            want = -10.0 + _softplus(bounded + 10.0)
            assert (logvar[e, :, d] - want).abs().max() < BOUND_TOL, (e, d)


def test_select_copies_members_of_an_ensemble_without_termination_head() -> None:
    """select on a termination-free ensemble gives a termination-free one whose member i holds
    the chosen member's weights and normalisers, and the shared log-variance bounds."""
    model = normalised_ensemble(3, 2, members=4, hidden=16, layers=2, termination=False)
    chosen = [3, 1]
    small = model.select(chosen)
    assert small.termination is False and len(small.term) == 0
    for big_layer, layer in zip([*model.body, model.head], [*small.body, small.head]):
        for i, e in enumerate(chosen):
            assert torch.equal(layer.weight[i], big_layer.weight[e])
            assert torch.equal(layer.bias[i], big_layer.bias[e])
    assert torch.equal(small.in_norm.std, model.in_norm.std)
    assert torch.equal(small.max_logvar, model.max_logvar)


def test_select_may_repeat_the_member_of_a_single_member_ensemble() -> None:
    """Three copies of a one-member ensemble's member: every layer thrice, and the log-variance
    bounds (shaped (1, 1, ·) like a member dimension of 1) kept shared, not copied."""
    model = normalised_ensemble(3, 2, members=1, hidden=16, layers=2, termination=True)
    with torch.no_grad():
        model.max_logvar.copy_(torch.tensor([[[0.3, 0.1, 0.4, 0.2]]]))
    small = model.select([0, 0, 0])
    for big_layer, layer in zip([*model.body, model.head, *model.term],
                                [*small.body, small.head, *small.term]):
        for i in range(3):
            assert torch.equal(layer.weight[i], big_layer.weight[0])
    assert small.max_logvar.shape == (1, 1, 4)
    assert torch.equal(small.max_logvar, model.max_logvar)


def _matmul_flops_per_row(model: ProbabilisticEnsemble) -> int:
    """2 * in * out per layer of one member, read off the module's weight shapes."""
    layers = [*model.body, model.head, *model.term]
    return sum(2 * layer.weight.shape[1] * layer.weight.shape[2] for layer in layers)


@pytest.mark.parametrize("termination", [True, False])
def test_planning_flops_counts_every_layer_of_every_particle(termination: bool) -> None:
    """obs 3, action 1, 2 hidden layers of 4, head 8, termination head 3 -> 64 -> 64 -> 1:
    2 (4*4 + 4*4 + 4*8) = 128 FLOPs a row, + 2 (3*64 + 64*64 + 64*1) = 8,704 with the head; times
    population 10 x particles 2 x horizon 5 x iterations 3. The module built that way has just
    those layers."""
    cfg = apply_overrides(load_preset("pets-pendulum"), [
        "model.hidden_size=4", "model.num_layers=2", f"model.termination={termination}",
        "model.particles=2", "planner.population=10", "planner.horizon=5",
        "planner.iterations=3"])
    per_row = 128 + (8704 if termination else 0)
    assert planning_flops(cfg, 3, 1) == per_row * 10 * 2 * 5 * 3
    model = ProbabilisticEnsemble(3, 1, members=2, hidden=4, layers=2, termination=termination)
    assert _matmul_flops_per_row(model) == per_row


# -- the mixture density -------------------------------------------------------------------------

def test_log_mixture_density_of_far_off_states_stays_finite() -> None:
    """Next states near and far (log-densities of order -1e4) in one call: each entry is
    log 1/E sum_e N_e(s' - s), from the members' de-standardised Gaussians in float64, finite
    for the far states too (each entry's own maximum is taken out, not a common one)."""
    model = _model()
    b, n = 2, 2
    obs, actions = torch.randn(b, OBS, generator=_gen(0)), torch.randn(b, n, ACT, generator=_gen(1))
    offsets = torch.tensor([[0.1, -0.2, 0.3], [30.0, -25.0, 40.0], [-0.3, 0.2, 0.1]])
    next_states = obs[:, None] + offsets[None]
    got = log_mixture_density(PlanningEnsemble(model), obs, actions, next_states)
    rows_obs = obs.repeat_interleave(n, 0)[None].expand(E, -1, -1)  # every row, every member
    rows_act = actions.reshape(b * n, ACT)[None].expand(E, -1, -1)
    mean, logvar = _forward(model, _p(rows_obs), _p(rows_act))
    std, shift = _p(model.out_norm.std[:OBS]), _p(model.out_norm.mean[:OBS])
    mu, var = mean[..., :OBS] * std + shift, torch.exp(logvar[..., :OBS]) * std ** 2
    want = torch.empty(b, n, len(offsets), dtype=torch.float64)
    for i in range(b):
        for j in range(n):
            for m in range(len(offsets)):
                delta = (next_states[i, m] - obs[i]).double().tolist()
                per_member = [sum(-0.5 * ((delta[d] - float(mu[e, i * n + j, d])) ** 2
                                          / float(var[e, i * n + j, d])
                                          + math.log(2 * math.pi * float(var[e, i * n + j, d])))
                                  for d in range(OBS)) for e in range(E)]
                want[i, j, m] = _logsumexp(per_member) - math.log(E)
    assert bool(torch.isfinite(got).all()) and float(want[:, :, 1].max()) < -1e3
    torch.testing.assert_close(got, want, **DENSITY_TOL)
