"""Deep PILCO's policy evaluation (Gal, McAllister & Rasmussen 2016, Sec. 3): K particles from
the start distribution, each with its own dropout mask held for the whole rollout (one
dynamics function per particle); after each step the particles are summarised by their mean
and covariance and resampled from that Gaussian (the moment matching PILCO does analytically),
and the cost is averaged over the particles. The noise is reparameterised, so the predicted
cost is differentiable in the policy's parameters (pathwise gradients)."""
from __future__ import annotations

import torch

from mbrl_ray.moment_tasks import MomentTask
from mbrl_ray.world_models.dropout_net import DropoutDynamics

Tensor = torch.Tensor
JITTER = 1e-6


def resample(x: Tensor, noise: Tensor) -> Tensor:
    """Particles x (K, n) -> mean + L noise (K, n), L the Cholesky factor of their covariance:
    the Gaussian with the particles' first two moments, sampled with the given noise."""
    mean = x.mean(0)
    centred = x - mean
    cov = centred.T @ centred / (len(x) - 1) + JITTER * torch.eye(x.shape[1], dtype=x.dtype)
    return mean + noise @ torch.linalg.cholesky(cov).T


def particle_costs(task: MomentTask, policy, model: DropoutDynamics, steps: int,
                   particles: int, generator: torch.Generator) -> Tensor:
    """The mean saturating cost over particles at t = 1..steps (steps,); masks, start draws
    and resampling noise all from `generator`."""
    mean, cov = (torch.as_tensor(v, dtype=model.out.weight.dtype) for v in task.start())
    n = len(mean)
    masks = model.sample_masks(particles, generator)
    x = mean + torch.randn(particles, n, generator=generator, dtype=mean.dtype) @ \
        torch.linalg.cholesky(cov).T
    pin = list(task.policy_inputs)
    costs = []
    for _ in range(steps):
        u = policy(task.augment(x)[:, pin])
        x = x + model(task.model_inputs(x, u), masks)
        x = resample(x, torch.randn(particles, n, generator=generator, dtype=x.dtype))
        costs.append(task.cost(x).mean())
    return torch.stack(costs)
