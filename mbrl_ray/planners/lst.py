"""The Latent-Simulated-Trajectories posterior (Piché et al., LST paper Eq. 4, Alg. 1).

Candidate first actions a_i are draws from the current action distribution p^k. The planner
simulates futures and keeps the optimal ones (CEM's elites, SMCP's surviving particles); their
first next states s'_j are the latent simulated trajectories. Eq. 4 estimated on the candidates:

    p^{k+1}(a_i) / p^k(a_i)  ∝  sum_j p(s'_j | s, a_i) / Z_j,   Z_j = mean_i' p(s'_j | s, a_i'),

i.e. the average over trajectories of the Bayes posterior of the action that led to s'_j, with
p(s' | s, a) the transition density of the world model (the ensemble as a Gaussian mixture).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

# first actions (B, N, A), next states (B, M, obs) -> log p(s'_j | s, a_i) (B, N, M)
Density = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def lst_log_weights(log_density: torch.Tensor,
                    log_counts: torch.Tensor | None = None) -> torch.Tensor:
    """log p(s'_j | s, a_i) (B, N, M) -> normalised log weights of the N candidates (B, N).

    The candidates must be draws from p^k; their weights then represent p^{k+1}. log_counts
    (B, M): how many trajectories share s'_j (-inf: a padding column), the same as repeating
    column j that many times."""
    n = log_density.shape[1]
    log_z = torch.logsumexp(log_density, 1, keepdim=True) - math.log(n)  # (B, 1, M)
    terms = log_density - log_z
    if log_counts is not None:
        terms = terms + log_counts[:, None, :]
    return torch.log_softmax(torch.logsumexp(terms, 2), 1)


def weighted_moments(samples: torch.Tensor, log_weights: torch.Tensor,
                     min_std: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of samples (B, N, A) under normalised log weights (B, N)."""
    w = log_weights.exp().unsqueeze(-1)
    mean = (w * samples).sum(1)
    var = (w * (samples - mean.unsqueeze(1)) ** 2).sum(1)
    return mean, var.sqrt().clamp_min(min_std)


def sample_index(log_weights: torch.Tensor, generator: torch.Generator | None = None):
    """One candidate index per row drawn by weight: (B, N) -> (B,)."""
    return torch.multinomial(log_weights.exp(), 1, generator=generator).squeeze(1)
