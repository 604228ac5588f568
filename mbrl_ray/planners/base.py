"""What every planner shares: an optimiser over action sequences in [-1, 1]^(H x A) for a batch
of B problems, scored by an objective `f(actions (B, N, H, A)) -> values (B, N)`.

A planner's state is one tensor whose first dim is the batch (the agent zeroes the rows of envs
whose episode ended); `plan` returns the sequence to act on and the state for the next step,
already shifted by one step (the warm start)."""
from __future__ import annotations

from typing import Callable, Protocol

import torch

Objective = Callable[[torch.Tensor], torch.Tensor]


class Planner(Protocol):
    act_dim: int
    horizon: int

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor: ...

    def plan(self, objective: Objective, state: torch.Tensor,
             generator: torch.Generator | None = None,
             prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (sequence (B, H, A) whose first action is executed, next state)."""
        ...


def shift(seq: torch.Tensor) -> torch.Tensor:
    """Drop the executed (first) step along dim -2, append zeros: the next step's warm start."""
    return torch.cat([seq[..., 1:, :], torch.zeros_like(seq[..., :1, :])], -2)


def gather_rows(samples: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """samples (B, N, H, A), index (B, K) -> (B, K, H, A)."""
    return samples.gather(1, index[:, :, None, None].expand(-1, -1, *samples.shape[2:]))


def with_prior(samples: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
    """Append the prior policy's sequences (B, P, H, A) to the sampled ones."""
    return samples if prior is None else torch.cat([samples, prior.clamp(-1.0, 1.0)], 1)


class WarmStartedPlanner:
    """Planners whose state is one warm-start sequence (B, H, A) per env."""

    act_dim: int
    horizon: int

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(batch, self.horizon, self.act_dim, device=device)


def sample_around(mean: torch.Tensor, std: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """mean, std (B, H, A) and noise (B, N, H, A) -> samples (B, N, H, A) clipped to [-1, 1]."""
    return (mean.unsqueeze(1) + std.unsqueeze(1) * noise).clamp_(-1.0, 1.0)


def refit(mean: torch.Tensor, std: torch.Tensor, elites: torch.Tensor,
          alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """CEM's refit of mean and std to elites (B, K, H, A), keeping `alpha` of the old ones."""
    return (alpha * mean + (1 - alpha) * elites.mean(1),
            alpha * std + (1 - alpha) * elites.std(1))


def keep_best(best: torch.Tensor, best_value: torch.Tensor, candidate: torch.Tensor,
              value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per problem, the better of the best sequence so far (B, H, A) and a candidate."""
    better = value > best_value
    return (torch.where(better[:, None, None], candidate, best),
            torch.where(better, value, best_value))
