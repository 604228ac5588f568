"""MBMF's imitation phase (Nagabandi et al. 2018): after `mbmf.imitate_from` env steps of
MB-MPC (agents/mb_mpc.py), a Gaussian MLP policy takes over acting, and the MPC expert is
imitated into it by DAgger: every state the agent visited acting on its own is labelled once
with the expert's action and kept (the aggregated dataset), and the policy's mean is refit to
all labels after each round. The MPC phase's states carry the actions the expert took there;
the policy's states are labelled by planning on the newest model at the next fit. Sync
schedule only: labels are planned where the model is trained, on the learner.

The paper then fine-tunes the policy with a model-free learner (TRPO): here RLlib's PPO, after
training when `mbmf.finetune_steps` > 0 or by `mbrl-ray finetune RUN_DIR` (mbrl_ray/finetune.py,
agents/mbmf_ppo.py). The policy's std is a fixed exploration noise (`mbmf.std`) here, not fit by
imitation; PPO starts from it and learns it."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mbrl_ray import seeding
from mbrl_ray.agents.base import cpu
from mbrl_ray.agents.mb_mpc import MBMPCAgent, MBMPCLearner
from mbrl_ray.config.schema import Config
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.nn import mlp, train_epochs
from mbrl_ray.world_models.ensemble import Standardizer


class GaussianPolicy(nn.Module):
    """obs -> action mean in [-1, 1] (tanh of an MLP with tanh hidden units on standardised
    observations, as the paper's policy); acting adds N(0, std^2) noise when exploring."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.norm = Standardizer(obs_dim)
        self.net = mlp(obs_dim, act_dim, hidden, layers, nn.Tanh)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(self.norm(obs)))


def imitate(policy: GaussianPolicy, optimizer: torch.optim.Optimizer, obs: torch.Tensor,
            actions: torch.Tensor, epochs: int, batch_size: int,
            generator: torch.Generator | None = None) -> float:
    """Behaviour cloning of labelled states: the observation statistics refit to them, then
    `epochs` passes of minibatch steps on the mean's squared error; the last pass's mean."""
    policy.norm.fit(obs)
    return train_epochs(lambda idx: F.mse_loss(policy(obs[idx]), actions[idx]), optimizer,
                        len(obs), epochs, batch_size, obs.device, generator)


class MBMFAgent(MBMPCAgent):
    """MB-MPC until the policy phase, then the policy acts and DAgger trains it (see the
    module docstring)."""

    schedules = ("sync",)
    size_keys = MBMPCAgent.size_keys + ("mbmf.hidden_size", "mbmf.num_layers")

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        c = cfg.mbmf
        self.actor = seeding.init_weights(
            GaussianPolicy(spec.obs_dim, spec.act_dim, c.hidden_size, c.num_layers),
            seeding.init_generator(seeding.derive(seed, seeding.SAC))).to(self.device)
        self.imitating = False  # the policy acts (a worker's copy: from the weights)

    @classmethod
    def after_training(cls, cfg: Config, run_dir, printer=print) -> None:
        """The third phase, PPO fine-tuning (mbrl_ray/finetune.py), when mbmf.finetune_steps
        asks for it."""
        if cfg.mbmf.finetune_steps > 0:
            from mbrl_ray import finetune
            finetune.run(run_dir, finetune.checked_config(run_dir, None), printer)

    # ---- acting -----------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: np.ndarray, state: dict, explore: bool = True):
        """MPC's plan until the policy phase; then the policy's mean, plus its noise when
        exploring (the DAgger rollouts)."""
        if not self.imitating:
            return super().act(obs, state, explore)
        action = self.actor(torch.as_tensor(obs, dtype=torch.float32, device=self.device))
        if explore and self.cfg.mbmf.std > 0:
            action = action + self.cfg.mbmf.std * torch.randn(
                action.shape, device=action.device, generator=self.generator)
        return action.clamp(-1.0, 1.0).cpu().numpy(), state

    def load_inference_weights(self, weights: dict | None) -> None:
        super().load_inference_weights(weights)
        self.imitating = weights is not None and bool(weights["imitating"])
        if self.imitating:
            self.actor.load_state_dict(weights["actor"])


class MBMFLearner(MBMFAgent, MBMPCLearner):
    """MB-MPC's fits, the expert's labels of the states visited (the aggregated dataset) and
    the policy's refits to them."""

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        self.seen = 0  # env steps whose states are labelled
        self.labels = {"obs": torch.zeros(0, spec.obs_dim, device=self.device),
                       "action": torch.zeros(0, spec.act_dim, device=self.device)}
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.mbmf.lr)

    @torch.no_grad()
    def expert_actions(self, obs: torch.Tensor) -> torch.Tensor:
        """The MPC expert's actions (N, A) at states (N, obs_dim): one plan from a fresh start
        per state, `mbmf.label_chunk` states at a time."""
        chunks = []
        for part in obs.split(self.cfg.mbmf.label_chunk):
            action, _ = self.policy.act(self.problem(part, explore=False),
                                        self.policy.initial_state(len(part), self.device),
                                        self.generator)
            chunks.append(action)
        return torch.cat(chunks)

    # ---- learning ---------------------------------------------------------------------------
    def fit(self, data: dict[str, np.ndarray], env_steps: int) -> dict[str, float]:
        """Refit the model (MB-MPC's fit); label the states visited since the last fit (the
        executed actions in the MPC phase, the expert's after it) and, in the policy phase,
        refit the policy to every label."""
        logs = super().fit(data, env_steps)
        new = min(env_steps - max(self.seen, self.cfg.train.random_steps),  # not the random
                  len(data["obs"]))                                          # steps' states
        if new > 0:
            obs = torch.as_tensor(data["obs"][-new:], dtype=torch.float32, device=self.device)
            label = (self.expert_actions(obs) if self.imitating else
                     torch.as_tensor(data["action"][-new:], dtype=torch.float32,
                                     device=self.device))
            self.labels = {"obs": torch.cat([self.labels["obs"], obs]),
                           "action": torch.cat([self.labels["action"], label])}
        self.seen = env_steps
        if env_steps >= self.cfg.mbmf.imitate_from and len(self.labels["obs"]):
            c = self.cfg.mbmf
            logs["mbmf_imitation_mse"] = imitate(self.actor, self.actor_opt, self.labels["obs"],
                                                 self.labels["action"], c.epochs, c.batch_size,
                                                 self.generator)
            self.imitating = True
        return {**logs, "mbmf_labelled": float(len(self.labels["obs"])),
                "mbmf_policy_acts": float(self.imitating)}

    # ---- weights and checkpoints ------------------------------------------------------------
    def inference_weights(self) -> dict | None:
        weights = super().inference_weights()
        if weights is not None:
            weights.update(actor=cpu(self.actor), imitating=torch.tensor(self.imitating))
        return weights

    def state_dict(self) -> dict:
        return {**super().state_dict(), "actor": self.actor.state_dict(),
                "actor_opt": self.actor_opt.state_dict(), "imitating": self.imitating,
                "seen": self.seen, "labels": self.labels}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.actor.load_state_dict(state["actor"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.imitating, self.seen = state["imitating"], state["seen"]
        self.labels = {k: v.to(self.device) for k, v in state["labels"].items()}
