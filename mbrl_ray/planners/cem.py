"""Cross-entropy method (PETS): a Gaussian over sequences, refit to the elites with momentum."""
from __future__ import annotations

import torch

from mbrl_ray.planners.base import Objective, gather_rows, shift, with_prior


class CEMPlanner:
    """Executes the final elite mean (the PETS paper) or, with execute='best', the best sequence
    sampled in any iteration (mbrl-lib's default), which survives objectives whose elites split
    between two modes; warm-starts from the mean shifted by one step."""

    def __init__(self, act_dim: int, horizon: int, population: int, num_elites: int,
                 iterations: int, alpha: float = 0.1, init_std: float = 0.5,
                 execute: str = "mean") -> None:
        self.act_dim, self.horizon, self.execute = act_dim, horizon, execute
        self.population, self.num_elites = population, num_elites
        self.iterations, self.alpha, self.init_std = iterations, alpha, init_std

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(batch, self.horizon, self.act_dim, device=device)

    @torch.no_grad()
    def plan(self, objective: Objective, state: torch.Tensor,
             generator: torch.Generator | None = None,
             prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mean = state
        std = torch.full_like(mean, self.init_std)
        shape = (mean.shape[0], self.population, self.horizon, self.act_dim)
        best, best_value = mean, torch.full(shape[:1], -torch.inf, device=mean.device)
        for _ in range(self.iterations):
            noise = torch.randn(shape, device=mean.device, generator=generator)
            samples = with_prior((mean.unsqueeze(1) + std.unsqueeze(1) * noise).clamp_(-1, 1),
                                 prior)
            values, top = objective(samples).topk(self.num_elites, 1)
            elites = gather_rows(samples, top)
            better = values[:, 0] > best_value
            best = torch.where(better[:, None, None], elites[:, 0], best)
            best_value = torch.where(better, values[:, 0], best_value)
            mean = self.alpha * mean + (1 - self.alpha) * elites.mean(1)
            std = self.alpha * std + (1 - self.alpha) * elites.std(1)
        return (best if self.execute == "best" else mean), shift(mean)
