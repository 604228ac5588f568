"""Time-varying linear-Gaussian dynamics fitted to a few rollouts (guided policy search under
unknown dynamics, Levine & Abbeel 2014, Sec. 3.1): at each step t, a joint Gaussian over
(x_t, u_t, x_{t+1}) from the N samples, combined with a normal-inverse-Wishart prior, then
conditioned on (x_t, u_t). The prior is one Gaussian over every transition given to it (the
paper fits a GMM prior; one cluster is its simplest case), which makes a fit from N smaller
than the state dimension well posed."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from mbrl_ray.planners.lqg import Dynamics

Tensor = torch.Tensor


@dataclass
class JointGaussian:
    """Mean (d,) and covariance (d, d) of z = [x, u, x']."""
    mean: Tensor
    cov: Tensor

    @classmethod
    def of(cls, points: Tensor) -> "JointGaussian":
        """The maximum-likelihood Gaussian of points (N, d)."""
        mean = points.mean(0)
        centred = points - mean
        return cls(mean, centred.T @ centred / len(points))


def transitions(x: Tensor, u: Tensor) -> Tensor:
    """Rollouts x (N, T+1, n), u (N, T, m) -> their transitions [x_t, u_t, x_{t+1}]
    (N, T, 2n + m)."""
    return torch.cat([x[:, :-1], u, x[:, 1:]], -1)


def posterior_cov(points: Tensor, prior: JointGaussian | None, strength: float) -> Tensor:
    """Covariance of the normal-inverse-Wishart posterior: the empirical covariance of `points`
    (N, d) and the prior's, weighted N : strength, plus the spread of the two means."""
    empirical = JointGaussian.of(points)
    if prior is None or strength == 0:
        return empirical.cov
    count = len(points)
    gap = empirical.mean - prior.mean
    return (count * empirical.cov + strength * prior.cov
            + count * strength / (count + strength) * torch.outer(gap, gap)) / (count + strength)


def fit_dynamics(x: Tensor, u: Tensor, prior: JointGaussian | None = None,
                 strength: float = 1.0, regularizer: float = 1e-6) -> Dynamics:
    """x_{t+1} ~ N(F_t [x_t; u_t] + f_t, D_t) for every step from rollouts x (N, T+1, n),
    u (N, T, m), float64; x_0 ~ N(mean, covariance) of the rollouts' first states.
    regularizer: added to the (x, u) block's diagonal before conditioning, and to D."""
    n = x.shape[-1]
    inp = n + u.shape[-1]
    points = transitions(x, u)
    eye_in = regularizer * torch.eye(inp, dtype=x.dtype)
    Fs, fs, Ds = [], [], []
    for t in range(points.shape[1]):
        sigma = posterior_cov(points[:, t], prior, strength)
        mean = points[:, t].mean(0)
        F = torch.linalg.solve(sigma[:inp, :inp] + eye_in, sigma[:inp, inp:]).T
        Fs.append(F)
        fs.append(mean[inp:] - F @ mean[:inp])
        D = sigma[inp:, inp:] - F @ (sigma[:inp, :inp] + eye_in) @ F.T
        Ds.append(0.5 * (D + D.T) + regularizer * torch.eye(n, dtype=x.dtype))
    first = JointGaussian.of(x[:, 0])
    return Dynamics(torch.stack(Fs), torch.stack(fs), torch.stack(Ds), first.mean,
                    first.cov + regularizer * torch.eye(n, dtype=x.dtype))
