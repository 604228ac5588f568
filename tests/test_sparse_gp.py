"""PILCO's sparse GP (FITC, world_models/sparse_gp.py): its likelihood and posterior against
the textbook formulas written out with explicit inverses, the exact GP recovered when the
inducing inputs are the data, its moment matching against Monte Carlo, the fit learning the
inducing inputs, and the PILCO agent switching to it past `pilco.inducing`."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mbrl_ray.world_models.gp import ExactGP, cross_kernel
from mbrl_ray.world_models.sparse_gp import JITTER, SparseGP

pytestmark = pytest.mark.unit
F64 = torch.float64


def _function(X):
    return torch.stack([torch.sin(2 * X[:, 0]) * X[:, 1], torch.cos(X[:, 2]) + 0.3 * X[:, 0]], -1)


def _data(n, seed=3, noise=0.05):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 3, generator=g, dtype=F64) * 4 - 2
    return X, _function(X) + noise * torch.randn(n, 2, generator=g, dtype=F64)


@pytest.fixture(scope="module")
def sparse():
    """M = 12 inducing inputs of n = 80, hyperparameters not at their initial values."""
    X, Y = _data(80)
    exact = ExactGP(X, Y)
    exact.fit(40)
    return SparseGP(X, Y, 12, exact.hyper, torch.Generator().manual_seed(0))


def _textbook(gp: SparseGP, a: int):
    """Q + Lambda, beta and K_zz^-1 - A^-1 of output a, by explicit inverses."""
    h, Z, X = gp.hyper, gp.hyper["inducing"], gp.X
    sf2, sn2 = float((2 * h["log_sf"][a]).exp()), float((2 * h["log_sn"][a]).exp())
    Kzz = cross_kernel(h, Z, Z)[a] + JITTER * sf2 * torch.eye(len(Z), dtype=F64)
    Kzx = cross_kernel(h, Z, X)[a]
    Q = Kzx.T @ torch.linalg.inv(Kzz) @ Kzx
    lam = torch.diag(sf2 - torch.diagonal(Q) + sn2 + 1e-8)
    A = Kzz + Kzx @ torch.linalg.inv(lam) @ Kzx.T
    beta = torch.linalg.inv(A) @ Kzx @ torch.linalg.inv(lam) @ gp.Y[:, a]
    return Q + lam, beta, torch.linalg.inv(Kzz) - torch.linalg.inv(A), Kzz


def test_the_likelihood_is_the_gaussian_density_with_the_fitc_covariance(sparse):
    want = -sum(torch.distributions.MultivariateNormal(
        torch.zeros(len(sparse.X), dtype=F64), _textbook(sparse, a)[0]).log_prob(sparse.Y[:, a])
        for a in range(2))
    got = sparse.neg_log_likelihood(sparse.hyper) - sparse.barrier(sparse.hyper)
    assert float(got) == pytest.approx(float(want), rel=1e-7)


def test_the_posterior_is_the_textbook_fitc_posterior(sparse):
    """Mean k_*z beta and variance sf^2 - k_*z (K_zz^-1 - A^-1) k_z*, beta = A^-1 K_zx
    Lambda^-1 y, at two inputs off the data."""
    x = torch.tensor([[0.3, -1.0, 0.5], [1.5, 0.2, -0.7]], dtype=F64)
    mean, var = sparse.predict(x)
    for a in range(2):
        _, beta, inv_k, _ = _textbook(sparse, a)
        ks = cross_kernel(sparse.hyper, x, sparse.hyper["inducing"])[a]
        sf2 = (2 * sparse.hyper["log_sf"][a]).exp()
        assert torch.allclose(mean[:, a], ks @ beta, atol=1e-7)
        assert torch.allclose(var[:, a], sf2 - ((ks @ inv_k) * ks).sum(1), atol=1e-7)


def test_with_the_data_as_inducing_inputs_it_is_the_exact_gp():
    X, Y = _data(40)
    exact = ExactGP(X, Y)
    exact.fit(40)
    sparse = SparseGP(X, Y, len(X), {**exact.hyper, "inducing": X.clone()}, torch.Generator())
    x = torch.rand(6, 3, dtype=F64, generator=torch.Generator().manual_seed(1)) * 4 - 2
    for got, want in zip(sparse.predict(x), exact.predict(x)):
        assert torch.allclose(got, want, atol=5e-4)
    assert float(sparse.neg_log_likelihood(sparse.hyper)) == pytest.approx(
        float(exact.neg_log_likelihood(exact.hyper)), abs=0.05)


@pytest.mark.parametrize("seed,scale", [(0, 0.1), (1, 0.4), (2, 0.8)])
def test_moment_matching_equals_monte_carlo(sparse, seed, scale):
    """Mean, covariance (the GP's own variance included) and input-output factor of f(x),
    x ~ N(m, S), against the sparse posterior sampled."""
    g = torch.Generator().manual_seed(seed)
    B = torch.randn(3, 3, generator=g, dtype=F64) * scale
    m, S = torch.randn(3, generator=g, dtype=F64) * 0.5, B @ B.T + 0.01 * torch.eye(3, dtype=F64)
    got = sparse.moments(m, S)
    x = m + torch.randn(400_000, 3, generator=g, dtype=F64) @ torch.linalg.cholesky(S).T
    mean, var = sparse.predict(x)
    xc, yc = x - x.mean(0), mean - mean.mean(0)
    want_cov = yc.T @ yc / len(x) + torch.diag(var.mean(0))
    want_io = torch.linalg.solve(xc.T @ xc / len(x), xc.T @ yc / len(x))
    assert torch.allclose(got.mean, mean.mean(0), atol=3e-3)
    assert torch.allclose(got.cov, want_cov, atol=3e-3, rtol=2e-2)
    assert torch.allclose(got.io, want_io, atol=5e-3, rtol=3e-2)


def test_the_fit_learns_the_inducing_inputs():
    """n = 300 noisy points, M = 15: the fit moves Z, raises the likelihood, and predicts the
    function at held-out inputs better than the same M at their random start."""
    X, Y = _data(300, seed=4)
    start = SparseGP(X, Y, 15, None, torch.Generator().manual_seed(0))
    Z0, before = start.hyper["inducing"].clone(), float(start.neg_log_likelihood(start.hyper))
    fitted = SparseGP(X, Y, 15, None, torch.Generator().manual_seed(0))
    after = fitted.fit(100)
    assert after < before - 50
    assert (fitted.hyper["inducing"] - Z0).abs().max() > 0.05
    x = torch.rand(500, 3, dtype=F64, generator=torch.Generator().manual_seed(5)) * 4 - 2

    def rmse(gp):
        return float(((gp.predict(x)[0] - _function(x)) ** 2).mean().sqrt())

    frozen = SparseGP(X, Y, 15, {**fitted.hyper, "inducing": Z0}, torch.Generator())
    assert rmse(fitted) < 0.05
    assert rmse(fitted) < 0.3 * rmse(frozen)


def test_the_agent_switches_to_the_sparse_gp_past_pilco_inducing():
    from mbrl_ray.agents.pilco import PILCOLearner
    from mbrl_ray.config import apply_overrides, load_preset
    from mbrl_ray.envs.spec import EnvSpec
    cfg = apply_overrides(load_preset("pilco-cartpole-swingup"), ["pilco.inducing=30"])
    agent = PILCOLearner(EnvSpec.state(4, 1), cfg)
    rng = np.random.default_rng(0)

    def data(n):
        obs = rng.normal(size=(n, 4))
        return {"obs": obs, "next_obs": obs + 0.1 * rng.normal(size=(n, 4)),
                "action": rng.uniform(-1, 1, (n, 1))}

    assert type(agent.model(data(30))) is ExactGP
    agent.hyper = {"log_ell": torch.zeros(4, 6, dtype=F64), "log_sf": torch.zeros(4, dtype=F64),
                   "log_sn": torch.full((4,), -2.0, dtype=F64)}
    sparse = agent.model(data(31))
    assert type(sparse) is SparseGP and sparse.centres.shape == (30, 6)
    agent.hyper = sparse.hyper  # the next fit starts from these inducing inputs
    assert torch.equal(agent.model(data(50)).centres, sparse.centres)
