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
