"""Guided policy search's parts, each against an independent computation: the LQR backward pass
against the Riccati recursion and the discrete algebraic Riccati equation; the trajectory KL
against a Monte Carlo estimate; the KL-bounded step; the linear-Gaussian fit recovering a known
system; the importance-sampled objective and its mixture densities by hand; the task costs
against the envs' rewards; fixed starts; the agent's episodes, acting and a resumed fit."""
from __future__ import annotations

import copy
import math

import gymnasium as gym
import numpy as np
import pytest
import scipy.linalg
import torch

from mbrl_ray import seeding
from mbrl_ray.agents import make_actor, make_learner
from mbrl_ray.agents.gps_policy import (importance_objective, mixture_log_density,
                                        policy_log_density, supervised_loss)
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs import env_kwargs, env_spec, make_env
from mbrl_ray.envs.batch import EnvBatch, StreamRows
from mbrl_ray.envs.conditions import initial_observations
from mbrl_ray.planners.lqg import (Controller, Dynamics, Limits, QuadraticCost, _expansion,
                                   adjusted_multiplier, backward, box_qp, expected_cost,
                                   kl_divergence, kl_step, marginals, step_back)
from mbrl_ray.replay import StreamStorage, all_transitions
from mbrl_ray.task_costs import SMOOTHING, task_cost
from mbrl_ray.world_models.linear_gaussian import JointGaussian, fit_dynamics, posterior_cov

pytestmark = pytest.mark.unit
F64 = torch.float64


def _system(T: int = 40):
    """A 3-state, 2-action linear system (not diagonal, one mode unstable), quadratic cost."""
    A = torch.tensor([[1.0, 0.1, 0.0], [0.0, 1.0, 0.1], [0.05, 0.0, 1.02]], dtype=F64)
    B = torch.tensor([[0.0, 0.0], [0.1, 0.02], [0.0, 0.2]], dtype=F64)
    Q = torch.diag(torch.tensor([1.0, 0.5, 0.2], dtype=F64))
    R = torch.tensor([[0.3, 0.05], [0.05, 0.1]], dtype=F64)
    n, m = 3, 2
    dyn = Dynamics(torch.cat([A, B], 1).expand(T, n, n + m).clone(),
                   torch.tensor([0.01, -0.02, 0.0], dtype=F64).expand(T, n).clone(),
                   (1e-3 * torch.eye(n, dtype=F64)).expand(T, n, n).clone(),
                   torch.tensor([1.0, -0.5, 0.3], dtype=F64), 1e-2 * torch.eye(n, dtype=F64))
    cost = QuadraticCost(torch.block_diag(Q, R).expand(T, n + m, n + m).clone(),
                         torch.zeros(T, n + m, dtype=F64), 2 * Q, torch.zeros(n, dtype=F64))
    return A, B, Q, R, dyn, cost


# ---- LQR and the KL-bounded step ------------------------------------------------------------
def test_the_backward_pass_is_the_riccati_recursion_and_converges_to_the_dare_gain():
    A, B, Q, R, dyn, cost = _system(T=200)
    dyn.f.zero_()
    ctrl = backward(dyn, cost, 1.0, None)
    P = 2 * Q.numpy()  # the final cost
    A_, B_, Q_, R_ = (M.numpy() for M in (A, B, Q, R))
    for t in reversed(range(200)):
        S = R_ + B_.T @ P @ B_
        K = -np.linalg.solve(S, B_.T @ P @ A_)
        np.testing.assert_allclose(ctrl.K[t].numpy(), K, atol=1e-8)
        np.testing.assert_allclose(ctrl.cov[t].numpy(), np.linalg.inv(S), atol=1e-8)
        P = Q_ + A_.T @ P @ A_ + A_.T @ P @ B_ @ K
    dare = scipy.linalg.solve_discrete_are(A_, B_, Q_, R_)
    K_inf = -np.linalg.solve(R_ + B_.T @ dare @ B_, B_.T @ dare @ A_)
    np.testing.assert_allclose(ctrl.K[0].numpy(), K_inf, atol=1e-6)
    np.testing.assert_allclose(ctrl.k.numpy(), 0.0, atol=1e-12)  # no drift, no linear cost


def test_the_backward_pass_with_drift_and_a_linear_cost_is_the_affine_lqr_solution():
    """Against the same recursion on the augmented state [x; 1]."""
    A, B, Q, R, dyn, cost = _system(T=5)
    cost.c[:, :3] = torch.tensor([0.3, -0.2, 0.1], dtype=F64)
    cost.c[:, 3:] = torch.tensor([0.05, -0.1], dtype=F64)
    ctrl = backward(dyn, cost, 1.0, None)
    f = dyn.f[0].numpy()
    Aa = np.block([[A.numpy(), f[:, None]], [np.zeros((1, 3)), np.ones((1, 1))]])
    Ba = np.vstack([B.numpy(), np.zeros((1, 2))])
    q, r = cost.c[0, :3].numpy(), cost.c[0, 3:].numpy()
    Qa = np.block([[Q.numpy(), q[:, None]], [q[None], np.zeros((1, 1))]])
    Na = np.vstack([np.zeros((3, 2)), r[None]])  # cross term x_aug^T N u
    P = np.block([[2 * Q.numpy(), np.zeros((3, 1))], [np.zeros((1, 4))]])
    for t in reversed(range(5)):
        S = R.numpy() + Ba.T @ P @ Ba
        gain = -np.linalg.solve(S, Ba.T @ P @ Aa + Na.T)
        np.testing.assert_allclose(ctrl.K[t].numpy(), gain[:, :3], atol=1e-9)
        np.testing.assert_allclose(ctrl.k[t].numpy(), gain[:, 3], atol=1e-9)
        P = Qa + Aa.T @ P @ Aa + (Aa.T @ P @ Ba + Na) @ gain


