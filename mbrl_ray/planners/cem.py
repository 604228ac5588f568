"""Cross-entropy method (PETS): a Gaussian over sequences, refit to the elites with momentum."""
from __future__ import annotations

import torch

from mbrl_ray.planners.base import (Objective, WarmStartedPlanner, gather_rows, keep_best,
                                    refit, sample_around, shift, with_prior)


class CEMPlanner(WarmStartedPlanner):
    """Executes the final elite mean (the PETS paper) or, with execute='best', the best sequence
    sampled in any iteration (mbrl-lib's default), which survives objectives whose elites split
    between two modes; warm-starts from the mean shifted by one step."""

    def __init__(self, act_dim: int, horizon: int, population: int, num_elites: int,
                 iterations: int, alpha: float = 0.1, init_std: float = 0.5,
                 execute: str = "mean") -> None:
        self.act_dim, self.horizon, self.execute = act_dim, horizon, execute
        self.population, self.num_elites = population, num_elites
        self.iterations, self.alpha, self.init_std = iterations, alpha, init_std

    @torch.no_grad()
    def plan(self, objective: Objective, state: torch.Tensor,
             generator: torch.Generator | None = None,
             prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = self.start(state, torch.full_like(state, self.init_std), prior)
        shape = (mean.shape[0], self.population, self.horizon, self.act_dim)
        best, best_value = mean, torch.full(shape[:1], -torch.inf, device=mean.device)
        for _ in range(self.iterations):
            noise = torch.randn(shape, device=mean.device, generator=generator)
            samples = with_prior(sample_around(mean, std, noise), prior)
            values, top = self.score(objective, samples, mean, std).topk(self.num_elites, 1)
            elites = gather_rows(samples, top)
            best, best_value = keep_best(best, best_value, elites[:, 0], values[:, 0])
            mean, std = refit(mean, std, elites, self.alpha)
        return (best if self.execute == "best" else mean), shift(mean)
