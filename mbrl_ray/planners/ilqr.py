"""Iterative LQR on a differentiable model x' = f(x, u) (Li & Todorov 2004), control-limited
as Tassa, Mansard & Todorov 2014: guided policy search's trajectory optimiser when its local
controllers plan through a global learned model (`gps.dynamics=model`, agents/gps.py), as the
2013 GPS paper's DDP planned through the simulator.

Each iteration linearises the model along the nominal trajectory, expands the cost to second
order there, runs the control-limited backward pass of planners/lqg.py (absolute coordinates,
box at the nominal states) and then a forward pass through the model itself:
u_t = clip(u_t_nominal + alpha (mean_t - u_t_nominal) + K_t (x_t - x_t_nominal)), with alpha
halved until the trajectory's cost falls. The nonlinear forward pass is what lets a swing-up
pump, which a step on local linear fits cannot find (docs/algorithms.md)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from mbrl_ray.planners.lqg import (Controller, Dynamics, Limits, QuadraticCost, backward,
                                   expand_cost)

Tensor = torch.Tensor
Step = Callable[[Tensor, Tensor], Tensor]  # (x (..., n), u (..., m)) -> x' (..., n)
LINE_SEARCH = 12  # halvings of alpha before an iteration gives up
MU_MIN, MU_MAX = 1e-6, 1e6  # the range of the Levenberg-Marquardt term on Q_uu
STATE_NOISE = 1e-6  # the linearisation's process noise: the backward pass needs none


@dataclass
class Trajectory:
    """States (T+1, n), actions (T, m) and the cost sum_t step(x_t, u_t) + final(x_T)."""
    x: Tensor
    u: Tensor
    cost: float


def simulate(step: Step, cost, x0: Tensor, nominal: Trajectory | None, u: Tensor,
             K: Tensor | None = None) -> Trajectory:
    """The model's trajectory from x0 acting u_t + K_t (x_t - nominal x_t) (the actions alone
    without K), each action clipped to [-1, 1]."""
    xs, us = [x0], []
    with torch.no_grad():
        for t in range(len(u)):
            a = u[t] if K is None else u[t] + K[t] @ (xs[-1] - nominal.x[t])
            us.append(a.clamp(-1.0, 1.0))
            xs.append(step(xs[-1], us[-1]))
        x, u = torch.stack(xs), torch.stack(us)
        total = cost.step(x[:-1], u).sum() + cost.final(x[-1])
    return Trajectory(x, u, float(total))


def linearise(step: Step, traj: Trajectory) -> Dynamics:
    """x_{t+1} ~ F_t [x; u] + f_t along the trajectory (the model's Jacobians, no graph)."""
    from torch.func import jacrev, vmap

    n = traj.x.shape[1]
    z = torch.cat([traj.x[:-1], traj.u], -1)
    # detached: a learned model's Jacobians carry its parameters' graph otherwise
    F = vmap(jacrev(lambda zz: step(zz[:n], zz[n:])))(z).detach()
    f = traj.x[1:] - (F @ z.unsqueeze(-1)).squeeze(-1)
    eye = torch.eye(n, dtype=z.dtype)
    return Dynamics(F, f, STATE_NOISE * eye.expand(len(z), n, n).clone(), traj.x[0],
                    STATE_NOISE * eye)


def ilqr(step: Step, cost, x0: Tensor, u0: Tensor, iterations: int,
         tolerance: float = 0.0) -> tuple[Trajectory, Controller]:
    """The control-limited iLQR trajectory from x0 and its last gains as a controller
    u = K x + k around it (covariance Q_uu^-1 of that pass); u0 (T, m): the first actions.
    Where no step lowers the cost, mu I is added to Q_uu (Levenberg-Marquardt, mu x 10 up to
    MU_MAX, / 10 after a success). Stops when an iteration lowers the cost by less than
    `tolerance` of it, or no mu helps."""
    traj = simulate(step, cost, x0, None, u0)
    ctrl, mu, local = None, 0.0, None
    for _ in range(iterations):
        if local is None:  # the same trajectory's expansion serves every mu tried on it
            local = _expansion(step, cost, traj)
        try:
            trial = _gains(traj, *local, mu)
        except torch.linalg.LinAlgError:
            trial = None
        better = None if trial is None else _line_search(
            step, cost, x0, traj, trial.mean(torch.arange(len(traj.u)), traj.x[:-1]) - traj.u,
            trial.K)
        if better is None:
            if mu >= MU_MAX:
                break
            mu = max(MU_MIN, 10.0 * mu)
            continue
        ctrl, mu = trial, mu / 10.0 if mu > MU_MIN else 0.0
        gain, traj, local = traj.cost - better.cost, better, None
        if gain < tolerance * abs(traj.cost):
            break
    if ctrl is None:  # no step ever helped: LQR gains at the first trajectory
        ctrl = _gains(traj, *(local or _expansion(step, cost, traj)), 0.0)
    k = traj.u - (ctrl.K @ traj.x[:-1].unsqueeze(-1)).squeeze(-1)
    return traj, Controller(ctrl.K, k, ctrl.cov)


def _expansion(step: Step, cost, traj: Trajectory) -> tuple[Dynamics, QuadraticCost]:
    """The model linearised and the cost expanded to second order along the trajectory."""
    return (linearise(step, traj),
            expand_cost(cost.step, cost.final, traj.x[None], traj.u[None]))


def _gains(traj: Trajectory, dyn: Dynamics, quad: QuadraticCost, mu: float) -> Controller:
    """The control-limited backward pass with mu I added to Q_uu, the box at the trajectory's
    states. Raises torch.linalg.LinAlgError where Q_uu is not positive definite."""
    n, m = traj.x.shape[1], traj.u.shape[1]
    C = quad.C.clone()
    C[:, n:, n:] += mu * torch.eye(m, dtype=C.dtype)
    ones = torch.ones(m, dtype=traj.u.dtype)
    return backward(dyn, QuadraticCost(C, quad.c, quad.C_final, quad.c_final), 1.0, None,
                    Limits(-ones, ones, traj.x[:-1]))


def _line_search(step: Step, cost, x0: Tensor, traj: Trajectory, shift: Tensor,
                 K: Tensor) -> Trajectory | None:
    """The first of alpha = 1, 1/2, ... whose forward pass costs less than `traj`."""
    alpha = 1.0
    for _ in range(LINE_SEARCH):
        trial = simulate(step, cost, x0, traj, traj.u + alpha * shift, K)
        if trial.cost < traj.cost:
            return trial
        alpha *= 0.5
    return None