def _best_of_active_sets(H, g, lo, hi):
    """argmin over the box by brute force: every assignment of each dimension to its lower
    bound, its upper bound or free, solved on the free ones, the feasible one of least value."""
    import itertools
    m, best = len(g), (math.inf, None, None)
    for sides in itertools.product((-1, 0, 1), repeat=m):
        u = np.where(np.array(sides) < 0, lo, np.where(np.array(sides) > 0, hi, 0.0))
        free = np.array(sides) == 0
        if free.any():
            rhs = -(g[free] + H[np.ix_(free, ~free)] @ u[~free])
            u[free] = np.linalg.solve(H[np.ix_(free, free)], rhs)
        if np.all(u >= lo - 1e-12) and np.all(u <= hi + 1e-12):
            value = 0.5 * u @ H @ u + g @ u
            if value < best[0] - 1e-12:
                best = (value, u, free)
    return best[1], best[2]


@pytest.mark.parametrize("seed", range(6))
def test_the_box_qp_is_the_best_of_every_active_set(seed):
    """Three dimensions, a random positive-definite H and a linear term large enough that
    some bounds hold: the minimiser and the free dimensions by enumeration."""
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(3, 3))
    H, g = M @ M.T + 0.3 * np.eye(3), rng.normal(scale=4.0, size=3)
    lo, hi = -np.ones(3), np.array([1.0, 0.5, 2.0])
    want, free = _best_of_active_sets(H, g, lo, hi)
    got, got_free = box_qp(*(torch.as_tensor(a, dtype=F64) for a in (H, g, lo, hi)))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-9)
    assert np.array_equal(got_free.numpy(), free)
    if seed == 0:
        assert 0 < free.sum() < 3  # the case the test is for: some held, some free


@pytest.mark.parametrize("g", [-3.0, -0.2, 0.5, 2.5])
def test_the_one_dimensional_box_qp_is_the_best_of_every_active_set(g):
    """One action (its closed form): below, inside and above the box [-1, 0.8]."""
    H, g, lo, hi = np.array([[1.7]]), np.array([g]), np.array([-1.0]), np.array([0.8])
    want, free = _best_of_active_sets(H, g, lo, hi)
    got, got_free = box_qp(*(torch.as_tensor(a, dtype=F64) for a in (H, g, lo, hi)))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
    assert np.array_equal(got_free.numpy(), free)


def test_wide_limits_give_the_unconstrained_lqr_controller():
    A, B, Q, R, dyn, cost = _system(T=6)
    cost.c[:, 3:] = torch.tensor([0.05, -0.1], dtype=F64)
    wide = Limits(-1e6 * torch.ones(2, dtype=F64), 1e6 * torch.ones(2, dtype=F64),
                  torch.randn(6, 3, dtype=F64, generator=torch.Generator().manual_seed(0)))
    free, limited = backward(dyn, cost, 1.0, None), backward(dyn, cost, 1.0, None, wide)
    for a, b in ((free.K, limited.K), (free.k, limited.k), (free.cov, limited.cov)):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=0)


def test_a_limited_step_minimises_q_over_the_box_and_hands_back_that_minimum():
    """One step of the pass with active limits, on a Q built by hand: the mean action at the
    nominal state is the box minimiser (by enumeration), a clamped dimension has no feedback,
    and the cost-to-go it hands back equals min over the box of Q at states near the nominal
    one (same active set), by enumeration at each state (differences: the constant is not
    kept)."""
    rng = np.random.default_rng(3)
    n, m = 3, 2
    M = rng.normal(size=(n + m, n + m))
    Qm, qm = M @ M.T + 0.5 * np.eye(n + m), rng.normal(size=n + m)
    qm[n:] += np.array([6.0, 0.0])  # pushes u0 to its lower bound
    lo, hi = np.array([-0.2, -1.0]), np.array([0.2, 1.0])
    x0 = np.array([1.0, -0.5, 0.3])

    def q_min(x):
        u, free = _best_of_active_sets(Qm[n:, n:], Qm[n:, :n] @ x + qm[n:], lo, hi)
        z = np.concatenate([x, u])
        return 0.5 * z @ Qm @ z + qm @ z, u, free

    Q, q = torch.as_tensor(Qm), torch.as_tensor(qm)
    chol = torch.linalg.cholesky(Q[n:, n:])
    K, k, V, v = step_back(Q, q, n, chol, (torch.as_tensor(lo), torch.as_tensor(hi),
                                            torch.as_tensor(x0)))
    _, u0, free = q_min(x0)
    assert free.tolist() == [False, True]
    np.testing.assert_allclose((K @ torch.as_tensor(x0) + k).numpy(), u0, atol=1e-9)
    assert torch.all(K[0] == 0) and torch.all(K[1] != 0)
    V, v = V.numpy(), v.numpy()
    for _ in range(5):
        xa, xb = (x0 + 1e-2 * rng.normal(size=n) for _ in range(2))
        assert q_min(xa)[2].tolist() == q_min(xb)[2].tolist() == [False, True]
        want = q_min(xa)[0] - q_min(xb)[0]
        got = 0.5 * xa @ V @ xa + v @ xa - 0.5 * xb @ V @ xb - v @ xb
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_the_limited_pass_keeps_the_mean_actions_in_the_box_where_lqr_leaves_it():
    A, B, Q, R, dyn, cost = _system(T=20)
    box = Limits(-0.3 * torch.ones(2, dtype=F64), 0.3 * torch.ones(2, dtype=F64),
                 marginals(backward(dyn, cost, 1.0, None), dyn)[0][:, :3])
    free, limited = backward(dyn, cost, 1.0, None), backward(dyn, cost, 1.0, None, box)
    t = torch.arange(20)
    assert free.mean(t, box.nominal).abs().max() > 0.5
    assert limited.mean(t, box.nominal).abs().max() <= 0.3 + 1e-12


