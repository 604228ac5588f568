"""An MPC policy any world model can plan with: a sequence planner (CEM, CEM-LST, iCEM, MPPI,
RS), its warm start carried per env, and the first action of the plan executed."""
from __future__ import annotations

import torch

from mbrl_ray.planners import make_planner
from mbrl_ray.planners.base import Objective


class MPCPolicy:
    """act(objective, state) -> first actions (B, A), next state; the state is the planner's
    warm start under 'plan' (a dict entry, reset per env by the agent contract)."""

    def __init__(self, planner_cfg, act_dim: int) -> None:
        self.planner = make_planner(planner_cfg, act_dim)

    def initial_state(self, batch: int, device: torch.device) -> dict[str, torch.Tensor]:
        return {"plan": self.planner.initial_state(batch, device)}

    def act(self, objective: Objective, state: dict[str, torch.Tensor],
            generator: torch.Generator, prior: torch.Tensor | None = None, density=None
            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """objective: action sequences (B, N, H, A) -> values (B, N) (with a density, the LST
        posterior's planners also take the first simulated next states); prior: sequences of a
        prior policy (B, P, H, A) mixed into the samples."""
        extra = {} if density is None else {"density": density}
        sequence, plan = self.planner.plan(objective, state["plan"], generator, prior, **extra)
        return sequence[:, 0], {"plan": plan}
