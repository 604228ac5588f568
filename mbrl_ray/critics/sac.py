"""Soft actor-critic (Haarnoja et al. 2018) as a component: tanh-Gaussian actor, twin Q critics
with Polyak targets, entropy temperature tuned towards -|A|. The SAC agent is this plus the agent
contract; PETS uses it as terminal value and action prior, SMCP as proposal and value, MBPO as
its learner."""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F

from mbrl_ray.critics.nets import Actor, TwinQ
from mbrl_ray.seeding import (device_generator, generator_state, init_generator, init_weights,
                              load_generator_state)


class SoftActorCritic:
    """Actor and twin critics; optimisers and targets only when `trainable` (the learner's
    copy). A worker's copy holds the networks and loads weights into them."""

    def __init__(self, obs_dim: int, act_dim: int, s, device: torch.device, seed: int = 0,
                 trainable: bool = True) -> None:
        """s: the config's `sac` section."""
        self.s, self.device, self.act_dim, self.trainable = s, device, act_dim, trainable
        init = init_generator(seed)
        self.actor = init_weights(Actor(obs_dim, act_dim, s.hidden_size, s.num_layers),
                                  init).to(device)
        self.critic = init_weights(TwinQ(obs_dim, act_dim, s.hidden_size, s.num_layers),
                                   init).to(device)
        self.log_alpha = torch.tensor(math.log(s.init_alpha), device=device,
                                      requires_grad=trainable)
        self.fitted = False  # no update yet: callers act at random / plan without it
        self.generator = device_generator(device, seed)
        self.rng = np.random.default_rng(seed)
        if trainable:
            self.target = copy.deepcopy(self.critic).requires_grad_(False)
            self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=s.lr)
            self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=s.lr)
            self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=s.lr)

    @property
    def target_entropy(self) -> float:
        return -float(self.act_dim)

    @property
    def alpha(self) -> float:
        """The entropy temperature."""
        return float(self.log_alpha.detach().exp())

    # ---- learning ---------------------------------------------------------------------------
    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One SAC step: critics towards the soft Bellman target, then actor and temperature."""
        d = {k: torch.as_tensor(v, device=self.device) for k, v in batch.items()}
        obs, act, nxt = d["obs"].float(), d["action"].float(), d["next_obs"].float()
        reward = d["reward"].float()
        discount = self.s.gamma * (1 - d["terminated"].float())
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            next_act, next_logp = self.actor(nxt, generator=self.generator)
            target_q = torch.min(*self.target(nxt, next_act)) - alpha * next_logp
            y = reward + discount * target_q
        q1, q2 = self.critic(obs, act)
        critic_loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
        self._step(self.critic_opt, critic_loss)
        new_act, logp = self.actor(obs, generator=self.generator)
        actor_loss = (alpha * logp - torch.min(*self.critic(obs, new_act))).mean()
        if self.s.consolidation > 0:  # pull the prior towards the actions the planner executed
            actor_loss = actor_loss - self.s.consolidation * self.actor.log_prob(obs, act).mean()
        self._step(self.actor_opt, actor_loss)
        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self._step(self.alpha_opt, alpha_loss)
        with torch.no_grad():
            for p, t in zip(self.critic.parameters(), self.target.parameters()):
                t.lerp_(p, self.s.tau)
        self.fitted = True
        return {"sac_critic_loss": critic_loss.item(), "sac_actor_loss": actor_loss.item(),
                "sac_alpha": alpha.item(), "sac_q": q1.mean().item()}

    @staticmethod
    def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def fit(self, data: dict[str, np.ndarray]) -> dict[str, float]:
        """sac.updates_per_fit steps on minibatches drawn from all of `data` (sync schedule)."""
        n, total = len(data["obs"]), {}
        for _ in range(self.s.updates_per_fit):
            idx = self.rng.integers(0, n, self.s.batch_size)
            for k, v in self.update({k: v[idx] for k, v in data.items()}).items():
                total[k] = total.get(k, 0.0) + v / self.s.updates_per_fit
        return total

    # ---- acting -----------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool = True) -> torch.Tensor:
        """A sample of the policy (explore) or its mean action."""
        return self.actor(obs, deterministic=not explore, generator=self.generator)[0]

    def act_numpy(self, obs: np.ndarray, explore: bool = True) -> np.ndarray:
        """Actions for a batch of observations; uniform in [-1, 1] before the first update."""
        if not self.fitted:
            return self.rng.uniform(-1, 1, (len(obs), self.act_dim)).astype(np.float32)
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        return self.act(obs_t, explore).cpu().numpy()

    @torch.no_grad()
    def proposal(self, obs: torch.Tensor):
        """SMCP's proposal: a ~ pi(. | s), log pi(a | s) and V(s) (as `value`: min Q at the mean
        action; the one-sample soft value min Q(s, a) - alpha log pi(a | s) made SMCP's weights
        so noisy that it lost balance where this one holds it); (R, obs) -> (R, A), (R,), (R,)."""
        action, log_pi, mean_action = self.actor.sample_with_mean(obs, self.generator)
        return action, log_pi, torch.min(*self.critic(obs, mean_action))

    @torch.no_grad()
    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) ~ min_i Q_i(s, mean action): a terminal value for planners, (R, obs) -> (R,)."""
        action, _ = self.actor(obs, deterministic=True)
        return torch.min(*self.critic(obs, action))

    # ---- weights and checkpoints ------------------------------------------------------------
    def weights(self, parts: tuple[str, ...] = ("actor", "critic", "log_alpha")) -> dict | None:
        """{'actor': ..., 'critic': ..., 'log_alpha': ...} on CPU, or None before any update."""
        if not self.fitted:
            return None
        return {p: self.log_alpha.detach().cpu() if p == "log_alpha" else
                {k: v.detach().cpu() for k, v in getattr(self, p).state_dict().items()}
                for p in parts}

    def load_weights(self, weights: dict | None) -> None:
        self.fitted = weights is not None
        if weights is None:
            return
        for part, value in weights.items():
            if part == "log_alpha":
                with torch.no_grad():
                    self.log_alpha.copy_(value)
            else:
                getattr(self, part).load_state_dict(value)

    def state_dict(self) -> dict:
        state = {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                 "log_alpha": self.log_alpha.detach().clone(), "fitted": self.fitted,
                 **generator_state(self.generator, self.rng)}
        if self.trainable:
            state |= {"target": self.target.state_dict(),
                      "optimizers": [o.state_dict() for o in (self.actor_opt, self.critic_opt,
                                                              self.alpha_opt)]}
        return state

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        if self.trainable:
            self.target.load_state_dict(state["target"])
            for opt, saved in zip((self.actor_opt, self.critic_opt, self.alpha_opt),
                                  state["optimizers"]):
                opt.load_state_dict(saved)
        self.fitted = state["fitted"]
        load_generator_state(self.generator, self.rng, state)
