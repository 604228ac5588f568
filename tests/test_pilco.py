"""PILCO and Deep PILCO. PILCO's moment matching against Monte-Carlo propagation through the
same functions: the GP (3 input distributions, several outputs, correlated inputs), the RBF
policy, the angle's (sin, cos), the sine squashing, the saturating cost and one whole step; the
GP against its textbook posterior and likelihood; the cart-pole's equations against energy
conservation; the agent's trial bookkeeping. Deep PILCO's masks, resampling, particle cost and
network by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mbrl_ray.envs import cartpole_swingup as cp
from mbrl_ray.planners.moments import (Joint, saturating_cost, se_moments, sin_squash_moments,
                                       trig_moments)
from mbrl_ray.world_models.gp import ExactGP

pytestmark = pytest.mark.unit
F64 = torch.float64
SAMPLES = 400_000


def _gaussian(D, seed, scale):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(D, D, generator=g, dtype=F64) * scale
    return torch.randn(D, generator=g, dtype=F64) * 0.5, A @ A.T + 0.01 * torch.eye(D, dtype=F64)


def _samples(m, S, seed=0):
    g = torch.Generator().manual_seed(seed)
    return m + torch.randn(SAMPLES, len(m), generator=g, dtype=F64) @ torch.linalg.cholesky(S).T


def _mc(x, y):
    """Monte-Carlo mean, covariance and input-output factor S^-1 cov(x, y)."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    cross = xc.T @ yc / len(x)
    return y.mean(0), yc.T @ yc / len(y), torch.linalg.solve(xc.T @ xc / len(x), cross)


@pytest.fixture(scope="module")
def gp():
    g = torch.Generator().manual_seed(3)
    X = torch.rand(40, 3, generator=g, dtype=F64) * 4 - 2
    Y = torch.stack([torch.sin(X[:, 0]) * X[:, 1], torch.cos(X[:, 2]) + 0.3 * X[:, 0]], -1)
    Y = Y + 0.05 * torch.randn(Y.shape, generator=g, dtype=F64)
    model = ExactGP(X, Y)
    model.fit(60)
    return model


@pytest.mark.parametrize("seed,scale", [(0, 0.1), (1, 0.4), (2, 0.8)])
def test_gp_moment_matching_equals_monte_carlo(gp, seed, scale):
    """Mean, covariance (the GP's own variance included) and input-output covariance of f(x)
    at x ~ N(m, S), against f's posterior mean sampled plus its expected variance."""
    m, S = _gaussian(3, seed, scale)
    got = gp.moments(m, S)
    x = _samples(m, S, seed)
    mean, var = gp.predict(x)
    want_mean, want_cov, want_io = _mc(x, mean)
    want_cov = want_cov + torch.diag(var.mean(0))  # law of total variance, outputs independent
    assert torch.allclose(got.mean, want_mean, atol=3e-3)
    assert torch.allclose(got.cov, want_cov, atol=3e-3, rtol=2e-2)
    assert torch.allclose(got.io, want_io, atol=5e-3, rtol=3e-2)
    assert (got.cov - got.cov.T).abs().max() < 1e-12


def test_gp_prediction_is_the_textbook_posterior(gp):
    """Mean k^T (K + sn^2 I)^-1 y and variance sf^2 - k^T (K + sn^2 I)^-1 k, written out."""
    x = torch.tensor([[0.3, -1.0, 0.5], [1.5, 0.2, -0.7]], dtype=F64)
    mean, var = gp.predict(x)
    for a in range(2):
        ell = gp.hyper["log_ell"][a].exp()
        sf2, sn2 = (2 * gp.hyper["log_sf"][a]).exp(), (2 * gp.hyper["log_sn"][a]).exp()

        def k(A, B):
            return sf2 * torch.exp(-0.5 * torch.cdist(A / ell, B / ell) ** 2)

        K = k(gp.X, gp.X) + (sn2 + 1e-8) * torch.eye(len(gp.X), dtype=F64)
        ks = k(x, gp.X)
        assert torch.allclose(mean[:, a], ks @ torch.linalg.solve(K, gp.Y[:, a]), atol=1e-9)
        assert torch.allclose(var[:, a], sf2 - (ks * torch.linalg.solve(K, ks.T).T).sum(1),
                              atol=1e-9)


