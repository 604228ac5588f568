"""Deep PILCO's policy evaluation (Gal, McAllister & Rasmussen 2016, Sec. 3): K particles from
the start distribution, each with its own dropout mask held for the whole rollout (one
dynamics function per particle); after each step the particles are summarised by their mean
and covariance and resampled from that Gaussian (the moment matching PILCO does analytically),
and the cost is averaged over the particles. The noise is reparameterised, so the predicted
cost is differentiable in the policy's parameters (pathwise gradients).

`reinforce_surrogate` is the lecture's label for the policy step (REINFORCE): no gradient
through the model, particles kept apart (no resampling, which would break a particle's
trajectory), a Gaussian exploration noise on the policy's actions, and the likelihood-ratio
gradient of the particles' mean cost."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from mbrl_ray.moment_tasks import MomentTask

Tensor = torch.Tensor
Policy = Callable[[Tensor], Tensor]
F64 = torch.float64
JITTER = 1e-6


class ParticleDynamics(Protocol):
    """x' - x per particle under its own sample of the dynamics (a dropout network's masks:
    world_models/dropout_net.py)."""

    def sample_masks(self, count: int, generator: torch.Generator) -> Any: ...

    def __call__(self, inputs: Tensor, masks: Any) -> Tensor: ...


def start_particles(task: MomentTask, model: ParticleDynamics, particles: int,
                    generator: torch.Generator) -> tuple[Any, Tensor]:
    """(masks, x0 (particles, n)): a dynamics sample per particle, then the start draws."""
    mean, cov = (torch.as_tensor(v, dtype=F64) for v in task.start())
    masks = model.sample_masks(particles, generator)
    noise = torch.randn(particles, len(mean), generator=generator, dtype=F64)
    return masks, mean + noise @ torch.linalg.cholesky(cov).T


def resample(x: Tensor, noise: Tensor) -> Tensor:
    """Particles x (K, n) -> mean + L noise (K, n), L the Cholesky factor of their covariance:
    the Gaussian with the particles' first two moments, sampled with the given noise."""
    mean = x.mean(0)
    centred = x - mean
    cov = centred.T @ centred / (len(x) - 1) + JITTER * torch.eye(x.shape[1], dtype=x.dtype)
    return mean + noise @ torch.linalg.cholesky(cov).T


def particle_costs(task: MomentTask, policy: Policy, model: ParticleDynamics, steps: int,
                   particles: int, generator: torch.Generator) -> Tensor:
    """The mean saturating cost over particles at t = 1..steps (steps,); masks, start draws
    and resampling noise all from `generator`."""
    masks, x = start_particles(task, model, particles, generator)
    n = x.shape[1]
    pin = list(task.policy_inputs)
    costs = []
    for _ in range(steps):
        u = policy(task.augment(x)[:, pin])
        x = x + model(task.model_inputs(x, u), masks)
        x = resample(x, torch.randn(particles, n, generator=generator, dtype=x.dtype))
        costs.append(task.cost(x).mean())
    return torch.stack(costs)


def reinforce_surrogate(task: MomentTask, policy: Policy, model: ParticleDynamics, steps: int,
                        particles: int, std: float, generator: torch.Generator
                        ) -> tuple[Tensor, Tensor]:
    """-> (surrogate, mean cost): the surrogate's gradient is the likelihood-ratio estimate
    of d/d theta E[sum_t c(x_t)] for actions a_t = pi(x_t) + std eps (clipped to [-1, 1] as
    the env clips them), the score of each action weighted by its particle's cost-to-go
    minus the other particles' mean cost-to-go at that step (a leave-one-out baseline, so
    the estimate stays unbiased). Masks, start draws and noise from `generator`."""
    masks, x = start_particles(task, model, particles, generator)
    pin = list(task.policy_inputs)
    scores, costs = [], []
    for _ in range(steps):
        centre = policy(task.augment(x)[:, pin])
        a = centre.detach() + std * torch.randn(centre.shape, generator=generator, dtype=F64)
        scores.append((-0.5 * ((a - centre) / std) ** 2).sum(-1))  # log N(a; centre, std)
        with torch.no_grad():  # the env clips the drawn action: a function of it
            x = x + model(task.model_inputs(x, a.clamp(-1.0, 1.0)), masks)
        costs.append(task.cost(x))
    cost = torch.stack(costs)                                        # (steps, particles)
    to_go = cost.flip(0).cumsum(0).flip(0)
    others = (to_go.sum(1, keepdim=True) - to_go) / (particles - 1)
    return (torch.stack(scores) * (to_go - others)).sum(0).mean(), cost.sum(0).mean()