def test_the_trajectory_kl_matches_a_monte_carlo_estimate():
    _, _, _, _, dyn, cost = _system(T=6)
    old = Controller.initial(6, 3, 2, 0.7)
    old.k += 0.1
    new = backward(dyn, cost, 0.05, old)
    torch.manual_seed(0)
    N = 200_000
    x = dyn.mu0 + torch.randn(N, 3, dtype=F64) @ torch.linalg.cholesky(dyn.sigma0).T
    total = torch.zeros(N, dtype=F64)
    for t in range(6):
        p = torch.distributions.MultivariateNormal(x @ new.K[t].T + new.k[t], new.cov[t])
        q = torch.distributions.MultivariateNormal(x @ old.K[t].T + old.k[t], old.cov[t])
        u = p.sample()
        total += p.log_prob(u) - q.log_prob(u)
        noise = torch.randn(N, 3, dtype=F64) @ torch.linalg.cholesky(dyn.D[t]).T
        x = torch.cat([x, u], 1) @ dyn.F[t].T + dyn.f[t] + noise
    kl = kl_divergence(new, old, dyn)
    assert kl > 0.5
    assert abs(total.mean().item() - kl) < 4 * total.std().item() / math.sqrt(N)


def test_the_marginals_and_expected_cost_match_sampling():
    _, _, _, _, dyn, cost = _system(T=4)
    dyn.D[:] = 0.05 * torch.eye(3, dtype=F64)  # the dynamics noise shows in the covariances
    ctrl = backward(dyn, cost, 0.05, None)
    means, covs, mu_T, _ = marginals(ctrl, dyn)
    torch.manual_seed(1)
    N = 200_000
    x = dyn.mu0 + torch.randn(N, 3, dtype=F64) @ torch.linalg.cholesky(dyn.sigma0).T
    total = torch.zeros(N, dtype=F64)
    for t in range(4):
        u = torch.distributions.MultivariateNormal(x @ ctrl.K[t].T + ctrl.k[t],
                                                   ctrl.cov[t]).sample()
        z = torch.cat([x, u], 1)
        assert torch.allclose(z.mean(0), means[t], atol=4 * z.std(0).max() / math.sqrt(N))
        assert torch.allclose(torch.cov(z.T), covs[t], atol=0.02, rtol=0.02)
        total += 0.5 * ((z @ cost.C[t]) * z).sum(1) + z @ cost.c[t]
        x = z @ dyn.F[t].T + dyn.f[t] + torch.randn(N, 3, dtype=F64) @ \
            torch.linalg.cholesky(dyn.D[t]).T
    total += 0.5 * ((x @ cost.C_final) * x).sum(1) + x @ cost.c_final
    assert torch.allclose(x.mean(0), mu_T, atol=4 * x.std(0).max() / math.sqrt(N))
    assert abs(total.mean().item() - expected_cost(ctrl, dyn, cost)) < 0.01 * total.mean().item()


def test_a_large_temperature_keeps_the_previous_controller():
    _, _, _, _, dyn, cost = _system(T=5)
    old = Controller(0.1 * torch.ones(5, 2, 3, dtype=F64), torch.full((5, 2), 0.2, dtype=F64),
                     torch.diag(torch.tensor([0.3, 0.5], dtype=F64)).expand(5, 2, 2).clone())
    same = backward(dyn, cost, 1e12, old)
    for a, b in ((same.K, old.K), (same.k, old.k), (same.cov, old.cov)):
        torch.testing.assert_close(a, b, atol=1e-8, rtol=1e-8)


def test_the_kl_step_meets_its_bound_and_lowers_the_expected_cost():
    _, _, _, _, dyn, cost = _system(T=20)
    old = Controller.initial(20, 3, 2, 0.5)
    for bound in (0.5, 5.0):
        step = kl_step(dyn, cost, old, bound)
        assert 0.95 * bound <= step.kl <= bound
        assert step.kl == pytest.approx(kl_divergence(step.controller, old, dyn))
        assert expected_cost(step.controller, dyn, cost) < expected_cost(old, dyn, cost)
    small, large = kl_step(dyn, cost, old, 0.5), kl_step(dyn, cost, old, 5.0)
    assert expected_cost(large.controller, dyn, cost) < expected_cost(small.controller, dyn, cost)
    free = kl_step(dyn, cost, old, 1e9)  # unbounded: the smallest temperature of the range
    assert free.eta == pytest.approx(1e-6)


