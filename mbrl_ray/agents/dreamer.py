"""Dreamer (Hafner et al. 2020): the RSSM world model, and an actor and critic trained on
imagined latent rollouts from the posterior states of each training batch (critics/
imagination.py; with dreamer.version=v3, DreamerV3's heads: critics/imagination_v3.py and the
world model's v3 terms). Rollout workers act from the actor on the belief they filter per
env."""
from __future__ import annotations

import torch

from mbrl_ray import seeding
from mbrl_ray.agents.base import cpu
from mbrl_ray.agents.rssm_agent import RSSMAgent, RSSMLearner
from mbrl_ray.config.schema import Config
from mbrl_ray.critics.imagination import ImaginedActorCritic
from mbrl_ray.critics.imagination_v3 import ImaginedActorCriticV3
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.world_models.rssm import Belief


class DreamerAgent(RSSMAgent):
    size_keys = (*RSSMAgent.size_keys, "dreamer.hidden", "dreamer.layers")

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        heads = ImaginedActorCriticV3 if cfg.dreamer.version == "v3" else ImaginedActorCritic
        self.behaviour = heads(self.model.rssm.feat_dim, spec.act_dim, cfg.dreamer, self.device,
                               seeding.derive(seed, seeding.SAC), self.trains)

    @staticmethod
    def model_version(cfg: Config) -> str:
        return cfg.dreamer.version

    def policy_action(self, belief: Belief, state: dict, explore: bool):
        return self.behaviour.act(belief.feat, explore, self.generator), state

    def load_extra_inference_weights(self, weights: dict) -> None:
        self.behaviour.actor.load_state_dict(weights["actor"])


class DreamerLearner(DreamerAgent, RSSMLearner):
    """The world model's step, then the actor's and critic's on imagined rollouts from its
    posterior states."""

    def update(self, batch: dict) -> dict[str, float]:
        logs, post = self.train_model(batch)
        goes_on = 1.0 - torch.as_tensor(batch["is_terminal"], device=self.device).float()
        return {**logs, **self.behaviour.update(self.model, post, self.generator, goes_on)}

    def extra_inference_weights(self) -> dict:
        return {"actor": cpu(self.behaviour.actor)}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "behaviour": self.behaviour.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.behaviour.load_state_dict(state["behaviour"])
