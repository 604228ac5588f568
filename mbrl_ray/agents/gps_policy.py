"""The neural policy's step of guided policy search: the importance-sampled objective of
Levine & Koltun 2013 (Eq. 4), and the supervised step of the later papers (Levine et al. 2015,
Montgomery & Levine 2016: regression onto the local controllers, weighted by their
precision)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mbrl_ray.planners.lqg import Controller

Tensor = torch.Tensor


@dataclass
class Samples:
    """One condition's sampled episodes: states x (N, T+1, n), actions u (N, T, m), step costs
    (N, T), and log_q (N, T): the log-density of each sample's actions up to each step under
    the mixture of the controllers that drew the condition's samples (dynamics cancel in every
    ratio of trajectory densities)."""
    x: Tensor
    u: Tensor
    cost: Tensor
    log_q: Tensor


def mixture_log_density(x: Tensor, u: Tensor, controllers: list[Controller | None],
                        counts: list[int]) -> Tensor:
    """log q(zeta_{1:t}) for each sample and step, (N, T): q the mixture of the controllers'
    trajectory densities, weighted by how many samples each drew; None stands for uniform
    actions on [-1, 1]^m (the first round)."""
    weights = torch.tensor(counts, dtype=x.dtype) / sum(counts)
    uniform = torch.full(u.shape[:2], -u.shape[-1] * math.log(2.0), dtype=x.dtype)
    per_ctrl = torch.stack([(uniform if c is None else c.log_prob(x[:, :-1], u)).cumsum(1)
                            for c in controllers])
    return torch.logsumexp(per_ctrl + weights.log()[:, None, None], 0)


def policy_log_density(mean: Tensor, log_std: Tensor, u: Tensor) -> Tensor:
    """log pi(zeta_{1:t}) for each sample and step, (N, T): mean (N, T, m), u (N, T, m)."""
    step = torch.distributions.Normal(mean, log_std.exp()).log_prob(u).sum(-1)
    return step.cumsum(1)


def importance_objective(log_pi: Tensor, log_q: Tensor, cost: Tensor,
                         regularizer: float) -> Tensor:
    """The 2013 paper's objective, as a cost to minimise: sum_t [ sum_i w_it c_it / Z_t
    - w_r log Z_t ], w_it = pi(zeta_i,1:t) / q(zeta_i,1:t), Z_t = sum_i w_it (log space)."""
    log_w = log_pi - log_q                       # (N, T)
    log_z = torch.logsumexp(log_w, 0)            # (T,)
    weights = (log_w - log_z).exp()              # self-normalised
    return ((weights * cost).sum(0) - regularizer * log_z).sum()


def supervised_loss(policy_mean: Tensor, target: Tensor, precision: Tensor) -> Tensor:
    """Mean of (pi(x) - mu(x))^T P (pi(x) - mu(x)) over states: policy_mean, target (N, m),
    precision (N, m, m)."""
    gap = policy_mean - target
    return torch.einsum("ni,nij,nj->n", gap, precision, gap).mean()