def test_the_step_size_rule():
    # predicted gain 4, actual 3: ratio 4 / (2 * 1) = 2
    assert adjusted_multiplier(1.0, 10.0, 6.0, 7.0) == pytest.approx(2.0)
    assert adjusted_multiplier(0.5, 10.0, 6.0, 7.0) == pytest.approx(1.0)
    assert adjusted_multiplier(1.0, 10.0, 6.0, 12.0) == pytest.approx(4 / 12)  # got worse
    assert adjusted_multiplier(1.0, 10.0, 6.0, 6.0) == pytest.approx(5.0)  # ratio capped
    assert adjusted_multiplier(0.011, 10.0, 6.0, 100.0) == pytest.approx(0.01)  # floor
    assert adjusted_multiplier(9.0, 10.0, 6.0, 6.0) == pytest.approx(10.0)  # ceiling


# ---- the dynamics fit ---------------------------------------------------------------------------
def _rollouts(N: int, T: int, seed: int, noise: float = 0.01):
    g = torch.Generator().manual_seed(seed)
    A = torch.tensor([[0.9, 0.2], [-0.1, 1.05]], dtype=F64)
    B = torch.tensor([[0.0], [0.3]], dtype=F64)
    c = torch.tensor([0.05, -0.1], dtype=F64)
    x = torch.zeros(N, T + 1, 2, dtype=F64)
    u = torch.randn(N, T, 1, generator=g, dtype=F64)
    x[:, 0] = torch.randn(N, 2, generator=g, dtype=F64)
    for t in range(T):
        x[:, t + 1] = x[:, t] @ A.T + u[:, t] @ B.T + c + \
            noise * torch.randn(N, 2, generator=g, dtype=F64)
    return x, u, torch.cat([A, B], 1), c


def test_the_fit_recovers_a_known_linear_system_from_noisy_rollouts():
    x, u, AB, c = _rollouts(N=40, T=10, seed=0)
    dyn = fit_dynamics(x, u)
    for t in range(10):
        torch.testing.assert_close(dyn.F[t], AB, atol=0.02, rtol=0)
        torch.testing.assert_close(dyn.f[t], c, atol=0.01, rtol=0)
        np.testing.assert_allclose(dyn.D[t].diagonal().numpy(), 1e-4, rtol=0.6)
    torch.testing.assert_close(dyn.mu0, x[:, 0].mean(0))


def test_the_prior_makes_a_fit_from_two_samples_well_posed():
    """Two rollouts per step cannot determine 3 inputs; the prior from every step of them
    can, for a time-invariant system."""
    x, u, AB, c = _rollouts(N=2, T=60, seed=1, noise=0.001)
    alone = fit_dynamics(x, u, None, 0.0)
    prior = JointGaussian.of(torch.cat([x[:, :-1], u, x[:, 1:]], -1).flatten(0, 1))
    helped = fit_dynamics(x, u, prior, 1.0)
    err_alone = (alone.F - AB).abs().amax((1, 2)).median()
    err_helped = (helped.F - AB).abs().amax((1, 2)).median()
    assert err_alone > 0.3 and err_helped < 0.1


def test_the_posterior_covariance_by_hand():
    pts = torch.tensor([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0]], dtype=F64)
    prior = JointGaussian(torch.tensor([0.0, 1.0], dtype=F64),
                          torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=F64))
    mean = torch.tensor([2.0, 1.0], dtype=F64)
    emp = ((pts - mean).T @ (pts - mean)) / 3
    gap = mean - prior.mean
    expected = (3 * emp + 2 * prior.cov + 3 * 2 / 5 * torch.outer(gap, gap)) / 5
    torch.testing.assert_close(posterior_cov(pts, prior, 2.0), expected)
    torch.testing.assert_close(posterior_cov(pts, prior, 0.0), emp)


# ---- the policy's step --------------------------------------------------------------------------
def test_the_importance_objective_by_hand():
    """Two samples, two steps: w_it = pi(zeta_i,1:t) / q(zeta_i,1:t), self-normalised per step,
    minus w_r log Z_t."""
    log_pi = torch.tensor([[-1.0, -2.5], [-0.5, -3.0]])
    log_q = torch.tensor([[-1.5, -2.0], [-1.0, -1.0]])
    cost = torch.tensor([[2.0, 1.0], [4.0, 3.0]])
    total = 0.0
    for t in range(2):
        w = [math.exp(log_pi[i, t] - log_q[i, t]) for i in range(2)]
        z = sum(w)
        total += sum(w[i] / z * cost[i, t] for i in range(2)) - 0.1 * math.log(z)
    assert importance_objective(log_pi, log_q, cost, 0.1).item() == pytest.approx(total, rel=1e-6)


