"""Random shooting (MBMF, Nagabandi et al. 2018): uniform sequences, act on the best one."""
from __future__ import annotations

import torch

from mbrl_ray.planners.base import (Objective, WarmStartedPlanner, gather_rows, keep_best, shift,
                                    with_prior)


class RandomShootingPlanner(WarmStartedPlanner):
    """population x iterations uniform samples in all (one batch per iteration); the state is
    the previous best sequence, shifted, which competes with the fresh samples."""

    def __init__(self, act_dim: int, horizon: int, population: int, iterations: int = 1) -> None:
        self.act_dim, self.horizon = act_dim, horizon
        self.population, self.iterations = population, iterations

    @torch.no_grad()
    def plan(self, objective: Objective, state: torch.Tensor,
             generator: torch.Generator | None = None,
             prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        b = state.shape[0]
        best, best_value = state, objective(state.unsqueeze(1))[:, 0]
        shape = (b, self.population, self.horizon, self.act_dim)
        for _ in range(self.iterations):
            samples = torch.rand(shape, device=state.device, generator=generator) * 2 - 1
            samples = with_prior(samples, prior)
            values = objective(samples)
            value, index = values.max(1)
            best, best_value = keep_best(best, best_value,
                                         gather_rows(samples, index[:, None])[:, 0], value)
        return best, shift(best)