def test_the_negative_log_likelihood_is_the_gaussian_density_of_the_targets(gp):
    """At the initial hyperparameters (inside the barrier's flat region):
    -sum_a log N(y_a; 0, K_a)."""
    gp = ExactGP(gp.X, gp.Y)
    want = -sum(torch.distributions.MultivariateNormal(
        torch.zeros(len(gp.X), dtype=F64), gp._kernel(gp.hyper)[a]).log_prob(gp.Y[:, a])
        for a in range(2))
    assert float(gp.neg_log_likelihood(gp.hyper)) == pytest.approx(float(want), rel=1e-9)


def test_the_fit_raises_the_marginal_likelihood():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(30, 2, generator=g, dtype=F64)
    Y = torch.sin(6 * X[:, :1]) + 0.01 * torch.randn(30, 1, generator=g, dtype=F64)
    model = ExactGP(X, Y)
    before = float(model.neg_log_likelihood(model.hyper))
    after = model.fit(50)
    assert after < before - 10
    assert model.hyper["log_ell"][0, 0] < model.hyper["log_ell"][0, 1]  # x_2 is irrelevant


def test_rbf_policy_moments_equal_monte_carlo():
    """The deterministic RBF network (free weights, no GP variance) at a correlated input."""
    g = torch.Generator().manual_seed(5)
    centres = torch.randn(12, 4, generator=g, dtype=F64)
    beta = torch.randn(2, 12, generator=g, dtype=F64)
    ell = torch.rand(2, 4, generator=g, dtype=F64) + 0.5
    sf2 = torch.tensor([1.0, 0.7], dtype=F64)
    m, S = _gaussian(4, 7, 0.5)
    got = se_moments(m, S, centres, beta, ell, sf2)
    x = _samples(m, S)
    y = torch.stack([(beta[a] * sf2[a] * torch.exp(-0.5 * (((x[:, None] - centres) / ell[a]) ** 2)
                                                   .sum(-1))).sum(-1) for a in range(2)], -1)
    want_mean, want_cov, want_io = _mc(x, y)
    assert torch.allclose(got.mean, want_mean, atol=3e-3)
    assert torch.allclose(got.cov, want_cov, atol=3e-3, rtol=2e-2)
    assert torch.allclose(got.io, want_io, atol=5e-3, rtol=3e-2)


@pytest.mark.parametrize("mean,var", [(0.3, 0.05), (2.5, 0.6), (-1.2, 2.0)])
def test_trig_moments_equal_monte_carlo(mean, var):
    m, v = torch.tensor(mean, dtype=F64), torch.tensor(var, dtype=F64)
    got = trig_moments(m, v)
    t = _samples(m[None], v.reshape(1, 1))
    want_mean, want_cov, want_io = _mc(t, torch.cat([torch.sin(t), torch.cos(t)], 1))
    assert torch.allclose(got.mean, want_mean, atol=3e-3)
    assert torch.allclose(got.cov, want_cov, atol=3e-3)
    assert torch.allclose(got.io, want_io, atol=5e-3)


def test_sin_squash_moments_equal_monte_carlo_with_two_correlated_actions():
    m = torch.tensor([0.4, -1.1], dtype=F64)
    S = torch.tensor([[0.5, 0.3], [0.3, 0.9]], dtype=F64)
    got = sin_squash_moments(m, S, u_max=2.0)
    z = _samples(m, S)
    u = 2.0 * (9 * torch.sin(z) + torch.sin(3 * z)) / 8
    want_mean, want_cov, want_io = _mc(z, u)
    assert torch.allclose(got.mean, want_mean, atol=3e-3)
    assert torch.allclose(got.cov, want_cov, atol=5e-3)
    assert torch.allclose(got.io, want_io, atol=5e-3)
    assert u.abs().max() <= 2.0


@pytest.mark.parametrize("seed,scale", [(0, 0.05), (1, 0.3), (2, 1.0)])
def test_saturating_cost_equals_monte_carlo(seed, scale):
    m, S = _gaussian(2, seed, scale)
    target = torch.tensor([0.2, -0.4], dtype=F64)
    got = saturating_cost(m, S, target, 0.25)
    y = _samples(m, S, seed)
    want = (1 - torch.exp(-0.5 * ((y - target) ** 2).sum(1) / 0.25 ** 2)).mean()
    assert float(got) == pytest.approx(float(want), abs=2e-3)


