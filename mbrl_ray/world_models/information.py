"""The information term of the inference view (Marino & Yue, "An inference perspective on
model-based reinforcement learning", Eq. 10): the mutual information between the ensemble
member that explains a transition (the agent's internal latent) and the predicted (state
change, reward),

    I(e; y | s, a) = H[1/E sum_e N_e] - 1/E sum_e H[N_e] = 1/E sum_e KL(N_e || mixture),

estimated by Monte Carlo with one draw y_e ~ N_e per member:
    I ~= 1/E sum_e [log N_e(y_e) - log (1/E sum_j N_j(y_e))].
It is zero where the members agree and grows to log E where they are told apart by y. The
mutual information does not change under the targets' affine standardisation, so it is
computed on the standardised outputs. `member_spread` is the older proxy: the std over members
of the mean state change.
"""
from __future__ import annotations

import math

import torch


def mutual_information(mean: torch.Tensor, logvar: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Members' Gaussians (E, R, D) (diagonal, log-variances) -> I(e; y) per row (R,), nats."""
    e = mean.shape[0]
    std = torch.exp(0.5 * logvar)
    draws = mean + std * torch.randn(mean.shape, device=mean.device, dtype=mean.dtype,
                                     generator=generator)
    inv_var = torch.exp(-logvar)
    # log N_j(y_i) for every draw i and member j: (E_i, E_j, R)
    diff = draws[:, None] - mean[None]
    log_n = -0.5 * ((diff ** 2 * inv_var[None]).sum(-1) + logvar.sum(-1)[None]
                    + mean.shape[-1] * math.log(2 * math.pi))
    own = log_n.diagonal(dim1=0, dim2=1).T  # (E, R): log N_i(y_i)
    mixture = torch.logsumexp(log_n, 1) - math.log(e)
    return (own - mixture).mean(0)


def member_spread(mean: torch.Tensor) -> torch.Tensor:
    """The proxy: std over members of the standardised mean state change, averaged over state
    dimensions. (E, R, obs) -> (R,)."""
    return mean.std(0).mean(-1)
