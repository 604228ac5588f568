"""MPPI as TD-MPC2 and DC-MPC plan: Gaussian samples (plus the prior policy's sequences), the
elites weighted by exp(temperature x (value - max value)), mean and std refit with those weights,
std kept in [min_std, max_std]. Terminal values from a critic belong to the objective."""
from __future__ import annotations

import torch

from mbrl_ray.planners.base import (Objective, WarmStartedPlanner, gather_rows, sample_around,
                                    shift, with_prior)


class MPPIPlanner(WarmStartedPlanner):
    """Executes one elite of the last iteration drawn by its score (as TD-MPC2: an elite lies on
    a mode, where the weighted mean of elites split between two modes need not); warm-starts
    from the weighted mean shifted by one step."""

    def __init__(self, act_dim: int, horizon: int, population: int, num_elites: int,
                 iterations: int, temperature: float = 0.5, min_std: float = 0.05,
                 max_std: float = 2.0) -> None:
        self.act_dim, self.horizon = act_dim, horizon
        self.population, self.num_elites, self.iterations = population, num_elites, iterations
        self.temperature, self.min_std, self.max_std = temperature, min_std, max_std

    @torch.no_grad()
    def plan(self, objective: Objective, state: torch.Tensor,
             generator: torch.Generator | None = None,
             prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = self.start(state, torch.full_like(state, self.max_std), prior)
        shape = (mean.shape[0], self.population, self.horizon, self.act_dim)
        for _ in range(self.iterations):
            noise = torch.randn(shape, device=mean.device, generator=generator)
            samples = with_prior(sample_around(mean, std, noise), prior)
            values, top = self.score(objective, samples, mean, std).topk(self.num_elites, 1)
            elites = gather_rows(samples, top)
            score = torch.softmax(self.temperature * (values - values[:, :1]), 1)[..., None, None]
            mean = (score * elites).sum(1)
            std = ((score * (elites - mean.unsqueeze(1)) ** 2).sum(1).sqrt()
                   .clamp(self.min_std, self.max_std))
        pick = torch.multinomial(score[..., 0, 0], 1, generator=generator)
        return gather_rows(elites, pick)[:, 0], shift(mean)