def test_joint_append_carries_cross_covariances():
    """x ~ N(m, S) in 2-D; appending y = (sin, cos) of x_1 gives cov(x_0, sin x_1), which only
    the joint's cross term can carry."""
    m = torch.tensor([0.5, 1.0], dtype=F64)
    S = torch.tensor([[0.4, 0.25], [0.25, 0.3]], dtype=F64)
    joint = Joint(m, S).append([1], trig_moments(m[1], S[1, 1]))
    x = _samples(m, S)
    full = torch.cat([x, torch.sin(x[:, 1:]), torch.cos(x[:, 1:])], 1)
    assert torch.allclose(joint.cov, torch.cov(full.T), atol=4e-3)


def _energy(s):
    _, v, w, theta = s
    m, M, l = cp.POLE_MASS, cp.CART_MASS, cp.LENGTH
    kinetic = 0.5 * (M + m) * v * v + 0.5 * m * l * v * w * math.cos(theta) + m * l * l * w * w / 6
    return kinetic - m * cp.GRAVITY * l / 2 * math.cos(theta)


def test_cartpole_equations_conserve_energy_without_friction_or_force(monkeypatch):
    monkeypatch.setattr(cp, "FRICTION", 0.0)
    s = np.array([0.1, 0.5, 2.0, 2.5])
    start = _energy(s)
    for _ in range(250):
        s = cp.rk4(s, 0.0, cp.DT / cp.SUBSTEPS)
    assert _energy(s) == pytest.approx(start, abs=1e-5)
    assert abs(s[2]) > 0.1  # it moved


def test_cartpole_force_accelerates_the_cart_and_swings_the_pole_back():
    d = cp.derivative(np.zeros(4), 10.0)
    assert d[1] > 0 and d[2] < 0  # pushed right, the hanging pole lags (theta'' < 0)


# ---- PILCO's policy and trial bookkeeping -----------------------------------------------------
def _policy(seed=0):
    from mbrl_ray.planners.pilco_rollout import RBFPolicy
    g = torch.Generator().manual_seed(seed)
    return RBFPolicy(3, 1, 10, g, torch.zeros(3, dtype=F64), torch.full((3,), 0.8, dtype=F64),
                     torch.tensor([1.0, 0.7, 0.7], dtype=F64))


def test_policy_moments_through_the_squash_equal_monte_carlo():
    """The RBF network's moments, then the squashing's, chained as a rollout step chains them,
    against the policy itself applied to samples."""
    policy = _policy()
    m, S = torch.tensor([0.2, -0.3, 0.5], dtype=F64), torch.diag(torch.tensor([0.3, 0.2, 0.4],
                                                                             dtype=F64))
    with torch.no_grad():
        joint = Joint(m, S).append([0, 1, 2], policy.moments(m, S))
        joint = joint.append([3], sin_squash_moments(*joint.block([3])))
        x = _samples(m, S)
        u = policy(x)
    want_mean, want_cov, want_io = _mc(x, u)
    assert float(joint.mean[4]) == pytest.approx(float(want_mean[0]), abs=3e-3)
    assert float(joint.cov[4, 4]) == pytest.approx(float(want_cov[0, 0]), abs=3e-3)
    assert torch.allclose(torch.linalg.solve(S, joint.cov[:3, 4:]), want_io, atol=5e-3)
    assert u.abs().max() <= 1.0


def test_the_policy_is_a_gp_mean_through_its_pseudo_targets():
    """beta = (K + 0.01^2 I)^-1 t: at its own centres the pre-squash output is its targets."""
    policy = _policy()
    with torch.no_grad():
        got = policy.pre_squash(policy.centres)[:, 0]
    assert torch.allclose(got, policy.targets[0], atol=1e-3)


def test_the_tasks_distance_is_the_envs_tip_distance():
    from mbrl_ray.moment_tasks import moment_task
    states = np.random.default_rng(0).normal(0, 2, (50, 4))
    got = moment_task(cp.ID).distance(torch.as_tensor(states)).numpy()
    np.testing.assert_allclose(got, cp.tip_distance(states), atol=1e-12)


