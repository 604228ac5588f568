"""What PILCO (agents/pilco.py) must know of a task to roll moments through it: which state
entry is an angle, what the policy reads, the saturating cost's target, and the initial state
distribution. Light at import (no torch, no envs): the config check reads TASK_IDS before
anything heavy loads."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TASK_IDS = ("mbrl_ray/CartPoleSwingUp-v0",)  # envs/cartpole_swingup.py's ID


@dataclass(frozen=True)
class MomentTask:
    """State (n,) with an angle at `angle`; the augmented vector is the state, then sin and cos
    of the angle. `policy_inputs` index the augmented vector (the GP reads them and the
    action); the cost is saturating on y = cost_rows @ augmented, against `target`, of width
    `width`. Episodes start from N(start_mean, start_std^2 I)."""
    angle: int
    policy_inputs: tuple[int, ...]
    cost_rows: tuple[tuple[float, ...], ...]
    target: tuple[float, ...]
    width: float
    start_mean: tuple[float, ...]
    start_std: float

    def augment(self, x):
        """Deterministic states (..., n) -> augmented (..., n + 2) (torch tensors)."""
        import torch
        a = x[..., self.angle]
        return torch.cat([x, torch.sin(a)[..., None], torch.cos(a)[..., None]], -1)

    def model_inputs(self, x, u):
        """The GP's inputs: the policy's inputs and the action."""
        import torch
        return torch.cat([self.augment(x)[..., list(self.policy_inputs)], u], -1)

    def distance(self, x):
        """|y - target| for deterministic states (..., n): the cost's distance."""
        import torch
        rows = torch.tensor(self.cost_rows, dtype=x.dtype)
        return (self.augment(x) @ rows.T - torch.tensor(self.target, dtype=x.dtype)).norm(dim=-1)

    def cost(self, x):
        """The saturating cost 1 - exp(-|y - target|^2 / (2 width^2)) of deterministic states."""
        import torch
        return 1 - torch.exp(-0.5 * self.distance(x) ** 2 / self.width ** 2)

    def start(self) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.start_mean)
        return np.array(self.start_mean), self.start_std ** 2 * np.eye(n)


def moment_task(env_id: str) -> MomentTask:
    """The task of env_id (one of TASK_IDS)."""
    from mbrl_ray.envs import cartpole_swingup as cartpole
    length = cartpole.LENGTH
    tasks = {
        # state (x, x', theta', theta); augmented adds (sin, cos); the tip is
        # (x + l sin theta, -l cos theta), upright above x = 0 at (0, l)
        cartpole.ID: MomentTask(angle=3, policy_inputs=(0, 1, 2, 4, 5),
                                cost_rows=((1, 0, 0, 0, length, 0), (0, 0, 0, 0, 0, -length)),
                                target=(0.0, length), width=cartpole.COST_WIDTH,
                                start_mean=(0.0, 0.0, 0.0, 0.0), start_std=cartpole.START_STD),
    }
    return tasks[env_id]