def test_the_mixture_and_policy_densities_by_hand():
    x = torch.tensor([[[0.5], [1.0], [0.0]]], dtype=F64)  # one sample, T = 2, n = 1
    u = torch.tensor([[[0.2], [-0.4]]], dtype=F64)
    a = Controller(torch.tensor([[[1.0]], [[0.5]]], dtype=F64), torch.tensor([[0.0], [0.1]],
                                                                              dtype=F64),
                   torch.tensor([[[0.04]], [[0.09]]], dtype=F64))

    def normal(v, mean, var):
        return math.exp(-(v - mean) ** 2 / (2 * var)) / math.sqrt(2 * math.pi * var)

    pa = [normal(0.2, 0.5, 0.04), normal(-0.4, 0.6, 0.09)]
    uniform = 0.5  # U(-1, 1), one dimension
    got = mixture_log_density(x, u, [a, None], [3, 1])[0]
    assert got[0].item() == pytest.approx(math.log(0.75 * pa[0] + 0.25 * uniform))
    assert got[1].item() == pytest.approx(math.log(0.75 * pa[0] * pa[1] + 0.25 * uniform ** 2))
    mean = torch.tensor([[[0.1], [0.0]]])
    log_pi = policy_log_density(mean, torch.tensor([math.log(0.3)]), u.float())[0]
    assert log_pi[1].item() == pytest.approx(
        math.log(normal(0.2, 0.1, 0.09) * normal(-0.4, 0.0, 0.09)), rel=1e-5)


def test_the_supervised_loss_weights_by_precision():
    gap = torch.tensor([[1.0, 2.0]])
    prec = torch.tensor([[[2.0, 0.5], [0.5, 1.0]]])
    assert supervised_loss(gap, torch.zeros(1, 2), prec).item() == pytest.approx(
        2 * 1 + 2 * 0.5 * 1 * 2 + 1 * 4)


def test_the_expansion_of_a_quadratic_is_exact_and_a_saddle_is_projected():
    H = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=F64)
    g = torch.tensor([0.3, -0.7], dtype=F64)
    points = torch.tensor([[1.0, 2.0], [-0.5, 0.1]], dtype=F64)
    C, c = _expansion(lambda z: 0.5 * z @ H @ z + g @ z, points)
    torch.testing.assert_close(C, H.expand(2, 2, 2))
    torch.testing.assert_close(c, g.expand(2, 2))
    C, _ = _expansion(lambda z: z[0] ** 2 - z[1] ** 2, points)
    torch.testing.assert_close(C[0], torch.diag(torch.tensor([2.0, 0.0], dtype=F64)))


# ---- task costs and fixed starts ---------------------------------------------------------------
def test_the_reacher_cost_is_its_reward_negated():
    env = gym.make("Reacher-v5")
    obs, _ = env.reset(seed=3)
    cost = task_cost("Reacher-v5")
    rng = np.random.default_rng(0)
    for _ in range(20):
        action = rng.uniform(-1, 1, 2).astype(np.float32)
        nxt, reward, *_ = env.step(action)
        distance = float(np.linalg.norm(nxt[8:10]))
        smooth = math.sqrt(distance ** 2 + SMOOTHING)
        x, u = torch.as_tensor(nxt, dtype=F64), torch.as_tensor(action, dtype=F64)
        assert cost.final(x).item() == pytest.approx(smooth)
        assert cost.step(x, u).item() == pytest.approx(smooth + float((action ** 2).sum()))
        assert -reward == pytest.approx(distance + float((action ** 2).sum()), rel=1e-5)


def test_the_pendulum_cost_is_its_reward_negated_with_a_smooth_angle_term():
    """2 (1 - cos angle) in place of angle^2, the rest the reward's own."""
    env = make_env("Pendulum-v1", seed=0)
    obs, _ = env.reset(seed=0)
    cost = task_cost("Pendulum-v1")
    for action in (0.3, -1.0, 0.8, 0.0):
        a = np.array([action], np.float32)
        got = cost.step(torch.as_tensor(obs, dtype=F64), torch.as_tensor(a, dtype=F64)).item()
        angle = math.atan2(obs[1], obs[0])
        obs, reward, *_ = env.step(a)
        assert got == pytest.approx(-reward - angle ** 2 + 2 * (1 - math.cos(angle)), rel=1e-5)
        assert cost.final(torch.as_tensor(obs, dtype=F64)).item() == 0.0


def _gps_cfg(*extra):
    return apply_overrides(load_preset("gps-reacher"), ["gps.policy_steps=20", *extra])


def test_fixed_starts_cycle_through_the_conditions_in_every_env():
    cfg = _gps_cfg()
    starts = initial_observations(cfg.env)
    assert len(starts) == 4 and not np.allclose(starts[0], starts[1])
    envs = EnvBatch(cfg.env, 3, seed=1234)
    seen = [[] for _ in range(3)]
    for i in range(3):
        seen[i].append(int(np.abs(starts - envs.obs[i]).max(1).argmin()))
    for _ in range(4 * 50):
        _, done = envs.step(np.zeros((3, 2), np.float32))
        for i in np.flatnonzero(done):
            match = np.abs(starts - envs.obs[i]).max(1)
            assert match.min() == 0.0  # exactly a condition's first observation
            seen[i].append(int(match.argmin()))
    for i in range(3):
        assert seen[i][:4] == [(1234 + i + k) % 4 for k in range(4)]
        assert seen[i][4] == seen[i][0]