def test_trial_logs_measure_each_trials_end_and_cost():
    """Two trials of 25 chained steps: the end distance is the worst tip distance over either
    trial's last 5 states, the cost their mean saturating cost, the prediction the last fit's."""
    from mbrl_ray.agents import make_learner
    from mbrl_ray.config import apply_overrides, load_preset
    from mbrl_ray.envs import env_kwargs, env_spec
    cfg = apply_overrides(load_preset("pilco-cartpole-swingup"), ["pilco.horizon=10"])
    agent = make_learner(env_spec(cfg.env.id, **env_kwargs(cfg.env)), cfg, seed=0)
    rng = np.random.default_rng(1)
    states = rng.normal(0, 2, (2, 26, 4))
    data = {"obs": states[:, :-1].reshape(50, 4), "next_obs": states[:, 1:].reshape(50, 4)}
    agent.seen, agent.trained, agent.predicted = 25, True, 12.5
    logs = agent.trial_logs({k: np.concatenate([np.zeros((25, 4)), v]) for k, v in data.items()},
                            env_steps=75)
    assert logs["pilco_trial_end_distance"] == pytest.approx(
        cp.tip_distance(states[:, -5:]).max())
    assert logs["pilco_trial_cost"] == pytest.approx(cp.saturating_cost(states[:, 1:]).sum() / 2)
    assert logs["pilco_trial_predicted_cost"] == 12.5 and agent.seen == 75
    data["next_obs"][3] += 1.0  # not chained: no end distance claimed
    agent.seen = 25
    assert "pilco_trial_end_distance" not in agent.trial_logs(
        {k: np.concatenate([np.zeros((25, 4)), v]) for k, v in data.items()}, env_steps=75)


@pytest.mark.parametrize("std,gain", [(1e-4, 1.0), (0.05, 1.0), (0.05, 8.0)])
def test_one_step_of_moments_equals_monte_carlo_through_policy_and_gp(std, gain):
    """x ~ N(m, std^2 I) pushed through the cart-pole's policy and a GP fitted to real
    transitions: the moment-matched x' against x + f(x, pi(x)) sampled (f from the GP's
    posterior at each sample). At std 1e-4 this is the deterministic step; at 0.05 the
    covariance, including the state-delta cross term, must match too; with the policy's
    targets x8 and widths / sqrt(8) its actions spread over the start distribution."""
    from mbrl_ray.moment_tasks import moment_task
    from mbrl_ray.planners.pilco_rollout import propagate, step_joint
    task = moment_task(cp.ID)
    rng = np.random.default_rng(0)
    s, xs, us = np.zeros(4), [], []
    for _ in range(60):
        u = rng.uniform(-1, 1)
        xs.append(s.copy())
        us.append(u)
        for _ in range(cp.SUBSTEPS):
            s = cp.rk4(s, cp.MAX_FORCE * u, cp.DT / cp.SUBSTEPS)
    xs.append(s)
    x, u = torch.tensor(np.array(xs)), torch.tensor(us)[:, None]
    gp = ExactGP(task.model_inputs(x[:-1], u), x[1:] - x[:-1])
    gp.fit(30)
    g = torch.Generator().manual_seed(0)
    from mbrl_ray.planners.pilco_rollout import RBFPolicy
    policy = RBFPolicy(5, 1, 10, g, torch.zeros(5, dtype=F64), torch.full((5,), 0.5, dtype=F64),
                       torch.tensor([1, 1, 1, 0.7, 0.7], dtype=F64))
    with torch.no_grad():
        policy.targets *= gain
        policy.log_ell -= math.log(gain) / 2  # and narrower bumps
    m = torch.tensor([0.1, 0.3, -0.5, 0.4], dtype=F64)
    S = std ** 2 * torch.eye(4, dtype=F64)
    with torch.no_grad():
        got_m, got_S = propagate(task, policy, gp, m, S)
        joint, u_at, _ = step_joint(task, policy, gp, m, S)
        samples = _samples(m, S)[:100_000]
        action = policy(task.augment(samples)[:, list(task.policy_inputs)])
        mean, var = gp.predict(task.model_inputs(samples, action))
        nxt = samples + mean + var.sqrt() * torch.randn(mean.shape, generator=g, dtype=F64)
    assert float(joint.mean[u_at[0]]) == pytest.approx(float(action.mean()), abs=3e-3)
    assert float(joint.cov[u_at[0], u_at[0]]) == pytest.approx(float(action.var()), abs=1e-5,
                                                               rel=0.05)
    assert torch.allclose(got_m, nxt.mean(0), atol=3e-3)
    want = torch.cov(nxt.T)
    assert torch.allclose(got_S, want, atol=2e-4 + 0.1 * want.abs().max())


