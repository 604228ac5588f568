"""Transition densities of the probabilistic ensemble, taken as a mixture of its members'
Gaussians (the LST paper, after Lakshminarayanan et al. 2017):

    log p(s' | s, a) = logsumexp_e log N(s' - s; mu_e(s, a), sigma_e^2(s, a)) - log E.
"""
from __future__ import annotations

import math

import torch

from mbrl_ray.world_models.planning_ensemble import PlanningEnsemble


@torch.no_grad()
def log_mixture_density(model: PlanningEnsemble, obs: torch.Tensor, actions: torch.Tensor,
                        next_states: torch.Tensor) -> torch.Tensor:
    """obs (B, obs_dim), first actions (B, N, A), next states (B, M, obs_dim) ->
    log p(s'_m | s, a_n) (B, N, M), in float64 (the log-densities of far-off states are large)."""
    b, n, _ = actions.shape
    state = obs.repeat_interleave(n, 0)
    mean, logvar = model.member_gaussians(state, actions.reshape(b * n, -1))
    e, o = mean.shape[0], mean.shape[-1]
    mean, logvar = mean.double().view(e, b, n, o), logvar.double().view(e, b, n, o)
    delta = (next_states - obs[:, None]).double()  # (B, M, o)
    # log N(delta; mu, var) = sum_d [-delta^2 / 2var + delta mu / var] + const(mu, var): one
    # batched product of per-candidate and per-state features, so that no (E, B, N, M, o)
    # tensor is made and the (E, B, N, M) result is written once.
    inv_var = torch.exp(-logvar)
    const = -0.5 * ((inv_var * mean ** 2).sum(-1, keepdim=True) + logvar.sum(-1, keepdim=True)
                    + o * math.log(2 * math.pi))
    per_candidate = torch.cat([-0.5 * inv_var, inv_var * mean, const], -1)  # (E, B, N, 2o+1)
    per_state = torch.cat([delta ** 2, delta, torch.ones_like(delta[..., :1])], -1)
    log_prob = torch.einsum("ebnf,bmf->ebnm", per_candidate, per_state)
    return _logsumexp_members_(log_prob) - math.log(e)


def _logsumexp_members_(x: torch.Tensor) -> torch.Tensor:
    """logsumexp over dim 0, overwriting x (it is the largest tensor here)."""
    top = x.amax(0)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    return x.sub_(top).exp_().sum(0).log_().add_(top)
