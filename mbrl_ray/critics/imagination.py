"""Actor and critic trained on imagined latent rollouts (Dreamer, Hafner et al. 2020, with
DreamerV3's return normalisation and slow critic).

From every posterior state of a training batch the actor imagines `horizon` steps through the
world model's prior. The actor maximises lambda-returns by backpropagating through the
(frozen) model's dynamics (Dreamer's gradient for continuous actions), plus an entropy bonus;
the critic regresses the same returns. Returns bootstrap from a slow (Polyak) copy of the
critic and are scaled by max(1, S), S an EMA of their 5th-95th percentile range."""
from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
from torch import nn

from mbrl_ray import seeding
from mbrl_ray.critics.nets import Actor
from mbrl_ray.nn import mlp
from mbrl_ray.world_models.rssm import Belief

NORM_DECAY = 0.99


def lambda_returns(rewards: torch.Tensor, values: torch.Tensor, discounts: torch.Tensor,
                   lam: float) -> torch.Tensor:
    """rewards, discounts (H, N) of arriving at imagined states 1..H (discount = gamma x
    P(continue)), values (H+1, N) of states 0..H -> returns (H, N) of states 0..H-1:
        R_k = r_{k+1} + d_{k+1} ((1 - lam) v_{k+1} + lam R_{k+1}),   R_H = v_H."""
    returns, last = [], values[-1]
    for k in reversed(range(rewards.shape[0])):
        last = rewards[k] + discounts[k] * ((1 - lam) * values[k + 1] + lam * last)
        returns.append(last)
    return torch.stack(returns[::-1])


@contextmanager
def frozen(module: nn.Module):
    """The module's parameters take no gradient inside (gradients still flow through it)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


class ReturnScale:
    """max(1, S), S the EMA of the returns' 5th-95th percentile range (DreamerV3)."""

    def __init__(self) -> None:
        self.range = 0.0

    def update(self, returns: torch.Tensor) -> float:
        flat = returns.detach().flatten().float()
        low, high = torch.quantile(flat, torch.tensor([0.05, 0.95], device=flat.device))
        self.range = NORM_DECAY * self.range + (1 - NORM_DECAY) * float(high - low)
        return max(1.0, self.range)


class ImaginedActorCritic:
    def __init__(self, feat_dim: int, act_dim: int, cfg, device: torch.device,
                 seed: int = 0, trainable: bool = True) -> None:
        """cfg: the dreamer section; seed: of the initial weights (seeding.py)."""
        self.cfg = cfg
        init = seeding.init_generator(seed)
        actor, critic = self.networks(feat_dim, act_dim)
        self.actor = seeding.init_weights(actor, init).to(device)
        self.critic = seeding.init_weights(critic, init).to(device)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.scale = ReturnScale()
        if trainable:
            self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, eps=1e-5)
            self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr,
                                               eps=1e-5)

    def networks(self, feat_dim: int, act_dim: int) -> tuple[nn.Module, nn.Module]:
        """The actor and critic before their seeded initial weights."""
        c = self.cfg
        return Actor(feat_dim, act_dim, c.hidden, c.layers), mlp(feat_dim, 1, c.hidden, c.layers)

    def act(self, feat: torch.Tensor, explore: bool, generator: torch.Generator | None = None
            ) -> torch.Tensor:
        """A sampled action when exploring, the mode otherwise."""
        return self.actor(feat, deterministic=not explore, generator=generator)[0]

    def imagine(self, model, start: Belief, generator: torch.Generator | None = None):
        """Roll the actor through the model's prior -> feats (H+1, N, F) and, at states
        0..H-1, what the actor returns beside its action (H, N): log pi of the sample here,
        the distribution's entropy for DreamerV3's actor."""
        state, feats, extras = start, [start.feat], []
        for _ in range(self.cfg.horizon):
            action, extra = self.actor(state.feat.detach(), generator=generator)
            state = model.img_step(state, action, generator)
            feats.append(state.feat)
            extras.append(extra)
        return torch.stack(feats), torch.stack(extras)

    def update(self, model, start: Belief, generator: torch.Generator | None = None,
               start_goes_on: torch.Tensor | None = None) -> dict[str, float]:
        """One actor and one critic step from posterior states (any shape, flattened).
        start_goes_on (1 - is_terminal of the start rows) is DreamerV3's weight; v1 weighs the
        imagined states by the predicted continues alone and does not read it."""
        c = self.cfg
        start = Belief(*(x.reshape(-1, x.shape[-1]) for x in (start.h, start.s, start.stats)))
        with frozen(model):
            feats, log_probs = self.imagine(model, start, generator)
            rewards, cont = model.reward(feats[1:]), model.continues(feats[1:])
        returns = lambda_returns(rewards, self.slow_critic(feats)[..., 0], c.gamma * cont, c.lam)
        weights = torch.cumprod(torch.cat([torch.ones_like(cont[:1]), cont[:-1]]), 0).detach()
        scale = self.scale.update(returns) if c.return_norm else 1.0
        entropy = -log_probs
        actor_loss = -(weights * (returns / scale + c.entropy * entropy)).mean()
        self._step(self.actor_opt, self.actor, actor_loss)
        values = self.critic(feats[:-1].detach())[..., 0]
        critic_loss = 0.5 * (weights * (values - returns.detach()) ** 2).mean()
        self._step(self.critic_opt, self.critic, critic_loss)
        self._polyak()
        return {"dreamer_actor_loss": actor_loss.item(), "dreamer_critic_loss": critic_loss.item(),
                "dreamer_return": returns.mean().item(), "dreamer_entropy": entropy.mean().item(),
                "dreamer_return_scale": scale}

    def _step(self, opt: torch.optim.Optimizer, net: nn.Module, loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), self.cfg.grad_clip)
        opt.step()

    @torch.no_grad()
    def _polyak(self) -> None:
        rate = self.cfg.slow_critic_rate
        for slow, fast in zip(self.slow_critic.parameters(), self.critic.parameters()):
            slow.lerp_(fast, rate)

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "slow_critic": self.slow_critic.state_dict(), "scale": self.scale.range,
                "actor_opt": self.actor_opt.state_dict(),
                "critic_opt": self.critic_opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.slow_critic.load_state_dict(state["slow_critic"])
        self.scale.range = float(state["scale"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