# ---- Deep PILCO ---------------------------------------------------------------------------------
def _dropout_net(p=0.2):
    from mbrl_ray.world_models.dropout_net import DropoutDynamics
    torch.manual_seed(0)
    net = DropoutDynamics(3, 2, 32, 2, p).double()
    net.inp_norm.fit(torch.randn(50, 3, dtype=F64))
    net.out_norm.fit(torch.randn(50, 2, dtype=F64))
    return net


def test_a_particles_mask_fixes_its_dynamics_and_particles_differ():
    """Each row's masks are one sample of the dynamics: the same masks give the same function
    on any input (a particle's rollout is reproducible), other rows' masks another."""
    net = _dropout_net()
    masks = net.sample_masks(4, torch.Generator().manual_seed(1))
    x = torch.randn(4, 3, dtype=F64)
    with torch.no_grad():
        first, again = net(x, masks), net(x, [m.clone() for m in masks])
        same_input = net(x[:1].expand(4, 3), masks)
    assert torch.equal(first, again)
    assert all(not torch.allclose(same_input[0], same_input[k]) for k in range(1, 4))
    again_masks = net.sample_masks(4, torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(masks, again_masks))


def test_masks_keep_units_at_rate_one_minus_p_scaled_to_mean_one():
    net = _dropout_net(p=0.2)
    masks = net.sample_masks(20_000, torch.Generator().manual_seed(0))
    assert set(torch.unique(masks[0]).tolist()) == {0.0, 1.25}
    assert float(masks[0].mean()) == pytest.approx(1.0, abs=0.01)


def test_resampling_draws_from_the_particles_gaussian():
    """Given the particles' own whitened values as noise, resampling returns the particles
    (mean + L L^-1 (x - mean)); given fresh noise, its moments are the particles'."""
    from mbrl_ray.planners.particle_rollout import JITTER, resample
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 3, generator=g, dtype=F64) @ torch.tensor(
        [[1.0, 0.5, 0.0], [0.0, 0.3, 0.2], [0.0, 0.0, 0.7]], dtype=F64) + 2.0
    mean = x.mean(0)
    L = torch.linalg.cholesky(torch.cov(x.T) + JITTER * torch.eye(3, dtype=F64))
    white = torch.linalg.solve_triangular(L, (x - mean).T, upper=False).T
    assert torch.allclose(resample(x, white), x, atol=1e-10)
    many = resample(x, torch.randn(200_000, 3, generator=g, dtype=F64))
    assert torch.allclose(many.mean(0), mean, atol=0.01)
    assert torch.allclose(torch.cov(many.T), torch.cov(x.T), atol=0.01)


