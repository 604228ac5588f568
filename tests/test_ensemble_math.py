"""The probabilistic ensemble's math (PETS, Chua et al. 2018, with mbrl-lib's soft variance
bounds) recomputed in float64, member by member, from the weights: the forward pass with its
normalisers and soft-bounded log-variance, the Gaussian NLL with the bounds' penalty and the
termination BCE, a sampled step, and TS1 against TS-inf propagation."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mbrl_ray.world_models import ProbabilisticEnsemble, expected_returns
from mbrl_ray.world_models.ensemble import Standardizer
from mbrl_ray.world_models.ensemble_training import fit_normalizers, to_tensors
from test_ensemble import _constant_model  # 1-D, head bias only, next to no variance

pytestmark = pytest.mark.unit

OBS, ACT, E, N = 3, 2, 3, 7
TOL = dict(rtol=1e-5, atol=1e-5)  # float32 model against a float64 recomputation


def _data(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = rng.normal(1.0, 2.0, (40, OBS)).astype(np.float32)
    act = rng.uniform(-1, 1, (40, ACT)).astype(np.float32)
    noise = rng.normal(0, 0.1, (40, OBS))
    nxt = (obs + 0.3 * act.sum(1, keepdims=True) + noise).astype(np.float32)
    return {"obs": obs, "action": act, "next_obs": nxt,
            "reward": (nxt[:, 0] - 2).astype(np.float32), "terminated": np.arange(40) % 4 == 1}


def _model() -> ProbabilisticEnsemble:
    """Normalisers fitted to off-centre data; log-variance bounds that bind for some outputs
    (raw log-variances above max and below min)."""
    torch.manual_seed(2)
    model = ProbabilisticEnsemble(OBS, ACT, members=E, hidden=8, layers=2, termination=True)
    fit_normalizers(model, to_tensors(_data(), torch.device("cpu")))
    with torch.no_grad():
        model.head.bias[:, 0, OBS + 1:] = torch.tensor([1.5, -12.0, 0.2, -1.0])
        model.max_logvar.copy_(torch.tensor([[[0.4, 0.1, 0.6, 0.3]]]))
        model.min_logvar.copy_(torch.tensor([[[-9.0, -8.0, -10.0, -7.0]]]))
    return model


def _p(t: torch.Tensor) -> torch.Tensor:
    return t.detach().double()


def _forward(model, obs, act):
    """Member by member: standardise (obs, act) with the buffer's mean and std, SiLU hidden
    layers, linear head; logvar' = max - softplus(max - logvar), then min + softplus(. - min)."""
    means, logvars = [], []
    for e in range(E):
        h = (torch.cat([obs[e], act[e]], -1) - _p(model.in_norm.mean)) / _p(model.in_norm.std)
        for layer in model.body:
            h = F.silu(h @ _p(layer.weight[e]) + _p(layer.bias[e]))
        out = h @ _p(model.head.weight[e]) + _p(model.head.bias[e])
        mean, raw = out[:, :OBS + 1], out[:, OBS + 1:]
        hi, lo = _p(model.max_logvar[0]), _p(model.min_logvar[0])
        bounded = hi - F.softplus(hi - raw)
        means.append(mean)
        logvars.append(lo + F.softplus(bounded - lo))
    return torch.stack(means), torch.stack(logvars)


def _term_logit(model, nxt):
    """The termination head on s' standardised with the obs part of the input normaliser."""
    logits = []
    for e in range(E):
        h = (nxt[e] - _p(model.in_norm.mean[:OBS])) / _p(model.in_norm.std[:OBS])
        for i, layer in enumerate(model.term):
            h = h @ _p(layer.weight[e]) + _p(layer.bias[e])
            h = F.silu(h) if i < len(model.term) - 1 else h
        logits.append(h[:, 0])
    return torch.stack(logits)


def _batch(seed: int = 1):
    d = {k: torch.as_tensor(v) for k, v in _data(seed).items()}
    idx = torch.randint(0, 40, (E, N), generator=torch.Generator().manual_seed(seed))
    return tuple(d[k][idx] for k in ("obs", "action", "reward", "next_obs", "terminated"))


def test_standardizer_uses_the_unbiased_std_and_inverts():
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0], [8.0, 5.0]])
    norm = Standardizer(2)
    norm.fit(x)
    mean = [sum(r[j] for r in x.tolist()) / 3 for j in range(2)]
    std0 = math.sqrt(sum((r[0] - mean[0]) ** 2 for r in x.tolist()) / 2)
    torch.testing.assert_close(norm.mean, torch.tensor(mean))
    torch.testing.assert_close(norm.std, torch.tensor([std0, 1e-6]))  # a constant: floored
    torch.testing.assert_close(norm.inverse(norm(x)), x)


