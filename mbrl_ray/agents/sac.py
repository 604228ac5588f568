"""SAC as an agent of its own (model-free): the SoftActorCritic component behind the agent
contract. The LST paper's baseline; its inference weights are the actor's."""
from __future__ import annotations

import numpy as np
import torch

from mbrl_ray.agents.base import Agent, AgentLearner
from mbrl_ray.config.schema import Config
from mbrl_ray.critics import SoftActorCritic
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.replay.selectors import BatchSpec


class SACAgent(Agent):
    """Acts with the actor (a sample when exploring, the mean when evaluating); uniformly at
    random until its first update."""

    size_keys = ("sac.hidden_size", "sac.num_layers")

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        self.sac = SoftActorCritic(spec.obs_dim, spec.act_dim, cfg.sac, self.device, seed,
                                   self.trains)

    def act(self, obs: np.ndarray, state: dict, explore: bool = True):
        return self.sac.act_numpy(obs, explore), state

    def load_inference_weights(self, weights: dict | None) -> None:
        self.sac.load_weights(weights)


class SACLearner(SACAgent, AgentLearner):
    """SAC's update on replay batches (async) or its rounds of updates (sync)."""

    @classmethod
    def batch_spec_for(cls, cfg: Config) -> BatchSpec:
        return BatchSpec("transitions", cfg.sac.batch_size, keys="sac.batch_size")

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        return self.sac.update(batch)

    def fit(self, data: dict[str, np.ndarray], env_steps: int) -> dict[str, float]:
        return self.sac.fit(data)

    def inference_weights(self) -> dict | None:
        return self.sac.weights(("actor",))

    def state_dict(self) -> dict:
        return {"sac": self.sac.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.sac.load_state_dict(state["sac"])
