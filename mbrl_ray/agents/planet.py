"""PlaNet (Hafner et al. 2019): the RSSM world model and MPC in its latent space. Each action
sequence is scored by rolling the prior forward from the current belief (one sampled latent
trajectory per candidate) and summing the predicted rewards; the planner is the planner
family's (CEM as the paper: horizon 12, 10 iterations, 1000 candidates, top 100), its warm
start carried per env like the belief."""
from __future__ import annotations

import torch

from mbrl_ray.agents.mpc import MPCPolicy, Problem, rollouts_line
from mbrl_ray.agents.rssm_agent import RSSMAgent, RSSMLearner
from mbrl_ray.config.schema import Config
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.world_models.base import rollout_returns
from mbrl_ray.world_models.rssm import Belief
from mbrl_ray.world_models.rssm_world_model import LatentRollout, RSSMWorldModel


def latent_returns(model: RSSMWorldModel, belief: Belief, actions: torch.Tensor,
                   discount: float = 1.0, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """Values (B, N) of action sequences (B, N, H, A) from beliefs (B, ...): the discounted sum
    of predicted rewards along one imagined trajectory per sequence, each step's reward weighted
    by the predicted probability that the episode had not ended before that step
    (sum_t discount^t prod_{j<t} c_j r_t: the step on which it ends still pays its reward)."""
    return rollout_returns(LatentRollout(model, belief), actions, discount, generator=generator)


class PlaNetAgent(RSSMAgent):
    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        self.policy = MPCPolicy(cfg.planner, spec.act_dim)

    @classmethod
    def planning_cost(cls, cfg: Config, spec: EnvSpec) -> str:
        return rollouts_line(cfg.planner, "in the RSSM's latent space", "imagined rollouts")

    def initial_state(self, batch: int) -> dict[str, torch.Tensor]:
        return {**super().initial_state(batch), **self.policy.initial_state(batch, self.device)}

    def policy_action(self, belief: Belief, state: dict, explore: bool):
        discount = self.cfg.planner.discount

        def objective(actions: torch.Tensor) -> torch.Tensor:
            return latent_returns(self.model, belief, actions, discount, self.generator)

        action, plan = self.policy.act(Problem(objective), {"plan": state["plan"]},
                                       self.generator)
        return action, {**state, **plan}


class PlaNetLearner(PlaNetAgent, RSSMLearner):
    """The world model's step on each batch: PlaNet has nothing else to train."""

    def update(self, batch: dict) -> dict[str, float]:
        logs, _ = self.train_model(batch)
        return logs