def test_particle_costs_are_the_particles_mean_saturating_cost():
    """A particle rollout's first cost against one step written out with the same draws."""
    from mbrl_ray.moment_tasks import moment_task
    from mbrl_ray.planners.particle_rollout import particle_costs, resample
    from mbrl_ray.world_models.dropout_net import DropoutDynamics
    task = moment_task(cp.ID)
    torch.manual_seed(0)
    net = DropoutDynamics(6, 4, 16, 2, 0.1).double()
    policy = _policy_5()
    got = particle_costs(task, policy, net, 1, 7, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    masks = net.sample_masks(7, g)
    x = torch.randn(7, 4, generator=g, dtype=F64) * task.start_std
    with torch.no_grad():
        u = policy(task.augment(x)[:, list(task.policy_inputs)])
        x = resample(x + net(task.model_inputs(x, u), masks),
                     torch.randn(7, 4, generator=g, dtype=F64))
    want = cp.saturating_cost(x.numpy()).mean()
    assert float(got[0]) == pytest.approx(float(want), rel=1e-9)


def _policy_5():
    from mbrl_ray.planners.pilco_rollout import RBFPolicy
    return RBFPolicy(5, 1, 10, torch.Generator().manual_seed(0), torch.zeros(5, dtype=F64),
                     torch.full((5,), 0.5, dtype=F64),
                     torch.tensor([1, 1, 1, 0.7, 0.7], dtype=F64))


def test_the_dropout_network_learns_a_known_function():
    """Trained as the agent trains it, its prediction averaged over masks recovers y = A x."""
    from mbrl_ray.world_models.dropout_net import DropoutDynamics
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    A = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.0, 1.5]], dtype=F64)
    x = torch.randn(400, 3, generator=g, dtype=F64)
    y = x @ A.T
    net = DropoutDynamics(3, 2, 64, 2, 0.05).double()
    net.inp_norm.fit(x)
    net.out_norm.fit(y)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(1500):
        idx = torch.randint(400, (64,), generator=g)
        loss = net.loss(x[idx], y[idx], net.sample_masks(64, g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    test = torch.randn(20, 3, generator=g, dtype=F64)
    with torch.no_grad():
        pred = torch.stack([net(test, net.sample_masks(20, g)) for _ in range(200)]).mean(0)
    assert torch.allclose(pred, test @ A.T, atol=0.25)


def test_reinforce_estimates_the_gradient_the_pathwise_derivative_estimates():
    """The same expectation E[sum_t c(x_t)], actions pi(x) + std eps clipped, each particle its
    own dropout mask, no resampling, 3 steps: REINFORCE's likelihood-ratio gradient against the
    reparameterised (pathwise) gradient written out here, both from 200,000 particles. The
    start is near upright, where the cost has slope."""
    from dataclasses import replace

    from mbrl_ray.moment_tasks import moment_task
    from mbrl_ray.planners.particle_rollout import reinforce_surrogate
    from mbrl_ray.world_models.dropout_net import DropoutDynamics
    task = replace(moment_task(cp.ID), start_mean=(0.0, 0.0, 0.0, math.pi - 0.3), start_std=0.2)
    torch.manual_seed(0)
    net = DropoutDynamics(6, 4, 16, 2, 0.1).double()
    for layer in net.hidden:  # larger weights: the cost moves within 3 steps
        layer.weight.data *= 3
    policy, K, std = _policy_5(), 200_000, 0.3
    with torch.no_grad():
        policy.targets *= 4

    def grad(loss):
        policy.zero_grad()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in policy.parameters()])

    surrogate, cost = reinforce_surrogate(task, policy, net, 3, K, std,
                                          torch.Generator().manual_seed(1))
    got = grad(surrogate)
    g = torch.Generator().manual_seed(2)
    masks = net.sample_masks(K, g)
    x = torch.tensor(task.start_mean, dtype=F64) + \
        torch.randn(K, 4, generator=g, dtype=F64) * task.start_std
    total = 0.0
    for _ in range(3):
        a = policy(task.augment(x)[:, list(task.policy_inputs)])
        a = a + std * torch.randn(a.shape, generator=g, dtype=F64)
        x = x + net(task.model_inputs(x, a.clamp(-1.0, 1.0)), masks)
        total = total + task.cost(x).mean()
    want = grad(total)
    assert float(cost) == pytest.approx(float(total.detach()), abs=0.01)
    assert float(want.norm()) > 0.05
    cosine = float(got @ want / (got.norm() * want.norm()))
    assert cosine > 0.99
    assert float(got.norm()) == pytest.approx(float(want.norm()), rel=0.05)


def test_reinforces_baseline_makes_its_gradient_blind_to_a_constant_added_to_the_cost():
    """The particles' mean cost-to-go is subtracted at each step, so a cost shifted by a
    constant gives the same gradient from the same draws (without it, the estimate moves)."""
    from mbrl_ray.moment_tasks import moment_task
    from mbrl_ray.planners.particle_rollout import reinforce_surrogate
    from mbrl_ray.world_models.dropout_net import DropoutDynamics
    task = moment_task(cp.ID)

    class Shifted:
        def __getattr__(self, name):
            return getattr(task, name)

        def cost(self, x):
            return task.cost(x) + 10.0

    torch.manual_seed(0)
    net, policy = DropoutDynamics(6, 4, 16, 2, 0.1).double(), _policy_5()
    grads = []
    for t in (task, Shifted()):
        policy.zero_grad()
        reinforce_surrogate(t, policy, net, 4, 64, 0.3, torch.Generator().manual_seed(0)
                            )[0].backward()
        grads.append(torch.cat([p.grad.flatten() for p in policy.parameters()]))
    assert float(grads[0].norm()) > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-10)


