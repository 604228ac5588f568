"""Known task costs, as differentiable functions of the observation and the action in [-1, 1]:
what guided policy search (agents/gps.py) expands to second order. Each is the env's own
reward negated (tests/test_gps.py checks it against the env), except where a smooth term stands
in for a norm, said in place.

A cost has `step(x, u)`, the cost of acting u in state x, and `final(x)`, the cost of the last
state, so that an episode's cost is sum_t step(x_t, u_t) + final(x_T). Envs whose reward scores
the state reached (Reacher) put the state term in both: step(x_0, .) then adds one constant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # tensor methods only: the config check reads COSTS without torch
    from torch import Tensor


@dataclass(frozen=True)
class TaskCost:
    step: Callable[["Tensor", "Tensor"], "Tensor"]
    final: Callable[["Tensor"], "Tensor"]
    note: str


SMOOTHING = 1e-4  # sqrt(d^2 + SMOOTHING) for the norm |d|: curvature bounded at d = 0


def _smooth_norm(d: "Tensor") -> "Tensor":
    return ((d * d).sum(-1) + SMOOTHING).sqrt()


def _reacher_distance(x: "Tensor") -> "Tensor":
    return _smooth_norm(x[..., 8:10])  # the fingertip-to-target vector of Reacher-v5's obs


def _point_mass_distance(x: "Tensor") -> "Tensor":
    return _smooth_norm(x[..., :2])


def _pendulum_step(x: "Tensor", u: "Tensor") -> "Tensor":
    # 2 (1 - cos angle) for the reward's angle^2: equal to second order at the top, and smooth
    # at the bottom, where angle^2 jumps from pi^2 to pi^2 with opposite slopes (an expansion
    # averaged over both sides of it sees no slope at all)
    torque = 2.0 * u[..., 0]  # actions in [-1, 1] scale onto Pendulum's [-2, 2]
    return 2.0 * (1.0 - x[..., 0]) + 0.1 * x[..., 2] ** 2 + 0.001 * torque ** 2


COSTS: dict[str, TaskCost] = {
    "Reacher-v5": TaskCost(lambda x, u: _reacher_distance(x) + (u * u).sum(-1),
                           _reacher_distance,
                           "-reward: fingertip-target distance (smoothed) + |u|^2"),
    "Pendulum-v1": TaskCost(_pendulum_step, lambda x: 0.0 * x[..., 0],
                            "-reward with 2 (1 - cos angle) for angle^2: + 0.1 speed^2 "
                            "+ 0.001 torque^2"),
    "dummy": TaskCost(lambda x, u: _point_mass_distance(x), _point_mass_distance,
                      "1 - reward: distance of the point to the origin (smoothed)"),
}


def task_cost(env_id: str) -> TaskCost | None:
    """The known cost of env_id, None where none is written."""
    return COSTS.get(env_id)
