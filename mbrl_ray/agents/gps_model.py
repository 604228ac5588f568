"""GPS's local controllers planned through a learned model (`gps.dynamics=model`). The 2013
paper's guiding trajectories came from DDP on the simulator; here they come from MBMF's delta
network (world_models/deterministic.py), fitted each round to every transition held.

Per condition and round, the guide is found in two passes through the model:
1. receding-horizon MPC from the condition's start: the `planner` section's planner (CEM by
   default) optimises `planner.horizon` steps of the task's known cost (task_costs.py) at every
   step of the episode, and its first action is taken. A whole-episode optimiser from scratch
   (iLQR, or CEM over all T steps) settles in spinning or pumping minima on a swing-up, and an
   open-loop balance over T steps is too sensitive to find by sampling; re-planning each step
   balances (measured on Pendulum's own dynamics, docs/algorithms.md). All conditions plan in
   one batch;
2. iLQR (planners/ilqr.py), `gps.ilqr_iterations` from that trajectory and again from the
   condition's last guide, the cheaper in the model kept: the last refinement, and the feedback
   gains K along it. The last guide keeps a condition on its route (say, which way the arm
   turns) while the refitted model finds it no worse, so the policy's targets do not jump
   between routes from round to round.
The controller samples u = u_plan + K (x - x_plan) + N(0, gps.sample_std^2): iLQR's own
covariance Q_uu^-1 is wide wherever an action is cheap, which would make the samples noise."""
from __future__ import annotations

import copy

import numpy as np
import torch

from mbrl_ray import seeding
from mbrl_ray.config.schema import Config
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.planners import make_planner
from mbrl_ray.planners.ilqr import ilqr
from mbrl_ray.planners.lqg import Controller
from mbrl_ray.task_costs import TaskCost
from mbrl_ray.world_models import deterministic
from mbrl_ray.world_models.base import rollout_returns
from mbrl_ray.world_models.deterministic import DeltaMLP, DeltaRollout
from mbrl_ray.world_models.ensemble_training import to_tensors

F64 = torch.float64
CPU = torch.device("cpu")


class CostRollout(DeltaRollout):
    """The delta network's planning view scored by a known cost: reward -cost.step(x, u)."""

    def __init__(self, model: DeltaMLP, obs: torch.Tensor, cost: TaskCost) -> None:
        super().__init__(model, obs)
        self.cost = cost

    def step(self, state: torch.Tensor, action: torch.Tensor, generator=None):
        return self.model.step(state, action)[0], -self.cost.step(state, action), 1.0


class ModelPlans:
    """The delta network, its optimiser and the generator of its planner's samples."""

    def __init__(self, spec: EnvSpec, cfg: Config, device: torch.device, seed: int) -> None:
        c = cfg.delta
        self.cfg, self.device = cfg, device
        self.horizon = cfg.env.max_episode_steps // cfg.env.action_repeat
        self.model = seeding.init_weights(
            DeltaMLP(spec.obs_dim, spec.act_dim, c.hidden_size, c.num_layers),
            seeding.init_generator(seeding.derive(seed, seeding.MODEL))).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr)
        self.generator = torch.Generator().manual_seed(seeding.derive(seed, seeding.NOISE))
        # each condition's last guide's actions (T, m), None before its first
        self.last: list[torch.Tensor | None] = [None] * cfg.env.conditions

    def fit(self, data: dict[str, np.ndarray], generator: torch.Generator) -> float:
        """Refit the network on every transition held; its last epoch's mean loss."""
        c = self.cfg.delta
        return deterministic.fit(self.model, self.optimizer, to_tensors(data, self.device),
                                 c.epochs, c.batch_size, generator)

    def controllers(self, conditions: list[int], starts: torch.Tensor, cost: TaskCost
                    ) -> list[tuple[Controller, float]]:
        """Each of `conditions`' new controller from its start (starts (C, n)), and its
        guide's cost in the model (module docstring)."""
        fresh = self.mpc_actions(starts, cost).to(F64)
        model = copy.deepcopy(self.model).to(CPU, F64)

        def step(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
            return model.step(x, u)[0]

        act_dim = fresh.shape[-1]
        cov = (self.cfg.gps.sample_std ** 2 * torch.eye(act_dim, dtype=F64)).expand(
            self.horizon, act_dim, act_dim)
        out = []
        for cond, x0, u_mpc in zip(conditions, starts.to(F64), fresh):
            firsts = [u_mpc] + ([] if self.last[cond] is None else [self.last[cond]])
            runs = [ilqr(step, cost, x0, u0, self.cfg.gps.ilqr_iterations) for u0 in firsts]
            traj, ctrl = min(runs, key=lambda run: run[0].cost)  # the MPC's on a tie
            out.append((Controller(ctrl.K, ctrl.k, cov.clone()), traj.cost))
            self.last[cond] = traj.u
        return out

    @torch.no_grad()
    def mpc_actions(self, starts: torch.Tensor, cost: TaskCost) -> torch.Tensor:
        """The actions (C, T, m) receding-horizon MPC takes through the model from each start."""
        model = copy.deepcopy(self.model).to(CPU, torch.float32)
        planner = make_planner(self.cfg.planner, model.act_dim)
        state, x, actions = planner.initial_state(len(starts), CPU), starts.float(), []
        for _ in range(self.horizon):
            def objective(seqs: torch.Tensor, x=x) -> torch.Tensor:
                return rollout_returns(CostRollout(model, x, cost), seqs,
                                       self.cfg.planner.discount)
            plan, state = planner.plan(objective, state, self.generator)
            actions.append(plan[:, 0].clamp(-1.0, 1.0))
            x = model.step(x, actions[-1])[0]
        return torch.stack(actions, 1)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "last": list(self.last)}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.last = list(state["last"])
