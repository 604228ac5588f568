"""Trajectory optimisation for guided policy search (agents/gps.py): time-varying
linear-Gaussian controllers p(u_t | x_t) = N(K_t x_t + k_t, S_t) on time-varying
linear-Gaussian dynamics, improved by a maximum-entropy LQR backward pass under a KL bound to
the previous controller (Levine & Abbeel 2014, "Learning Neural Network Policies with Guided
Policy Search under Unknown Dynamics", Sec. 3).

Everything is in absolute coordinates (no deltas about a nominal trajectory): a cost step is
1/2 z^T C z + c^T z over z = [x; u], dynamics are x' = F z + f + N(0, D). The step with
temperature eta minimises E[sum_t c_t / eta - log pbar(u_t | x_t)] - H(p), whose solution is
Gaussian with covariance Q_uu^-1; eta is searched (bisection in log space) so that the
trajectory KL to the previous controller is at most the step size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

Tensor = torch.Tensor


@dataclass
class Controller:
    """p(u_t | x_t) = N(K[t] x + k[t], cov[t]): K (T, m, n), k (T, m), cov (T, m, m)."""
    K: Tensor
    k: Tensor
    cov: Tensor

    @classmethod
    def initial(cls, horizon: int, obs_dim: int, act_dim: int, std: float) -> "Controller":
        """Zero-mean actions with std `std` at every step (GPS's first controller)."""
        eye = torch.eye(act_dim, dtype=torch.float64)
        return cls(torch.zeros(horizon, act_dim, obs_dim, dtype=torch.float64),
                   torch.zeros(horizon, act_dim, dtype=torch.float64),
                   (std ** 2 * eye).expand(horizon, act_dim, act_dim).clone())

    def mean(self, t: Tensor, x: Tensor) -> Tensor:
        """Mean actions at steps t (N,) and states x (N, n)."""
        return (self.K[t] @ x.unsqueeze(-1)).squeeze(-1) + self.k[t]

    def log_prob(self, x: Tensor, u: Tensor) -> Tensor:
        """log p(u_t | x_t) along trajectories: x (N, T, n), u (N, T, m) -> (N, T)."""
        mean = (self.K @ x.unsqueeze(-1)).squeeze(-1) + self.k
        return torch.distributions.MultivariateNormal(mean, self.cov).log_prob(u)


@dataclass
class Dynamics:
    """x_{t+1} = F[t] [x; u] + f[t] + N(0, D[t]), with x_0 ~ N(mu0, sigma0)."""
    F: Tensor      # (T, n, n + m)
    f: Tensor      # (T, n)
    D: Tensor      # (T, n, n)
    mu0: Tensor    # (n,)
    sigma0: Tensor  # (n, n)


@dataclass
class QuadraticCost:
    """Step t costs 1/2 z^T C[t] z + c[t]^T z (z = [x_t; u_t]); the final state
    1/2 x^T C_final x + c_final^T x."""
    C: Tensor        # (T, n + m, n + m)
    c: Tensor        # (T, n + m)
    C_final: Tensor  # (n, n)
    c_final: Tensor  # (n,)


def marginals(ctrl: Controller, dyn: Dynamics) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """State-action marginals under the controller and dynamics: means (T, n+m), covariances
    (T, n+m, n+m), and the final state's mean (n,) and covariance (n, n)."""
    mu, sigma = dyn.mu0, dyn.sigma0
    means, covs = [], []
    for t in range(len(ctrl.k)):
        K = ctrl.K[t]
        mu_z = torch.cat([mu, K @ mu + ctrl.k[t]])
        top = torch.cat([sigma, sigma @ K.T], 1)
        bottom = torch.cat([K @ sigma, K @ sigma @ K.T + ctrl.cov[t]], 1)
        sigma_z = torch.cat([top, bottom], 0)
        means.append(mu_z)
        covs.append(sigma_z)
        mu = dyn.F[t] @ mu_z + dyn.f[t]
        sigma = dyn.F[t] @ sigma_z @ dyn.F[t].T + dyn.D[t]
    return torch.stack(means), torch.stack(covs), mu, sigma


def expected_cost(ctrl: Controller, dyn: Dynamics, cost: QuadraticCost) -> float:
    """E[sum of the quadratic costs] under the controller's trajectory distribution."""
    means, covs, mu_T, sigma_T = marginals(ctrl, dyn)

    def quad(C, c, mu, sigma):
        return 0.5 * (torch.einsum("...ij,...ji->...", C, sigma) + mu @ C @ mu) + c @ mu

    steps = sum(float(quad(cost.C[t], cost.c[t], means[t], covs[t])) for t in range(len(means)))
    return steps + float(quad(cost.C_final, cost.c_final, mu_T, sigma_T))


@dataclass
class Reference:
    """A previous controller with what every solve of the eta search reuses, per step: its
    precision, log-determinant of covariance, and -log density as 1/2 z^T H z + h^T z (+ const)
    over z = [x; u]."""
    controller: Controller
    precision: list[Tensor]
    logdet: list[Tensor]
    H: list[Tensor]
    h: list[Tensor]

    @classmethod
    def of(cls, ctrl: "Controller | Reference") -> "Reference":
        if isinstance(ctrl, Reference):
            return ctrl
        precision = [torch.linalg.inv(cov) for cov in ctrl.cov]
        terms = [_log_density_quadratic(K, k, prec)
                 for K, k, prec in zip(ctrl.K, ctrl.k, precision)]
        return cls(ctrl, precision, [torch.logdet(cov) for cov in ctrl.cov],
                   [H for H, _ in terms], [h for _, h in terms])


def kl_divergence(new: Controller, old: "Controller | Reference", dyn: Dynamics) -> float:
    """KL(p_new(trajectory) || p_old(trajectory)) on the same dynamics: the sum over steps of
    E_{x ~ p_new(x_t)} KL(new(u | x) || old(u | x))."""
    ref = Reference.of(old)
    old = ref.controller
    means, covs, _, _ = marginals(new, dyn)
    n = dyn.mu0.shape[0]
    m = new.k.shape[1]
    total = 0.0
    for t in range(len(new.k)):
        prec = ref.precision[t]
        dK, dk = new.K[t] - old.K[t], new.k[t] - old.k[t]
        mu_x, sigma_x = means[t, :n], covs[t, :n, :n]
        shift = dK @ mu_x + dk
        total += 0.5 * float(torch.trace(prec @ new.cov[t]) - m
                             + ref.logdet[t] - torch.logdet(new.cov[t])
                             + shift @ prec @ shift + torch.trace(dK.T @ prec @ dK @ sigma_x))
    return total


@dataclass
class Limits:
    """Box bounds lo <= u <= hi on the mean action, enforced at the nominal states x (T, n)
    (the mean of the samples the step is fitted to): the control-limited backward pass."""
    lo: Tensor
    hi: Tensor
    nominal: Tensor


def backward(dyn: Dynamics, cost: QuadraticCost, eta: float,
             previous: "Controller | Reference | None", limits: Limits | None = None
             ) -> Controller:
    """The maximum-entropy LQR solution of sum_t c_t / eta - log previous(u_t | x_t) (no KL
    term without `previous`: then eta = 1 gives the LQR gains of the cost, with covariance
    Q_uu^-1). With `limits`, each step's mean action at the nominal state is the box QP's
    minimiser and the feedback of the dimensions it clamps is zero (Tassa, Mansard & Todorov
    2014), the covariance still Q_uu^-1. Raises torch.linalg.LinAlgError where Q_uu is not
    positive definite."""
    n = dyn.mu0.shape[0]
    ref = None if previous is None else Reference.of(previous)
    V, v = cost.C_final / eta, cost.c_final / eta
    Ks, ks, covs = [], [], []
    for t in reversed(range(len(dyn.f))):
        Cz, cz = cost.C[t] / eta, cost.c[t] / eta
        if ref is not None:
            Cz, cz = Cz + ref.H[t], cz + ref.h[t]
        F = dyn.F[t]
        Q = Cz + F.T @ V @ F
        q = cz + F.T @ (V @ dyn.f[t] + v)
        chol = torch.linalg.cholesky(0.5 * (Q[n:, n:] + Q[n:, n:].T))
        K, k, V, v = step_back(Q, q, n, chol, None if limits is None
                               else (limits.lo, limits.hi, limits.nominal[t]))
        Ks.append(K)
        ks.append(k)
        covs.append(torch.cholesky_inverse(chol))
    return Controller(torch.stack(Ks[::-1]), torch.stack(ks[::-1]), torch.stack(covs[::-1]))


def step_back(Q: Tensor, q: Tensor, n: int, chol: Tensor,
              box: tuple[Tensor, Tensor, Tensor] | None = None
              ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One step of the backward pass: from the step's Q(x, u) = 1/2 z^T Q z + q^T z (z = [x; u],
    chol the Cholesky factor of Q_uu) the controller u = K x + k and the cost-to-go
    1/2 x^T V x + v^T x of acting with it. box = (lo, hi, nominal state): u at the nominal
    state minimises Q over the box, the clamped dimensions without feedback."""
    Qux, Quu = Q[n:, :n], Q[n:, n:]
    if box is None:
        K = -torch.cholesky_solve(Qux, chol)
        k = -torch.cholesky_solve(q[n:, None], chol)[:, 0]
    else:
        lo, hi, x = box
        u, free = box_qp(Quu, Qux @ x + q[n:], lo, hi)
        K = torch.zeros_like(Qux)
        if free.any():
            K[free] = -torch.linalg.solve(Quu[free][:, free], Qux[free])
        k = u - K @ x
    # Q at u = K x + k is 1/2 x^T (Qxx + Qxu K + K^T Qux + K^T Quu K) x + (qx + Qxu k +
    # K^T (Quu k + qu))^T x + const; the last two terms of each vanish, for the box too:
    # K^T Quu K = -K^T Qux on the free rows (their feedback), and Quu k + qu = 0 there
    # (the box minimiser's gradient at the nominal state).
    V = Q[:n, :n] + Q[:n, n:] @ K
    return K, k, 0.5 * (V + V.T), q[:n] + Q[:n, n:] @ k


def box_qp(H: Tensor, g: Tensor, lo: Tensor, hi: Tensor, iterations: int = 50
           ) -> tuple[Tensor, Tensor]:
    """argmin 1/2 u^T H u + g^T u over lo <= u <= hi (H positive definite), and the mask of
    the dimensions not held at a bound. One dimension: the unconstrained minimiser clamped
    (Pendulum's every step); more: projected Newton with a backtracking line search on the
    projected step (Tassa, Mansard & Todorov 2014, Alg. 1)."""
    if len(g) == 1:
        u = (-g / H[0]).clamp(lo, hi)
    else:
        u = _projected_newton(H, g, lo, hi, iterations)
    return u, _free(u, H @ u + g, lo, hi)


def _free(u: Tensor, grad: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """The dimensions not held at a bound by a gradient pushing past it."""
    return ~(((u <= lo) & (grad > 0)) | ((u >= hi) & (grad < 0)))


def _projected_newton(H: Tensor, g: Tensor, lo: Tensor, hi: Tensor, iterations: int
                      ) -> Tensor:
    def value(u: Tensor) -> Tensor:
        return 0.5 * u @ H @ u + g @ u

    u = torch.zeros_like(g).clamp(lo, hi)
    for _ in range(iterations):
        grad = H @ u + g
        free = _free(u, grad, lo, hi)
        if not free.any():
            break
        step = torch.zeros_like(u)
        step[free] = -torch.linalg.solve(H[free][:, free], grad[free])
        alpha, before = 1.0, value(u)
        while True:
            trial = (u + alpha * step).clamp(lo, hi)
            if value(trial) <= before + 1e-12 * abs(float(before)) or alpha < 1e-10:
                break
            alpha *= 0.5
        converged = torch.allclose(trial, u, rtol=0.0, atol=1e-12)
        u = trial
        if converged:
            break
    return u


def _log_density_quadratic(K: Tensor, k: Tensor, prec: Tensor) -> tuple[Tensor, Tensor]:
    """-log N(u; K x + k, prec^-1) as 1/2 z^T H z + h^T z (+ const) over z = [x; u]."""
    H = torch.cat([torch.cat([K.T @ prec @ K, -K.T @ prec], 1),
                   torch.cat([-prec @ K, prec], 1)], 0)
    h = torch.cat([K.T @ prec @ k, -prec @ k])
    return H, h


@dataclass
class Step:
    controller: Controller
    eta: float
    kl: float


def kl_step(dyn: Dynamics, cost: QuadraticCost, previous: Controller, max_kl: float,
            eta_range: tuple[float, float] = (1e-6, 1e16), iterations: int = 50,
            limits: Limits | None = None) -> Step:
    """The new controller whose trajectory KL to `previous` is at most max_kl and as close to it
    as the bisection on log(eta) gets (the dual of the KL-bounded step); the smallest eta of
    the range where even that stays inside the bound. `limits`: the control-limited pass."""
    ref = Reference.of(previous)  # the same for every solve

    def solve(eta: float) -> Step:
        try:
            ctrl = backward(dyn, cost, eta, ref, limits)
        except torch.linalg.LinAlgError:
            return Step(previous, eta, math.inf)
        return Step(ctrl, eta, kl_divergence(ctrl, ref, dyn))

    lo, hi = math.log(eta_range[0]), math.log(eta_range[1])
    first = solve(eta_range[0])
    if first.kl <= max_kl:
        return first
    best = solve(eta_range[1])
    for _ in range(iterations):
        mid = solve(math.exp(0.5 * (lo + hi)))
        if mid.kl > max_kl:
            lo = math.log(mid.eta)
        else:
            hi, best = math.log(mid.eta), mid
        if abs(mid.kl - max_kl) < 0.01 * max_kl and mid.kl <= max_kl:
            break
    return best


MULT_RANGE = (0.01, 10.0)  # bounds of the step-size multiplier (the GPS code's defaults)


def adjusted_multiplier(multiplier: float, before: float, predicted: float,
                        actual: float) -> float:
    """The step-size rule of Levine & Abbeel 2014 (as the GPS code applies it): the last step
    was predicted to lower the expected cost from `before` to `predicted` (on the dynamics it
    was taken on) and lowered it to `actual` (on dynamics refitted to its samples); the
    multiplier scales by predicted improvement / (2 (predicted - actual improvement)), that
    ratio kept in [0.1, 5], the multiplier in MULT_RANGE."""
    predicted_gain, actual_gain = before - predicted, before - actual
    ratio = predicted_gain / (2.0 * max(1e-4, predicted_gain - actual_gain))
    ratio = min(5.0, max(0.1, ratio))
    return min(MULT_RANGE[1], max(MULT_RANGE[0], ratio * multiplier))


def expand_cost(step, final, x: Tensor, u: Tensor) -> QuadraticCost:
    """A cost's second-order expansion at every sample, averaged over the samples of each
    step (Hessians projected onto the positive semi-definite cone): step(x, u) and final(x)
    at states x (N, T+1, n) and actions u (N, T, m)."""
    n = x.shape[-1]
    z = torch.cat([x[:, :-1], u], -1)
    C, c = _expansion(lambda zz: step(zz[:n], zz[n:]), z.flatten(0, 1))
    C_final, c_final = _expansion(final, x[:, -1])
    N, T = z.shape[:2]
    return QuadraticCost(C.view(N, T, *C.shape[1:]).mean(0), c.view(N, T, -1).mean(0),
                         C_final.mean(0), c_final.mean(0))


def _expansion(fn, points: Tensor) -> tuple[Tensor, Tensor]:
    """fn's Hessian (PSD-projected) H and the linear term g - H p at each point, so that
    fn(z) ~ 1/2 z^T H z + (g - H p)^T z + const near p."""
    from torch.func import grad, hessian, vmap

    H = vmap(hessian(fn))(points)
    values, vectors = torch.linalg.eigh(0.5 * (H + H.transpose(1, 2)))
    H = vectors @ torch.diag_embed(values.clamp_min(0)) @ vectors.transpose(1, 2)
    g = vmap(grad(fn))(points)
    return H, g - (H @ points.unsqueeze(-1)).squeeze(-1)
