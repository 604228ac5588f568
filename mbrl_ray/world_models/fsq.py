"""Finite scalar quantisation (FSQ, Mentzer et al. 2023) as DCWM uses it: a latent of d slots,
each of b = len(levels) channels; channel j is bounded to levels[j] values, rounded with a
straight-through estimator and rescaled to [-1, 1]. The codebook is the fixed product of the
channels' values (prod(levels) codes of b numbers per slot); nothing is learned.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

EPS = 1e-3  # keeps the bound's tanh off its asymptotes, so that rounding reaches every level


class FSQ(nn.Module):
    """(..., d, b) real numbers -> (..., d, b) codes with values in [-1, 1]."""

    def __init__(self, levels: Sequence[int]) -> None:
        super().__init__()
        if any(level < 2 for level in levels):
            raise ValueError(f"FSQ levels {list(levels)}: each must be >= 2")
        self.levels = list(levels)
        lv = torch.tensor(self.levels, dtype=torch.float32)
        self.register_buffer("half_levels", (lv - 1) * (1 + EPS) / 2, persistent=False)
        self.register_buffer("offset", torch.where(lv % 2 == 0, 0.5, 0.0), persistent=False)
        self.register_buffer("half_width", torch.div(lv, 2, rounding_mode="floor"),
                             persistent=False)
        # Mixed-radix basis: the index of a code = sum_j level_index_j * basis_j.
        basis = torch.cumprod(torch.tensor([1] + self.levels[:-1]), 0)
        self.register_buffer("basis", basis, persistent=False)
        self.register_buffer("codebook", self._codebook(), persistent=False)

    @property
    def channels(self) -> int:
        return len(self.levels)

    @property
    def size(self) -> int:
        """Codes per slot: the product of the levels."""
        return len(self.codebook)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash channel j into (-(L_j - 1)/2, (L_j - 1)/2), shifted by 1/2 for even L_j so
        that rounding gives exactly L_j integers."""
        shift = torch.atanh(self.offset / self.half_levels)
        return torch.tanh(z + shift) * self.half_levels - self.offset

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        bounded = self.bound(z)
        rounded = bounded + (torch.round(bounded) - bounded).detach()  # straight-through
        return rounded / self.half_width

    def indices(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., b) codes -> (...) integer index into the codebook."""
        level_index = torch.round(codes * self.half_width + self.half_width).long()
        return (level_index * self.basis).sum(-1)

    def _codebook(self) -> torch.Tensor:
        """(prod(levels), b): every code, row i the code of index i (the inverse of
        `indices`)."""
        index = torch.arange(math.prod(self.levels))[:, None]
        level_index = (index // self.basis) % torch.tensor(self.levels)
        return (level_index - self.half_width) / self.half_width

    def expected(self, logits: torch.Tensor) -> torch.Tensor:
        """(..., size) logits of one categorical per slot -> (..., b) expected code."""
        return softmax(logits) @ self.codebook

    def sample_straight_through(self, logits: torch.Tensor, temperature: float = 1.0,
                                generator: torch.Generator | None = None) -> torch.Tensor:
        """(..., size) logits -> (..., b) code of a Gumbel-softmax sample: one-hot forward,
        the relaxed sample's gradient backward."""
        one_hot = gumbel_softmax_straight_through(logits, temperature, generator)
        return one_hot @ self.codebook


def gumbel_softmax_straight_through(logits: torch.Tensor, temperature: float = 1.0,
                                    generator: torch.Generator | None = None) -> torch.Tensor:
    """A one-hot sample of Categorical(softmax(logits)) whose gradient is that of the
    Gumbel-softmax relaxation (torch's own takes no generator, so seeded runs could not
    reproduce it)."""
    u = torch.rand(logits.shape, device=logits.device, generator=generator)
    exponential = (-torch.log(u.clamp(1e-10, 1.0))).clamp_min(1e-10)
    gumbel = -torch.log(exponential)
    soft = softmax((logits + gumbel) / temperature)
    hard = (soft == soft.amax(-1, keepdim=True)).float()  # ties have probability 0
    return hard + soft - soft.detach()


# torch's CPU softmax kernels are ~15x slower over a short last dim (the codebook's 15) than
# these few elementwise ops (measured with torch 2.13); results agree to float rounding.
def softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim."""
    e = (logits - logits.detach().amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log softmax(logits)[target] over the last dim: (..., K), (...) -> (...)."""
    top = logits.detach().amax(-1, keepdim=True)
    log_norm = (logits - top).exp().sum(-1).log() + top.squeeze(-1)
    return log_norm - logits.gather(-1, target.unsqueeze(-1)).squeeze(-1)
