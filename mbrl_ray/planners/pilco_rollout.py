"""PILCO's policy evaluation: the state distribution's moments rolled through the policy and
the GP dynamics for a trial's steps, and the predicted long-term cost sum_t E[c(x_t)]
(Deisenroth & Rasmussen 2011, Sec. 2.2). Differentiable in the policy's parameters, which is
how PILCO improves the policy (its analytic gradients are autograd's here).

A task (`MomentTask`) says which state entry is an angle (replaced by its sin and cos where the
policy, the GP and the cost read it), which entries the policy and the cost read, the initial
state distribution, and the cost's target and width."""
from __future__ import annotations

import math
import torch
from torch import nn

from mbrl_ray.moment_tasks import MomentTask
from mbrl_ray.planners.moments import (Joint, saturating_cost, se_moments, sin_squash_moments,
                                       trig_moments)
from mbrl_ray.world_models.gp import ExactGP

Tensor = torch.Tensor
F64 = torch.float64


class RBFPolicy(nn.Module):
    """PILCO's nonlinear policy: u = sin-squash(sum_i beta_i exp(-|x - c_i|^2_L / 2)) over the
    task's policy inputs, parameterised as the authors do: a GP's posterior mean (signal
    variance 1, noise std 0.01) whose pseudo-inputs c_i, pseudo-targets t_i and ARD widths L
    are learned, beta = (K + 0.01^2 I)^-1 t. Centres drawn close together make K nearly
    singular, so the first policies are large, varied functions: early trials explore."""

    NOISE_VAR = 0.01 ** 2

    def __init__(self, inputs: int, actions: int, basis: int, generator: torch.Generator,
                 centre_mean: Tensor, centre_std: Tensor, widths: Tensor) -> None:
        super().__init__()
        self.centres = nn.Parameter(centre_mean + centre_std * torch.randn(
            basis, inputs, generator=generator, dtype=F64))
        self.targets = nn.Parameter(0.1 * torch.randn(actions, basis, generator=generator,
                                                      dtype=F64))
        self.log_ell = nn.Parameter(widths.log().expand(actions, inputs).clone())

    def beta(self) -> Tensor:
        """(actions, basis) weights: (K + noise I)^-1 t per action."""
        ell = self.log_ell.exp()
        scaled = self.centres[None] / ell[:, None, :]
        K = torch.exp(-0.5 * torch.cdist(scaled, scaled) ** 2)
        K = K + self.NOISE_VAR * torch.eye(len(self.centres), dtype=F64)
        return torch.linalg.solve(K, self.targets[..., None])[..., 0]

    def pre_squash(self, x: Tensor) -> Tensor:
        """(N, inputs) -> (N, actions), before the squashing."""
        ell = self.log_ell.exp()                                    # (A, D)
        sq = (((x[:, None, None, :] - self.centres[None, None]) / ell[None, :, None]) ** 2)
        return (self.beta()[None] * torch.exp(-0.5 * sq.sum(-1))).sum(-1)

    def forward(self, x: Tensor) -> Tensor:
        z = self.pre_squash(x)
        return (9 * torch.sin(z) + torch.sin(3 * z)) / 8

    @property
    def actions(self) -> int:
        return len(self.targets)

    def moments(self, m: Tensor, S: Tensor):
        ones = torch.ones(self.actions, dtype=F64)
        return se_moments(m, S, self.centres, self.beta(), self.log_ell.exp(), ones)


def step_cost(task: MomentTask, m: Tensor, S: Tensor) -> Tensor:
    """E[c(x)] for x ~ N(m, S)."""
    joint = Joint(m, S).append([task.angle], trig_moments(m[task.angle], S[task.angle,
                                                                           task.angle]))
    rows = torch.tensor(task.cost_rows, dtype=F64)
    return saturating_cost(rows @ joint.mean, rows @ joint.cov @ rows.T,
                           torch.tensor(task.target, dtype=F64), task.width)


def step_joint(task: MomentTask, policy: RBFPolicy, gp: ExactGP, m: Tensor, S: Tensor
               ) -> tuple[Joint, list[int], list[int]]:
    """One step's joint Gaussian over (x, sin, cos, pre-squash z, action u, delta) for
    x ~ N(m, S), and the indices of u and of delta in it."""
    n = len(m)
    joint = Joint(m, S).append([task.angle], trig_moments(m[task.angle], S[task.angle,
                                                                           task.angle]))
    pin = list(task.policy_inputs)
    joint = joint.append(pin, policy.moments(*joint.block(pin)))   # pre-squash, at n + 2
    z = list(range(n + 2, n + 2 + policy.actions))
    joint = joint.append(z, sin_squash_moments(*joint.block(z)))
    u = [i + len(z) for i in z]
    joint = joint.append(pin + u, gp.moments(*joint.block(pin + u)))
    return joint, u, list(range(len(joint.mean) - n, len(joint.mean)))


def propagate(task: MomentTask, policy: RBFPolicy, gp: ExactGP, m: Tensor, S: Tensor
              ) -> tuple[Tensor, Tensor]:
    """One step: x ~ N(m, S) -> the moment-matched N(m', S') of x' = x + f(x, pi(x))."""
    joint, _, delta = step_joint(task, policy, gp, m, S)
    state = list(range(len(m)))
    cross = joint.cov[state][:, delta]
    cov = joint.cov[state][:, state] + joint.cov[delta][:, delta] + cross + cross.T
    return joint.mean[state] + joint.mean[delta], 0.5 * (cov + cov.T)


def predicted_costs(task: MomentTask, policy: RBFPolicy, gp: ExactGP, steps: int) -> Tensor:
    """E[c(x_t)] for t = 1..steps from the task's start distribution (steps,)."""
    m, S = (torch.as_tensor(v, dtype=F64) for v in task.start())
    costs = []
    for _ in range(steps):
        m, S = propagate(task, policy, gp, m, S)
        costs.append(step_cost(task, m, S))
    return torch.stack(costs)


def policy_optimiser(policy: RBFPolicy, iterations: int) -> torch.optim.LBFGS:
    """L-BFGS with line searches (the authors use conjugate gradients / BFGS with a fixed
    budget of line searches)."""
    return torch.optim.LBFGS(policy.parameters(), max_iter=iterations,
                             line_search_fn="strong_wolfe")


def optimise_policy(task: MomentTask, policy: RBFPolicy, gp: ExactGP, steps: int,
                    optimiser: torch.optim.LBFGS) -> tuple[float, float]:
    """Minimise the predicted long-term cost from the policy's current parameters with a
    fresh optimiser (policy_optimiser); -> (cost before, after). A search that ends worse or
    non-finite keeps the policy it started from."""
    with torch.no_grad():
        before = float(predicted_costs(task, policy, gp, steps).sum())
    saved = {k: v.clone() for k, v in policy.state_dict().items()}

    def closure():
        optimiser.zero_grad()
        loss = predicted_costs(task, policy, gp, steps).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        after = float(predicted_costs(task, policy, gp, steps).sum())
    if not math.isfinite(after) or after > before:
        policy.load_state_dict(saved)
        after = before
    return before, after