@pytest.mark.parametrize("gradient", ["pathwise", "reinforce"])
def test_deep_pilco_fits_with_either_policy_gradient(gradient):
    """A fit on a trial's rows trains the network and moves the policy, with finite logs."""
    from mbrl_ray.agents.deep_pilco import DeepPILCOLearner
    from mbrl_ray.config import apply_overrides, load_preset
    from mbrl_ray.envs.spec import EnvSpec
    cfg = apply_overrides(load_preset("deep-pilco-cartpole-swingup"), [
        f"deep_pilco.policy_gradient={gradient}", "deep_pilco.model_steps=5",
        "deep_pilco.policy_steps=3", "deep_pilco.hidden_size=16"])
    agent = DeepPILCOLearner(EnvSpec.state(4, 1), cfg)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(25, 4))
    data = {"obs": obs, "next_obs": obs + 0.1 * rng.normal(size=(25, 4)),
            "action": rng.uniform(-1, 1, (25, 1))}
    before = [p.detach().clone() for p in agent.policy.parameters()]
    logs = agent.fit(data, env_steps=25)
    assert all(np.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters()))


def _deep_pilco_steps(overrides: list[str]) -> tuple[list[float], list[float]]:
    """Costs and (clipped) gradient norms of each policy step of a search on a trial's rows,
    the steps recorded as the agent's optimiser takes them."""
    from mbrl_ray.agents.deep_pilco import DeepPILCOLearner
    from mbrl_ray.config import apply_overrides, load_preset
    from mbrl_ray.envs.spec import EnvSpec
    cfg = apply_overrides(load_preset("deep-pilco-cartpole-swingup"), [
        "deep_pilco.model_steps=5", "deep_pilco.hidden_size=16", "deep_pilco.particles=8",
        "pilco.horizon=5", "deep_pilco.policy_steps=4", "deep_pilco.policy_lr=1e-12",
        *overrides])
    agent = DeepPILCOLearner(EnvSpec.state(4, 1), cfg)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(25, 4))
    agent.fit_dynamics({"obs": obs, "next_obs": obs + 0.1 * rng.normal(size=(25, 4)),
                        "action": rng.uniform(-1, 1, (25, 1))})
    costs, norms = [], []
    objective, step = agent.policy_objective, agent.policy_opt.step

    def record_cost(draws):
        loss, cost = objective(draws)
        costs.append(float(cost))
        return loss, cost

    def record_norm(*a, **k):
        norms.append(float(torch.cat([p.grad.flatten() for p in agent.policy.parameters()]
                                     ).norm()))
        return step(*a, **k)

    agent.policy_objective, agent.policy_opt.step = record_cost, record_norm
    agent.search_policy()
    return costs, norms


def test_deep_pilco_search_holds_its_draws_for_resample_every_steps_and_clips():
    """Common random numbers: with resample_every=2 steps 1-2 and 3-4 each see one set of
    masks, starts and noise (the policy barely moves at lr 1e-12, so equal draws give equal
    costs) and the two sets differ; with 0 every step draws afresh. policy_clip bounds the
    gradient's norm; without it the norm is larger."""
    held, norms = _deep_pilco_steps(["deep_pilco.resample_every=2"])
    assert held[0] == pytest.approx(held[1], abs=1e-9)
    assert held[2] == pytest.approx(held[3], abs=1e-9)
    assert held[1] != pytest.approx(held[2], abs=1e-6)
    fresh, _ = _deep_pilco_steps(["deep_pilco.resample_every=0"])
    assert len(set(round(c, 9) for c in fresh)) == 4
    _, clipped = _deep_pilco_steps(["deep_pilco.resample_every=2", "deep_pilco.policy_clip=1e-6"])
    assert min(norms) > 1e-5  # unclipped; clipped: scaled by clip / (norm + 1e-6) (torch's eps)
    assert clipped == pytest.approx([1e-6 * n / (n + 1e-6) for n in norms], rel=1e-6)