def test_forward_applies_the_normaliser_and_the_soft_log_variance_bounds():
    model, (obs, act, *_) = _model(), _batch()
    mean, logvar = model(obs, act)
    want_mean, want_logvar = _forward(model, _p(obs), _p(act))
    torch.testing.assert_close(_p(mean), want_mean, **TOL)
    torch.testing.assert_close(_p(logvar), want_logvar, **TOL)
    hi = model.max_logvar.detach()[0, 0]
    assert (logvar[..., 0] < hi[0]).all() and (logvar[..., 0] > hi[0] - 0.5).all(), \
        "the raw log-variance 1.5 is pulled below max_logvar 0.4"
    assert (logvar[..., 1] > -8.0).all(), "the raw -12 is pushed above min_logvar -8"


def test_loss_is_the_gaussian_nll_plus_the_bounds_penalty_plus_the_termination_bce():
    """nll = mean over members, rows and outputs of (mu - y)^2 exp(-logvar) + logvar, with y the
    standardised (s' - s, r); + 0.01 (sum max_logvar - sum min_logvar); + BCE of the
    termination head on s'."""
    model, (obs, act, reward, nxt, term) = _model(), _batch()
    loss, nll, mse = (x.detach() for x in model.loss(obs, act, reward, nxt, term))
    mean, logvar = _forward(model, _p(obs), _p(act))
    y = (torch.cat([_p(nxt) - _p(obs), _p(reward)[..., None]], -1) - _p(model.out_norm.mean)) \
        / _p(model.out_norm.std)
    want_nll = ((mean - y) ** 2 * torch.exp(-logvar) + logvar).mean()
    penalty = 0.01 * (_p(model.max_logvar).sum() - _p(model.min_logvar).sum())
    logit, t = _term_logit(model, _p(nxt)), _p(term)
    bce = -(t * F.logsigmoid(logit) + (1 - t) * F.logsigmoid(-logit)).mean()
    assert math.isclose(float(nll), float(want_nll), rel_tol=1e-5)
    assert math.isclose(float(mse), float(((mean - y) ** 2).mean()), rel_tol=1e-5)
    assert math.isclose(float(loss), float(want_nll + penalty + bce), rel_tol=1e-5)


def test_bounds_penalty_pushes_max_logvar_down_and_min_logvar_up():
    """The penalty's gradient is +0.01 on each max_logvar and -0.01 on each min_logvar (the
    termination BCE does not reach them)."""
    model, batch = _model(), _batch()
    model.loss(*batch)[0].backward()
    nll_only = _model()
    nll_only.loss(*batch)[1].backward()
    torch.testing.assert_close(model.max_logvar.grad - nll_only.max_logvar.grad,
                               torch.full((1, 1, OBS + 1), 0.01))
    torch.testing.assert_close(model.min_logvar.grad - nll_only.min_logvar.grad,
                               torch.full((1, 1, OBS + 1), -0.01))


def test_step_samples_the_denormalised_gaussian_and_the_termination_of_the_new_state():
    """s' = s + d, (d, r) = out_std (mu + eps exp(logvar / 2)) + out_mean, eps ~ N(0, 1);
    P(terminated) = sigmoid(termination head(s'))."""
    model, (obs, act, *_) = _model(), _batch()
    nxt, reward, p_term = model.step(obs, act, torch.Generator().manual_seed(5))
    eps = torch.randn(E, N, OBS + 1, generator=torch.Generator().manual_seed(5)).double()
    mean, logvar = _forward(model, _p(obs), _p(act))
    sample = (mean + eps * torch.exp(0.5 * logvar)) * _p(model.out_norm.std) \
        + _p(model.out_norm.mean)
    want_next = _p(obs) + sample[..., :OBS]
    torch.testing.assert_close(_p(nxt), want_next, **TOL)
    torch.testing.assert_close(_p(reward), sample[..., OBS], **TOL)
    torch.testing.assert_close(_p(p_term), torch.sigmoid(_term_logit(model, want_next)), **TOL)


@pytest.mark.parametrize("propagation", ["ts1", "ts_inf"])
def test_ts1_draws_a_member_per_step_and_ts_inf_one_per_particle(propagation):
    """Members paying rewards 1 and 3 over a horizon of 5, one particle per sequence: TS-inf
    returns 5 or 15 (one member throughout); TS1 re-draws the member each step, so a return is
    5 + 2 Binomial(5, 1/2): intermediate in 30 of 32 cases, mean 10. 4,000 sequences: the
    frequencies are checked to within 5 standard errors."""
    model = _constant_model(members=2, termination=False)
    with torch.no_grad():
        model.head.bias[:, 0, 1] = torch.tensor([1.0, 3.0])
    n = 4000
    ret = expected_returns(model, torch.zeros(1, 1), torch.zeros(1, n, 5, 1), particles=1,
                           propagation=propagation, generator=torch.Generator().manual_seed(0))
    values = ret[0].round().long().tolist()
    counts = {v: values.count(v) for v in set(values)}
    if propagation == "ts_inf":
        assert set(counts) == {5, 15} and abs(counts[5] - n / 2) < 5 * math.sqrt(n / 4)
        return
    for k in range(6):
        p = math.comb(5, k) / 32
        got = counts.get(5 + 2 * k, 0)
        assert abs(got - n * p) < 5 * math.sqrt(n * p * (1 - p)) + 1, (k, got, n * p)
