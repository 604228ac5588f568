"""Soft actor-critic (Haarnoja et al. 2018): tanh-Gaussian actor, twin Q critics with Polyak
targets, entropy temperature tuned towards -|A|. The LST paper's baseline, SMCP's proposal and
value, MBPO's learner; here also an agent of its own behind the PETS agent's interface."""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mbrl_ray.config.schema import Config

LOG_STD = (-5.0, 2.0)
ACTION_EPS = 1e-4  # given actions are kept this far inside +-1 before atanh


def mlp(inp: int, out: int, hidden: int, layers: int) -> nn.Sequential:
    dims = [inp] + [hidden] * layers
    body = [m for i, o in zip(dims, dims[1:]) for m in (nn.Linear(i, o), nn.ReLU())]
    return nn.Sequential(*body, nn.Linear(dims[-1], out))


class Actor(nn.Module):
    """obs -> tanh-squashed Gaussian over actions in [-1, 1]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.net = mlp(obs_dim, 2 * act_dim, hidden, layers)

    def forward(self, obs: torch.Tensor, deterministic: bool = False,
                generator: torch.Generator | None = None):
        """-> (action, log pi(action | obs)); the log-prob includes the tanh correction."""
        if deterministic:
            return torch.tanh(self.net(obs).chunk(2, -1)[0]), None
        action, log_prob, _ = self.sample_with_mean(obs, generator)
        return action, log_prob

    def sample_with_mean(self, obs: torch.Tensor, generator: torch.Generator | None = None):
        """One pass of the network -> (sampled action, its log pi, the mean action)."""
        mean, log_std = self.net(obs).chunk(2, -1)
        log_std = log_std.clamp(*LOG_STD)
        noise = torch.randn(mean.shape, device=mean.device, generator=generator)
        pre = mean + log_std.exp() * noise
        return torch.tanh(pre), self._log_prob(noise, log_std, pre), torch.tanh(mean)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(action | obs) of given actions in [-1, 1] (clamped inside, where atanh is
        finite)."""
        mean, log_std = self.net(obs).chunk(2, -1)
        log_std = log_std.clamp(*LOG_STD)
        pre = torch.atanh(action.clamp(-1 + ACTION_EPS, 1 - ACTION_EPS))
        return self._log_prob((pre - mean) / log_std.exp(), log_std, pre)

    @staticmethod
    def _log_prob(noise, log_std, pre) -> torch.Tensor:
        log_prob = (-0.5 * noise ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return log_prob - (2 * (math.log(2) - pre - F.softplus(-2 * pre))).sum(-1)


class TwinQ(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.q1 = mlp(obs_dim + act_dim, 1, hidden, layers)
        self.q2 = mlp(obs_dim + act_dim, 1, hidden, layers)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, act], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class SACAgent:
    """act / update / fit / weights like PETSAgent; the inference weights are the actor's."""

    uses_normalizers = False  # learns on raw observations

    def __init__(self, obs_dim: int, act_dim: int, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0, trainable: bool = True) -> None:
        torch.manual_seed(seed)
        self.cfg, self.s, self.device = cfg, cfg.sac, torch.device(device)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        s = self.s
        self.actor = Actor(obs_dim, act_dim, s.hidden_size, s.num_layers).to(self.device)
        self.fitted = False  # acts uniformly at random until its first update
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        if trainable:
            self.critic = TwinQ(obs_dim, act_dim, s.hidden_size, s.num_layers).to(self.device)
            self.target = copy.deepcopy(self.critic).requires_grad_(False)
            self.log_alpha = torch.tensor(math.log(s.init_alpha), device=self.device,
                                          requires_grad=True)
            self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=s.lr)
            self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=s.lr)
            self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=s.lr)

    @property
    def batch_rows(self) -> int:
        """Rows per gradient step (the learner samples this many from replay)."""
        return self.s.batch_size

    # ---- acting -----------------------------------------------------------------------------
    def initial_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, 0)

    def reset_state(self, state: torch.Tensor, done: np.ndarray) -> torch.Tensor:
        return state

    @torch.no_grad()
    def act(self, obs: np.ndarray, state: torch.Tensor, explore: bool = True):
        if not self.fitted:
            return self.rng.uniform(-1, 1, (len(obs), self.act_dim)).astype(np.float32), state
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        action, _ = self.actor(obs_t, deterministic=not explore, generator=self.generator)
        return action.cpu().numpy(), state

    # ---- learning ---------------------------------------------------------------------------
    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One SAC step: critics towards the soft Bellman target, then actor and temperature."""
        d = {k: torch.as_tensor(v, device=self.device) for k, v in batch.items()}
        obs, act, nxt = d["obs"].float(), d["action"].float(), d["next_obs"].float()
        reward, done = d["reward"].float(), d["terminated"].float()
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            next_act, next_logp = self.actor(nxt)
            target_q = torch.min(*self.target(nxt, next_act)) - alpha * next_logp
            y = reward + self.s.gamma * (1 - done) * target_q
        q1, q2 = self.critic(obs, act)
        critic_loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        new_act, logp = self.actor(obs)
        actor_loss = (alpha * logp - torch.min(*self.critic(obs, new_act))).mean()
        if self.s.consolidation > 0:  # pull the prior towards the actions the planner executed
            actor_loss = actor_loss - self.s.consolidation * self.actor.log_prob(obs, act).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
        with torch.no_grad():
            for p, t in zip(self.critic.parameters(), self.target.parameters()):
                t.lerp_(p, self.s.tau)
        self.fitted = True
        return {"sac_critic_loss": critic_loss.item(), "sac_actor_loss": actor_loss.item(),
                "sac_alpha": alpha.item(), "sac_q": q1.mean().item()}

    @property
    def target_entropy(self) -> float:
        return -float(self.act_dim)

    def fit(self, data: dict[str, np.ndarray], total_inserted: int | None = None
            ) -> dict[str, float]:
        """Sync schedule: sac.updates_per_fit steps on minibatches drawn from all data
        (total_inserted, the replay's lifetime count, is not needed here)."""
        n, total = len(data["obs"]), {}
        for _ in range(self.s.updates_per_fit):
            idx = self.rng.integers(0, n, self.s.batch_size)
            for k, v in self.update({k: v[idx] for k, v in data.items()}).items():
                total[k] = total.get(k, 0.0) + v / self.s.updates_per_fit
        return total

    @property
    def alpha(self) -> float:
        """The entropy temperature."""
        return float(self.log_alpha.detach().exp())

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

    def value_weights(self) -> dict | None:
        """Actor, critic and temperature: what a worker needs to evaluate `value` and
        `proposal` (None before fitting)."""
        if not self.fitted:
            return None
        return {f"{part}.{k}": v.detach().cpu() for part in ("actor", "critic")
                for k, v in getattr(self, part).state_dict().items()} | {
                    "log_alpha": self.log_alpha.detach().cpu()}

    def load_value_weights(self, weights: dict | None) -> None:
        self.fitted = weights is not None
        if weights is None:
            return
        if not hasattr(self, "critic"):  # a worker's copy: made on first use
            s = self.s
            self.critic = TwinQ(self.obs_dim, self.act_dim, s.hidden_size, s.num_layers).to(
                self.device)
        self.log_alpha = weights["log_alpha"].to(self.device)
        for part in ("actor", "critic"):
            getattr(self, part).load_state_dict(
                {k.split(".", 1)[1]: v for k, v in weights.items() if k.startswith(part + ".")})

    # ---- weights and checkpoints ------------------------------------------------------------
    def inference_weights(self) -> dict | None:
        if not self.fitted:
            return None
        return {k: v.detach().cpu() for k, v in self.actor.state_dict().items()}

    def load_inference_weights(self, weights: dict | None) -> None:
        self.fitted = weights is not None
        if weights is not None:
            self.actor.load_state_dict(weights)

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "target": self.target.state_dict(), "log_alpha": self.log_alpha.detach(),
                "optimizers": [o.state_dict() for o in (self.actor_opt, self.critic_opt,
                                                        self.alpha_opt)],
                "fitted": self.fitted, "generator": self.generator.get_state(),
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.target.load_state_dict(state["target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        for opt, saved in zip((self.actor_opt, self.critic_opt, self.alpha_opt),
                              state["optimizers"]):
            opt.load_state_dict(saved)
        self.fitted = state["fitted"]
        self.generator.set_state(state["generator"])
        self.rng.bit_generator.state = state["rng"]
