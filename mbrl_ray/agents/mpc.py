"""MPC policies any world model can plan with: an agent states its planning problem once per
act call (`Problem`), and the policy `planner.name` picks reads from it what it needs.
`PlanningAgent` is the acting half every agent that plans on its model shares.

- `MPCPolicy`: a sequence planner (CEM, CEM-LST, iCEM, MPPI, RS) over the problem's objective,
  its warm start carried per env, and the first action of the plan executed.
- `SMCPolicy`: Sequential Monte Carlo planning (planners/smcp.py), a policy of its own: it does
  not optimise an objective of sequences but steps particles through the model with a proposal
  policy and its soft value (`needs_proposal`: an agent that plans with it trains one).
"""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mbrl_ray import seeding
from mbrl_ray.agents.base import Agent
from mbrl_ray.config.schema import Config
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.planners import SMCPlanner, make_planner
from mbrl_ray.planners.base import Objective
from mbrl_ray.planners.lst import Density
from mbrl_ray.planners.smcp import Proposal, Step

PlanState = dict[str, torch.Tensor]


@dataclass
class Problem:
    """What one act call offers its policy; the costly parts are built only when asked for.

    objective: action sequences (B, N, H, A) -> values (B, N) (with a density, the LST
    posterior's planners also take the first simulated next states); prior: () -> a prior
    policy's sequences (B, P, H, A) to mix into the samples; density: the model's
    transition density for the LST posterior, or None. SMCP's: the observations (B, obs_dim),
    one sampled model step of (R, ·) rows, the proposal and its temperature."""
    objective: Objective | None = None
    prior: Callable[[], torch.Tensor] | None = None
    density: Density | None = None
    obs: torch.Tensor | None = None
    step: Step | None = None
    proposal: Proposal | None = None
    temperature: float = 1.0


class MPCPolicy:
    """act(problem, state) -> first actions (B, A), next state; the state is the planner's
    warm start under 'plan' (a dict entry, reset per env by the agent contract)."""

    needs_proposal = False

    def __init__(self, planner_cfg, act_dim: int) -> None:
        self.planner = make_planner(planner_cfg, act_dim)
        self.warm_start = planner_cfg.warm_start

    def initial_state(self, batch: int, device: torch.device) -> PlanState:
        return {"plan": self.planner.initial_state(batch, device)}

    def act(self, problem: Problem, state: PlanState, generator: torch.Generator
            ) -> tuple[torch.Tensor, PlanState]:
        extra = {} if problem.density is None else {"density": problem.density}
        prior = problem.prior() if problem.prior is not None else None
        sequence, plan = self.planner.plan(problem.objective, state["plan"], generator, prior,
                                           **extra)
        return sequence[:, 0], {"plan": plan if self.warm_start else state["plan"]}


class SMCPolicy(MPCPolicy):
    """SMCP-MPC, or SMCP-LST given the problem's density (planners/smcp.py)."""

    needs_proposal = True
    planner: SMCPlanner

    def act(self, problem: Problem, state: PlanState, generator: torch.Generator
            ) -> tuple[torch.Tensor, PlanState]:
        action, plan = self.planner.plan(problem.step, problem.proposal, problem.obs,
                                         state["plan"], problem.temperature, generator,
                                         problem.density)
        return action, {"plan": plan}


def rollouts_line(planner_cfg, where: str, rollouts: str = "rollouts") -> str:
    """The planning-cost line of a sequence planner: population x iterations rollouts of the
    horizon per action, `where` saying what they roll through."""
    p = planner_cfg
    return (f"planning: {p.name} {where}, {p.population * p.iterations:,} {rollouts} of "
            f"{p.horizon} steps per action per env (population x iterations)")


def make_policy(planner_cfg, act_dim: int) -> MPCPolicy:
    """The policy of a config's `planner` section."""
    policy = SMCPolicy if planner_cfg.name == "smcp" else MPCPolicy
    return policy(planner_cfg, act_dim)


class PlanningAgent(Agent):
    """An agent that acts by planning on its world model (PETS, DC-MPC, MB-MPC): uniformly at
    random until it is `ready` (holds trained weights), then the first action of the plan its
    policy (`planner` section) makes for the `problem` it states, perturbed by `explore_action`
    when exploring. Acting state: the policy's (the planner's warm start per env)."""

    fitted = False  # holds trained weights (set by a fit, an update or loaded weights)

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        self.policy = make_policy(cfg.planner, spec.act_dim)
        self.generator = seeding.device_generator(self.device, seed)
        self.rng = np.random.default_rng(seed)

    @property
    def ready(self) -> bool:
        """Whether to plan (else act at random)."""
        return self.fitted

    @abstractmethod
    def problem(self, obs: torch.Tensor, explore: bool) -> Problem:
        """The planning problem at observations (B, obs_dim) on the agent's device."""

    def explore_action(self, action: torch.Tensor, explore: bool) -> torch.Tensor:
        """The action acted on (the plan's first action by default, exploring or not)."""
        return action

    def initial_state(self, batch: int) -> PlanState:
        return self.policy.initial_state(batch, self.device)

    @torch.no_grad()
    def act(self, obs: np.ndarray, state: PlanState, explore: bool = True
            ) -> tuple[np.ndarray, PlanState]:
        """Plan for every env of the batch in one call; actions in [-1, 1]."""
        if not self.ready:
            return self.random_actions(len(obs)), state
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        action, state = self.policy.act(self.problem(obs_t, explore), state, self.generator)
        return self.explore_action(action, explore).cpu().numpy(), state