# ---- the agent ----------------------------------------------------------------------------------
def _round(cfg, spec, actor, steps_per_env: int, seed: int = 5):
    """One round of 4 envs acting with `actor`, as a worker writes it, into a replay."""
    store = StreamStorage(4 * (steps_per_env + steps_per_env // 50 + 5), spec)
    envs, rows = EnvBatch(cfg.env, 4, seed), StreamRows(spec, 4, steps_per_env)
    state = actor.initial_state(4)
    for _ in range(steps_per_env):
        actions, state = actor.act(envs.obs, state)
        _, done = envs.step(actions, rows)
        state = actor.reset_state(state, done)
    for key, segment in rows.segments(list(range(4))):
        store.add(segment, key)
    return store


def test_the_learner_finds_each_conditions_episodes_and_skips_broken_ones():
    cfg = _gps_cfg()
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    agent = make_learner(spec, cfg, seed=0)
    data = all_transitions(_round(cfg, spec, agent, 100))
    episodes = agent.episodes(data, len(data["obs"]))
    assert [len(ep[0]) for ep in episodes] == [2, 2, 2, 2]  # 4 envs x 2 episodes, 4 conditions
    starts = torch.as_tensor(initial_observations(cfg.env), dtype=F64)
    for cond, (x, u) in enumerate(episodes):
        assert x.shape == (2, 51, spec.obs_dim) and u.shape == (2, 50, 2)
        assert torch.equal(x[:, 0], starts[cond].expand(2, -1))
    cut = {k: np.delete(v, 10, 0) for k, v in data.items()}  # a transition lost mid-episode
    assert sum(len(ep[0]) for ep in agent.episodes(cut, len(cut["obs"]))) == 7
    assert agent.episodes(data, 49) == [None] * 4  # the last 49 transitions hold none


def test_acting_samples_the_conditions_controller_and_evaluation_acts_with_the_policy():
    cfg = _gps_cfg()
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    learner = make_learner(spec, cfg, seed=0)
    data = all_transitions(_round(cfg, spec, learner, 200))
    learner.fit(data, 800)
    worker = make_actor(spec, cfg, seed=3)
    worker.load_inference_weights(copy.deepcopy(learner.inference_weights()))
    starts = initial_observations(cfg.env)
    obs = starts[[2, 0, 3]]
    state = worker.initial_state(3)
    state["t"][:] = torch.tensor([0, 0, 7])  # the third env is mid-episode, condition 1
    state["condition"][2] = 1
    noise = np.random.default_rng(seeding.derive(3, seeding.NOISE)).standard_normal((3, 2))
    actions, state = worker.act(obs, state)
    for row, (cond, t) in enumerate(((2, 0), (0, 0), (1, 7))):
        ctrl = learner.controllers[cond]
        x = torch.as_tensor(obs[row], dtype=F64)
        chol = torch.linalg.cholesky(ctrl.cov[t])
        expected = (ctrl.K[t] @ x + ctrl.k[t] + chol @ torch.as_tensor(noise[row])).clamp(-1, 1)
        np.testing.assert_allclose(actions[row], expected.numpy(), atol=1e-6)
    assert state["t"].tolist() == [1, 1, 8] and state["condition"].tolist() == [2, 0, 1]
    greedy, _ = worker.act(obs, worker.initial_state(3), explore=False)
    expected = learner.policy(torch.as_tensor(obs)).clamp(-1, 1).detach().numpy()
    np.testing.assert_allclose(greedy, expected, atol=1e-6)


@pytest.mark.parametrize("policy_step", ["importance", "supervised"])
def test_rounds_lower_the_sample_cost_and_a_resumed_learner_fits_as_the_original(policy_step):
    """Three rounds of 10 episodes per condition: the controllers' samples cost less each
    round; a learner restored from the state after round 2 fits round 3 exactly as the
    original."""
    cfg = _gps_cfg(f"gps.policy_step={policy_step}")
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    learner = make_learner(spec, cfg, seed=0)
    worker = make_actor(spec, cfg, seed=1)
    costs, states, stores = [], [], []
    for k in range(3):
        store = _round(cfg, spec, worker, 500, seed=10 + k)
        stores.append(store)
        if k == 2:
            states.append(copy.deepcopy(learner.state_dict()))
        logs = learner.fit(all_transitions(store), 2000 * (k + 1))
        costs.append(np.mean([logs[f"gps_sample_cost_{c}"] for c in range(4)]))
        worker.load_inference_weights(learner.inference_weights())
    assert costs[2] < costs[1] < costs[0], costs
    resumed = make_learner(spec, cfg, seed=9)
    resumed.load_state_dict(states[0])
    twin_logs = resumed.fit(all_transitions(stores[2]), 6000)
    assert twin_logs == logs
    for a, b in zip(resumed.inference_weights()["policy"].values(),
                    learner.inference_weights()["policy"].values()):
        assert torch.equal(a, b)


def test_episode_costs_are_the_episodes_negated_returns_plus_the_first_states_term():
    """Reacher scores the state reached: an episode's costs sum to the rewards' negation with
    the smoothed norm, plus the first state's term."""
    cfg = _gps_cfg()
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    agent = make_learner(spec, cfg, seed=0)
    data = all_transitions(_round(cfg, spec, agent, 50))
    x, u = agent.episodes(data, len(data["obs"]))[1]
    dist = np.linalg.norm(x[0, :, 8:10].numpy(), axis=1)
    smooth = np.sqrt(dist ** 2 + SMOOTHING)
    expected = smooth.sum() + (u[0].numpy() ** 2).sum()
    assert agent.episode_costs(x, u)[0].sum().item() == pytest.approx(expected)
    first = int(np.flatnonzero((data["obs"] == x[0, 0].numpy()).all(1))[0])
    rewards = data["reward"][first:first + 50]  # that episode's
    returned = -rewards.sum() + dist[0]
    assert expected == pytest.approx(returned, abs=50 * math.sqrt(SMOOTHING))


def test_the_supervised_rows_weight_each_state_by_its_steps_precision():
    cfg = _gps_cfg("gps.policy_step=supervised")
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    agent = make_learner(spec, cfg, seed=0)
    data = all_transitions(_round(cfg, spec, agent, 100))
    agent.fit(data, 400)
    episodes = agent.episodes(data, 400)
    states, targets, prec = agent.supervision(episodes)
    assert len(states) == 4 * 2 * 50
    raw = [torch.linalg.inv(agent.controllers[c].cov[t]) for c in range(4) for _ in range(2)
           for t in range(50)]
    scale = torch.stack([p.diagonal() for p in raw]).mean()
    row = 2 * 50 + 50 + 7  # condition 1, its second episode, step 7
    x = episodes[1][0][1, 7]
    torch.testing.assert_close(states[row], x)
    torch.testing.assert_close(prec[row], raw[row] / scale)
    ctrl = agent.controllers[1]
    torch.testing.assert_close(targets[row], (ctrl.K[7] @ x + ctrl.k[7]).clamp(-1, 1))
    assert not torch.allclose(prec[row], prec[row - 7])  # precisions differ by step


def test_importance_keeps_the_last_rounds_and_their_samplers():
    cfg = _gps_cfg("gps.importance_rounds=2")
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    learner = make_learner(spec, cfg, seed=0)
    worker = make_actor(spec, cfg, seed=1)
    samplers = []
    for k in range(3):
        store = _round(cfg, spec, worker, 100, seed=20 + k)
        samplers.append(copy.deepcopy(learner.controllers))
        learner.fit(all_transitions(store), 400 * (k + 1))
        worker.load_inference_weights(learner.inference_weights())
    rounds = learner.rounds[0]
    assert len(rounds) == 2
    assert rounds[0]["sampler"].k.equal(samplers[1][0].k)
    assert rounds[1]["sampler"].k.equal(samplers[2][0].k)
    held = learner.samples(0)
    assert len(held.x) == 4  # two rounds of two episodes
    expected = mixture_log_density(held.x, held.u, [samplers[1][0], samplers[2][0]], [2, 2])
    torch.testing.assert_close(held.log_q, expected)


def test_the_adaptive_step_scales_by_predicted_over_actual_improvement():
    cfg = _gps_cfg("gps.adapt_step=true", "gps.policy_step=supervised")
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    learner = make_learner(spec, cfg, seed=0)
    worker = make_actor(spec, cfg, seed=1)
    for k in range(3):
        data = all_transitions(_round(cfg, spec, worker, 200, seed=30 + k))
        if k == 2:
            before, old_dyn = copy.deepcopy(learner.before[0]), learner.last_dynamics[0]
            sampler, multiplier = copy.deepcopy(learner.controllers[0]), learner.multiplier[0]
        learner.fit(data, 800 * (k + 1))
        worker.load_inference_weights(learner.inference_weights())
    x, u = learner.episodes(data, 800)[0]
    prior = JointGaussian.of(torch.cat([x[:, :-1], u, x[:, 1:]], -1).flatten(0, 1))
    dyn, cost = fit_dynamics(x, u, prior, 1.0), learner.quadratic_cost(x, u)
    expected = adjusted_multiplier(multiplier, expected_cost(before, dyn, cost),
                                   expected_cost(sampler, old_dyn, cost),
                                   expected_cost(sampler, dyn, cost))
    assert learner.multiplier[0] == pytest.approx(expected) and expected != 1.0


def test_action_limits_hold_the_controllers_means_in_the_box_at_the_samples_mean_states():
    """gps.action_limits: after a round on Pendulum (whose torque costs little), each
    condition's new controller acts within [-1, 1] at the mean state of that condition's
    samples, where the unconstrained step leaves the box; the same samples, the same round."""
    over = ["env.id=Pendulum-v1", "env.max_episode_steps=50", "env.condition_seed=0",
            "env.conditions=2"]
    means = {}
    for limits in (False, True):
        cfg = _gps_cfg(*over, f"gps.action_limits={str(limits).lower()}")
        spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
        learner = make_learner(spec, cfg, seed=0)
        data = all_transitions(_round(cfg, spec, make_actor(spec, cfg, seed=1), 100))
        learner.fit(data, 400)
        found = learner.episodes(data, 400)
        t = torch.arange(learner.horizon)
        means[limits] = torch.stack([ctrl.mean(t, x[:, :-1].mean(0)) for ctrl, (x, _)
                                     in zip(learner.controllers, found)])
    assert means[False].abs().max() > 1.5
    assert means[True].abs().max() <= 1.0 + 1e-9


# ---- iLQR through a model -----------------------------------------------------------------------
def test_ilqr_on_a_linear_system_with_a_quadratic_cost_is_the_lqr_solution():
    """One iteration is exact on a linear-quadratic problem (its actions inside the limits):
    the trajectory and gains are those of the LQR backward pass played from x0."""
    from mbrl_ray.planners.ilqr import ilqr
    from mbrl_ray.task_costs import TaskCost

    A, B, Q, R, dyn, cost = _system(T=12)
    f = dyn.f[0]
    lqr = backward(dyn, cost, 1.0, None)
    x, us = dyn.mu0, []
    for t in range(12):
        us.append(lqr.mean(torch.tensor([t]), x[None])[0])
        x = A @ x + B @ us[-1] + f
    want = torch.stack(us)
    assert want.abs().max() < 1.0  # the limits stay inactive

    task = TaskCost(lambda x, u: 0.5 * ((x @ Q) * x).sum(-1) + 0.5 * ((u @ R) * u).sum(-1),
                    lambda x: ((x @ Q) * x).sum(-1), "quadratic")
    traj, ctrl = ilqr(lambda x, u: x @ A.T + u @ B.T + f, task, dyn.mu0,
                      torch.zeros(12, 2, dtype=F64), iterations=5)
    torch.testing.assert_close(traj.u, want, atol=1e-7, rtol=0)
    torch.testing.assert_close(ctrl.K, lqr.K, atol=1e-7, rtol=0)
    torch.testing.assert_close(ctrl.mean(torch.arange(12), traj.x[:-1]), want, atol=1e-7,
                               rtol=0)


def test_ilqr_through_a_network_returns_a_controller_without_its_graph():
    """A learned model's parameters must not leak into the controller (it is acted on and
    saved as plain tensors)."""
    from mbrl_ray.planners.ilqr import ilqr
    from mbrl_ray.task_costs import TaskCost

    net = torch.nn.Linear(5, 3).double()
    with torch.no_grad():
        net.weight.mul_(0.3)
    task = TaskCost(lambda x, u: (x * x).sum(-1) + 0.1 * (u * u).sum(-1),
                    lambda x: (x * x).sum(-1), "quadratic")
    traj, ctrl = ilqr(lambda x, u: x + net(torch.cat([x, u], -1)), task,
                      torch.tensor([0.5, -0.2, 0.1], dtype=F64), torch.zeros(6, 2, dtype=F64), 3)
    assert not any(t.requires_grad for t in (ctrl.K, ctrl.k, ctrl.cov, traj.x, traj.u))


def _simulated_cost(model, cost, x0, actions_at) -> float:
    """sum_t cost(x_t, u_t) + final(x_T) through `model` from x0, u_t = actions_at(t, x_t)."""
    x, total = x0, 0.0
    for t in range(20):
        u = actions_at(t, x).clamp(-1.0, 1.0)
        total += float(cost.step(x, u))
        x = model.step(x, u)[0]
    return total + float(cost.final(x))


def test_model_guides_are_ilqr_refinements_of_the_mpc_trajectory_in_the_fitted_model():
    """gps.dynamics=model on Pendulum (20-step episodes): each new controller's mean, played
    through the fitted delta network from its condition's start, costs what the learner logs,
    no more than the MPC actions it started from (and less on some condition: iLQR refined
    them); it samples with gps.sample_std around that mean."""
    cfg = _gps_cfg("env.id=Pendulum-v1", "env.max_episode_steps=20", "env.condition_seed=0",
                   "gps.dynamics=model", "delta.hidden_size=32", "delta.epochs=5",
                   "planner.horizon=6", "planner.population=40", "planner.num_elites=6",
                   "planner.iterations=2", "gps.ilqr_iterations=5", "gps.sample_std=0.25",
                   "gps.policy_step=supervised")
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    learner = make_learner(spec, cfg, seed=0)
    data = all_transitions(_round(cfg, spec, learner, 40))
    draws = learner.plans.generator.get_state()
    logs = learner.fit(data, len(data["obs"]))
    learner.plans.generator.set_state(draws)  # the fit's MPC draws again, on the same model
    cost = task_cost("Pendulum-v1")
    mpc = learner.plans.mpc_actions(learner.starts, cost).to(F64)
    _check_receding_horizon(learner, cost, draws, mpc)
    model = copy.deepcopy(learner.plans.model).to(F64)
    gains = []
    for cond, ctrl in enumerate(learner.controllers):
        x0 = learner.starts[cond]
        guided = _simulated_cost(model, cost, x0, lambda t, x: ctrl.K[t] @ x + ctrl.k[t])
        planned = _simulated_cost(model, cost, x0, lambda t, x: mpc[cond, t])
        assert guided == pytest.approx(logs[f"gps_plan_cost_{cond}"], rel=1e-9)
        assert guided <= planned + 1e-9
        gains.append(planned - guided)
        torch.testing.assert_close(ctrl.cov, 0.0625 * torch.eye(1, dtype=F64).expand(20, 1, 1))
    assert max(gains) > 1e-3, gains


def _check_receding_horizon(learner, cost, draws, mpc):
    """Each MPC action is the first of a plan made from the model state the earlier actions
    reached (stepped here), with the planner's warm start carried along."""
    from mbrl_ray.agents.gps_model import CostRollout
    from mbrl_ray.planners import make_planner
    from mbrl_ray.world_models.base import rollout_returns

    model = copy.deepcopy(learner.plans.model).float()
    planner = make_planner(learner.cfg.planner, 1)
    generator = torch.Generator().manual_seed(0)
    generator.set_state(draws)
    state, x = planner.initial_state(4, torch.device("cpu")), learner.starts.float()
    for t in range(mpc.shape[1]):
        plan, state = planner.plan(lambda seqs: rollout_returns(CostRollout(model, x, cost), seqs),
                                   state, generator)
        torch.testing.assert_close(plan[:, 0].clamp(-1, 1).to(F64), mpc[:, t])
        x = model.step(x, mpc[:, t].float())[0]
