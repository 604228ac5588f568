"""Cross-entropy method over action sequences. Knows nothing of world models: it maximises
an objective `f(actions (B, N, H, A)) -> values (B, N)` for a batch of B problems at once."""
from __future__ import annotations

from typing import Callable

import torch

Objective = Callable[[torch.Tensor], torch.Tensor]


class CEMPlanner:
    """Gaussian over sequences in [-1, 1]^(H x A), refit to the elites with momentum `alpha`."""

    def __init__(self, act_dim: int, horizon: int, population: int, num_elites: int,
                 iterations: int, alpha: float = 0.1, init_std: float = 0.5) -> None:
        self.act_dim, self.horizon = act_dim, horizon
        self.population, self.num_elites = population, num_elites
        self.iterations, self.alpha, self.init_std = iterations, alpha, init_std

    def initial_mean(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(batch, self.horizon, self.act_dim, device=device)

    @staticmethod
    def shift(mean: torch.Tensor) -> torch.Tensor:
        """Warm start for the next step: drop the executed action, append zeros."""
        return torch.cat([mean[:, 1:], torch.zeros_like(mean[:, :1])], 1)

    @torch.no_grad()
    def plan(self, objective: Objective, mean: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Refine `mean` (B, H, A) for `iterations` rounds; return the final elite mean."""
        b = mean.shape[0]
        std = torch.full_like(mean, self.init_std)
        shape = (b, self.population, self.horizon, self.act_dim)
        for _ in range(self.iterations):
            noise = torch.randn(shape, device=mean.device, generator=generator)
            samples = (mean.unsqueeze(1) + std.unsqueeze(1) * noise).clamp_(-1.0, 1.0)
            values = objective(samples)
            top = values.topk(self.num_elites, dim=1).indices
            elites = samples.gather(1, top[:, :, None, None].expand(-1, -1, *shape[2:]))
            mean = self.alpha * mean + (1 - self.alpha) * elites.mean(1)
            std = self.alpha * std + (1 - self.alpha) * elites.std(1)
        return mean
