"""CEM-LST (the LST paper): CEM whose first-action distribution is refit by the LST posterior
(Eq. 4) instead of to the elites' first actions, and whose executed action is drawn from that
posterior after the last iteration instead of being the elite mean (CEM-MPC)."""
from __future__ import annotations

from typing import Callable

import torch

from mbrl_ray.planners.base import (gather_rows, prior_moments, refit, sample_around, shift,
                                    with_prior)
from mbrl_ray.planners.cem import CEMPlanner
from mbrl_ray.planners.lst import Density, lst_log_weights, sample_index, weighted_moments

# actions (B, N, H, A) -> values (B, N), first next states of P particles (B, N, P, obs)
TransitionObjective = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class CEMLSTPlanner(CEMPlanner):
    """Iteration k samples sequences whose first actions are draws from p^k (a Gaussian, the
    moments of the weighted candidates of the previous iteration); the elites' simulated first
    next states are the optimal latent trajectories that weight those candidates. The rest of
    each sequence is refit to the elites as in CEM. Acts with a candidate drawn by its weight.

    With an action prior (sequences of a prior policy), p^0 is the prior (Algorithm 1, line 2):
    the first action's Gaussian of the first iteration is fitted to the prior's first actions
    in place of the warm start."""

    @torch.no_grad()
    def plan(self, objective: TransitionObjective, state: torch.Tensor,
             generator: torch.Generator | None = None, prior: torch.Tensor | None = None,
             density: Density | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if density is None:
            raise ValueError("CEM-LST needs the model's transition density")
        mean, std = self.start(state, torch.full_like(state, self.init_std), prior)
        if prior is not None:  # p^0 = the prior (Algorithm 1, line 2)
            first_mean, first_std = prior_moments(prior[:, :, :1])
            mean = torch.cat([first_mean, mean[:, 1:]], 1)
            std = torch.cat([first_std, std[:, 1:]], 1)
        b, n = mean.shape[0], self.population
        for _ in range(self.iterations):
            noise = torch.randn((b, n, self.horizon, self.act_dim), device=mean.device,
                                generator=generator)
            samples = with_prior(sample_around(mean, std, noise), prior)
            values, first_states = objective(samples)
            values = self.charge_log_q(values, samples, mean, std)
            top = values.topk(self.num_elites, 1).indices
            optimal = first_states.gather(1, top[..., None, None].expand(
                -1, -1, *first_states.shape[2:])).flatten(1, 2)  # (B, K x P, obs)
            candidates = samples[:, :n, 0]  # only these are draws from p^k
            log_w = lst_log_weights(density(candidates, optimal))
            first_mean, first_std = weighted_moments(candidates, log_w)
            last_mean, last_std = mean[:, 0], std[:, 0]
            mean, std = refit(mean, std, gather_rows(samples, top), self.alpha)
            mean[:, 0] = self.alpha * last_mean + (1 - self.alpha) * first_mean
            std[:, 0] = self.alpha * last_std + (1 - self.alpha) * first_std
        self.last_log_weights = log_w  # diagnostics (effective sample size)
        action = candidates[torch.arange(b, device=mean.device), sample_index(log_w, generator)]
        sequence = torch.cat([action[:, None], mean[:, 1:]], 1)
        return sequence, shift(mean)

