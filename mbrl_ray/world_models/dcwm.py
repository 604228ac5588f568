"""The discrete codebook world model (DCWM, Scannell et al. 2025): an encoder whose output FSQ
quantises into d slots of codes, a dynamics MLP giving one categorical over the codebook per slot
for the next latent, and a reward head; trained by cross-entropy against the encoder's code of
the next observation, multi-step with weight rho^t.

Latents are flattened codes (d x b numbers). Training rollouts feed straight-through
Gumbel-softmax samples forward; planning feeds expected codes E[c] = sum_i p_i c^(i).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mbrl_ray.nn import normed_mlp
from mbrl_ray.world_models.fsq import FSQ, cross_entropy

RANK_TOL = 1e-2


class DCWM(nn.Module):
    """encode(obs) -> code (N, d*b); step logits/samples/expectations; reward(code, action),
    squashed into `reward_range` (low, high) by tanh when one is given (the authors' DMC head)."""

    def __init__(self, obs_dim: int, act_dim: int, latent_dim: int, levels: Sequence[int],
                 encoder_hidden: int, hidden: int, layers: int,
                 reward_range: Sequence[float] = ()) -> None:
        super().__init__()
        self.reward_range = tuple(reward_range)
        self.fsq = FSQ(levels)
        self.slots = latent_dim
        self.code_dim = latent_dim * self.fsq.channels
        self.encoder = normed_mlp(obs_dim, self.code_dim, encoder_hidden, 1)
        self.dynamics = normed_mlp(self.code_dim + act_dim, latent_dim * self.fsq.size, hidden,
                                   layers)
        self.reward_head = normed_mlp(self.code_dim + act_dim, 1, hidden, layers)

    # ---- latents ------------------------------------------------------------------------------
    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """(..., obs_dim) -> (..., d*b) FSQ code (straight-through gradient to the encoder)."""
        z = self.encoder(obs).unflatten(-1, (self.slots, self.fsq.channels))
        return self.fsq(z).flatten(-2)

    def code_indices(self, code: torch.Tensor) -> torch.Tensor:
        """(..., d*b) code -> (..., d) codebook index per slot (the cross-entropy target)."""
        return self.fsq.indices(code.unflatten(-1, (self.slots, self.fsq.channels)))

    def next_logits(self, code: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(..., d*b), (..., A) -> (..., d, codebook size) logits of the next code per slot."""
        out = self.dynamics(torch.cat([code, action], -1))
        return out.unflatten(-1, (self.slots, self.fsq.size))

    def expected_next(self, code: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The next latent as planning uses it: each slot's expected code, flattened."""
        return self.fsq.expected(self.next_logits(code, action)).flatten(-2)

    def sampled_next(self, logits: torch.Tensor, temperature: float = 1.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """A straight-through Gumbel-softmax sample of the next latent from its logits."""
        return self.fsq.sample_straight_through(logits, temperature, generator).flatten(-2)

    def reward(self, code: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        out = self.reward_head(torch.cat([code, action], -1)).squeeze(-1)
        if not self.reward_range:
            return out
        low, high = self.reward_range
        return (high + low) / 2 + (high - low) / 2 * torch.tanh(out)

    # ---- training -----------------------------------------------------------------------------
    def loss(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
             valid: torch.Tensor, rho: float, temperature: float = 1.0,
             generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Multi-step loss on sequences: obs (B, H+1, D), action/reward/valid (B, H) for the
        transitions t -> t+1 (valid: the transition lies in the episode of obs[:, 0]).

        Step t: cross-entropy of the dynamics' logits against the code of obs[:, t+1] (encoder
        under no-grad) plus the reward's squared error, weighted rho^t, invalid rows zeroed and
        the sum divided by the batch size B (not by the valid rows: as the authors' code), then
        averaged over t."""
        horizon = action.shape[1]
        with torch.no_grad():
            targets = self.code_indices(self.encode(obs[:, 1:]))  # (B, H, d)
        code = self.encode(obs[:, 0])
        consistency, reward_err = [], []
        weight = valid.float()
        for t in range(horizon):
            logits = self.next_logits(code, action[:, t])
            ce = cross_entropy(logits, targets[:, t]).mean(1)
            err = (self.reward(code, action[:, t]) - reward[:, t]) ** 2
            consistency.append(rho ** t * (weight[:, t] * ce).mean())
            reward_err.append(rho ** t * (weight[:, t] * err).mean())
            code = self.sampled_next(logits, temperature, generator)
        out = {"consistency": torch.stack(consistency).mean(),
               "reward": torch.stack(reward_err).mean()}
        out["total"] = out["consistency"] + out["reward"]
        return out


class CodeRollout:
    """The DCWM's planning view (world_models/base.py): from each code, every candidate moves
    along expected codes E[c] (the paper's planning latent); rewards read (code, action) before
    the step; episodes never end in the model."""

    def __init__(self, model: DCWM, code: torch.Tensor) -> None:
        self.model, self.code = model, code

    def start(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.code[:, None].expand(-1, actions.shape[1], -1), actions

    def step(self, z: torch.Tensor, action: torch.Tensor, generator: torch.Generator | None):
        return self.model.expected_next(z, action), self.model.reward(z, action), 1.0

    def values(self, returns: torch.Tensor) -> torch.Tensor:
        return returns


def latent_rank(latents: torch.Tensor, tol: float = RANK_TOL) -> float:
    """The numerical rank of a batch's latents (N, dim) as a fraction of its largest possible
    rank min(N, dim): singular values above max(tol, tol x the largest) count (the authors'
    middle tolerance, 1e-2). A representation collapsing onto few directions scores low."""
    rank = torch.linalg.matrix_rank(latents.float(), atol=tol, rtol=tol)
    return int(rank) / min(latents.shape)


def codebook_usage(indices: torch.Tensor, size: int) -> float:
    """Of a batch's codes (N, slots) of a codebook of `size`: the fraction of the codebook
    each slot uses, averaged over slots (a collapsing encoder uses few codes)."""
    used = torch.zeros(indices.shape[1], size, dtype=torch.bool, device=indices.device)
    used.scatter_(1, indices.T, True)
    return float(used.float().mean())
