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
    inv_var = torch.exp(-logvar)
    # sum_d (delta - mu)^2 / var, expanded so that no (E, B, N, M, o) tensor is made
    quad = (torch.einsum("ebno,bmo->ebnm", inv_var, delta ** 2)
            - 2 * torch.einsum("ebno,bmo->ebnm", inv_var * mean, delta)
            + (inv_var * mean ** 2).sum(-1, keepdim=True))
    log_norm = -0.5 * (logvar.sum(-1, keepdim=True) + o * math.log(2 * math.pi))
    return torch.logsumexp(log_norm - 0.5 * quad, 0) - math.log(e)
