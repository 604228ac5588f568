"""What every planner shares: an optimiser over action sequences in [-1, 1]^(H x A) for a batch
of B problems, scored by an objective `f(actions (B, N, H, A)) -> values (B, N)`.

A planner's state is one tensor whose first dim is the batch (the agent zeroes the rows of envs
whose episode ended); `plan` returns the sequence to act on and the state for the next step,
already shifted by one step (the warm start)."""
from __future__ import annotations

import math
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


class ActionPriorOptions:
    """Seed 001's action-prior options of the Gaussian sequence planners (set by make_planner):
    prior_weight > 0 subtracts prior_weight x sum_t discount^t log q(a_t) from each sequence's
    value, q the sampling Gaussian (the objective adds the matching + log p(a_t | s_t) of the
    prior policy: together Eq. 8's -log q/p term); prior_init starts the first iteration from
    the Gaussian fitted to the prior's sequences instead of the warm start."""

    prior_weight: float = 0.0
    prior_init: bool = False
    discount: float = 1.0

    def set_action_prior(self, weight: float, init: bool, discount: float) -> None:
        self.prior_weight, self.prior_init, self.discount = weight, init, discount

    def start(self, mean: torch.Tensor, std: torch.Tensor, prior: torch.Tensor | None):
        """The first iteration's mean and std: the warm start's, or the prior's moments."""
        if not self.prior_init or prior is None:
            return mean, std
        return prior_moments(prior)

    def score(self, objective: Objective, samples: torch.Tensor, mean: torch.Tensor,
              std: torch.Tensor) -> torch.Tensor:
        """objective(samples), less the weighted log density of the samples under q."""
        return self.charge_log_q(objective(samples), samples, mean, std)

    def charge_log_q(self, values: torch.Tensor, samples: torch.Tensor, mean: torch.Tensor,
                     std: torch.Tensor) -> torch.Tensor:
        """values (B, N) less prior_weight x the samples' log density under q (when weighted)."""
        if not self.prior_weight:
            return values
        return values - self.prior_weight * gaussian_log_density(samples, mean, std,
                                                                 self.discount)


PRIOR_MIN_STD = 0.05  # a Gaussian fitted to a few prior draws: keep it from collapsing


def prior_moments(prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (B, H, A) of the prior's sequences (B, P, H, A), clipped to [-1, 1]."""
    clipped = prior.clamp(-1.0, 1.0)
    return clipped.mean(1), clipped.std(1, correction=0).clamp_min(PRIOR_MIN_STD)


def gaussian_log_density(samples: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                         discount: float = 1.0) -> torch.Tensor:
    """sum_t discount^t log N(a_t; mean_t, std_t^2) of samples (B, N, H, A) -> (B, N)."""
    z = (samples - mean.unsqueeze(1)) / std.unsqueeze(1)
    per_step = (-0.5 * z ** 2 - std.log().unsqueeze(1) - 0.5 * math.log(2 * math.pi)).sum(-1)
    weights = discount ** torch.arange(samples.shape[2], device=samples.device,
                                       dtype=samples.dtype)
    return (per_step * weights).sum(-1)


class WarmStartedPlanner(ActionPriorOptions):
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
