"""What PlaNet and Dreamer share: the RSSM world model trained on B x L sequences from replay,
and acting from a belief filtered online, one observation at a time, per env.

The acting state per env is the belief (h, s, its statistics) and the action last taken; the
agent contract's reset zeroes it where an episode ended, which is the state a row marked
is_first starts from in training (world_models/rssm.py), so the worker filters as the learner
does. Until the first update the agent acts uniformly at random."""
from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch

from mbrl_ray import seeding
from mbrl_ray.agents.base import Agent, AgentLearner, cpu
from mbrl_ray.config.schema import Config
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.replay.selectors import BatchSpec
from mbrl_ray.world_models import open_loop
from mbrl_ray.world_models.rssm import Belief
from mbrl_ray.world_models.rssm_world_model import RSSMWorldModel


class RSSMAgent(Agent):
    accepts = ("state", "pixels")
    schedules = ("async",)
    size_keys = ("rssm.deter", "rssm.stoch", "rssm.classes", "rssm.hidden", "rssm.mlp_hidden",
                 "rssm.mlp_layers", "rssm.cnn_depth", "env.image_size")

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        self.model = seeding.init_weights(
            RSSMWorldModel(spec, cfg.rssm, cfg.env.image_size, cfg.model.termination,
                           self.model_version(cfg)),
            seeding.init_generator(seed)).to(self.device)
        self.generator = seeding.device_generator(self.device, seed)
        self.rng = np.random.default_rng(seed)
        self.updates = 0
        self.fitted = False  # a worker's copy: weights loaded

    @staticmethod
    def model_version(cfg: Config) -> str:
        """Which heads the world model has (world_models/rssm_world_model.py)."""
        return "v1"

    # ---- acting -----------------------------------------------------------------------------
    def initial_state(self, batch: int) -> dict[str, torch.Tensor]:
        belief = self.model.rssm.initial(batch, self.device)
        return {"h": belief.h, "s": belief.s, "stats": belief.stats,
                "action": torch.zeros(batch, self.spec.act_dim, device=self.device)}

    def filter(self, obs: np.ndarray, state: dict) -> Belief:
        """The belief after this observation (the previous belief and action from `state`)."""
        prev = Belief(state["h"], state["s"], state["stats"])
        embed = self.model.encoder(self.model.inputs(torch.as_tensor(np.asarray(obs),
                                                                     device=self.device)))
        belief, _ = self.model.rssm.obs_step(prev, state["action"], embed, self.generator)
        return belief

    @torch.no_grad()
    def act(self, obs: np.ndarray, state: dict, explore: bool = True):
        if not self.fitted:
            return self.random_actions(len(obs)), state
        belief = self.filter(obs, state)
        action, state = self.policy_action(belief, state, explore)
        noise = self.cfg.rssm.explore_noise if explore else 0.0
        if noise > 0:
            action = action + noise * torch.randn(action.shape, device=action.device,
                                                  generator=self.generator)
        action = action.clamp(-1.0, 1.0)
        state = {**state, "h": belief.h, "s": belief.s, "stats": belief.stats,
                 "action": action.clone()}  # the returned array must not alias the state
        return action.cpu().numpy(), state

    open_loop_rows = open_loop.LENGTH

    def open_loop_video(self, obs: np.ndarray, actions: np.ndarray
                        ) -> tuple[np.ndarray, float] | None:
        """From pixels, once trained: real | imagined | difference (world_models/open_loop)."""
        if not (self.model.pixels and self.fitted and len(obs) > open_loop.CONTEXT):
            return None
        real = torch.as_tensor(obs, device=self.device)
        predicted = open_loop.open_loop(self.model, real,
                                        torch.as_tensor(actions, device=self.device))
        return (open_loop.side_by_side(real, predicted).cpu().numpy(),
                open_loop.prediction_error(real, predicted))

    @abstractmethod
    def policy_action(self, belief: Belief, state: dict, explore: bool
                      ) -> tuple[torch.Tensor, dict]:
        """The action (B, A) in [-1, 1] from the current belief (before exploration noise)."""

    def load_inference_weights(self, weights: dict | None) -> None:
        self.fitted = weights is not None
        if weights is not None:
            self.model.load_state_dict(weights["model"])
            self.updates = int(weights["updates"])
            self.load_extra_inference_weights(weights)

    def load_extra_inference_weights(self, weights: dict) -> None:
        pass


class RSSMLearner(RSSMAgent, AgentLearner):
    """The world model's training: one step per batch of sequences (async schedule)."""

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        self.model_opt = torch.optim.Adam(self.model.parameters(), lr=cfg.rssm.lr,
                                          eps=cfg.rssm.eps)

    @classmethod
    def batch_spec_for(cls, cfg: Config) -> BatchSpec:
        """B x L sequences crossing episode starts (is_first resets the state)."""
        return BatchSpec("sequences", cfg.rssm.batch_size, length=cfg.rssm.seq_len,
                         boundaries=True, keys="rssm.batch_size x rssm.seq_len")

    # ---- learning ---------------------------------------------------------------------------
    def train_model(self, batch: dict) -> tuple[dict[str, float], Belief]:
        """One world-model step -> (logged terms, posterior beliefs, detached)."""
        d = {k: torch.as_tensor(v, device=self.device) for k, v in batch.items()}
        loss, logs, post = self.model.loss(d, self.generator)
        self.model_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.rssm.grad_clip)
        self.model_opt.step()
        self.updates += 1
        return logs, Belief(post.h.detach(), post.s.detach(), post.stats.detach())

    # ---- weights and checkpoints ------------------------------------------------------------
    def inference_weights(self) -> dict | None:
        if self.updates == 0:
            return None
        return {"model": cpu(self.model), "updates": torch.tensor(self.updates),
                **self.extra_inference_weights()}

    def extra_inference_weights(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "model_opt": self.model_opt.state_dict(),
                "updates": self.updates, **seeding.generator_state(self.generator, self.rng)}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.model_opt.load_state_dict(state["model_opt"])
        self.updates = state["updates"]
        seeding.load_generator_state(self.generator, self.rng, state)
