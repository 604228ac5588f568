"""DreamerV3's actor and critic on imagined rollouts (Hafner et al. 2023, Sec. 3 and Eq. 7-11),
beside critics/imagination.py's Dreamer (v1) heads.

What differs from v1:
- the critic is a two-hot categorical over 255 symlog-space bins (output layer zero-initialised),
  trained by cross-entropy to the lambda-returns and, with weight `slow_reg`, to its slow
  (Polyak) copy's predictions; the returns bootstrap from the online critic;
- the actor is a Gaussian with mean tanh(.) and std bounded in [0.1, 1] (not squashed), its
  entropy analytic;
- each imagined state's loss weight is prod_{j<=k} gamma c_j / gamma (the start's own continue
  from replay), so discounting and predicted ends both weigh the losses.
The actor maximises the returns scaled by max(1, S) (ReturnScale) by backpropagating through
the frozen model and critic (continuous actions, as V3)."""
from __future__ import annotations

import math

import torch
from torch import nn

from mbrl_ray.critics.imagination import ImaginedActorCritic, frozen, lambda_returns
from mbrl_ray.nn import silu_mlp
from mbrl_ray.world_models.rssm import Belief
from mbrl_ray.world_models.symlog import TwoHot

STD_RANGE = (0.1, 1.0)


class BoundedActor(nn.Module):
    """feat -> Normal(tanh(m), (max - min) sigmoid(s + 2) + min) over actions."""

    def __init__(self, feat_dim: int, act_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.net = silu_mlp(feat_dim, 2 * act_dim, hidden, layers)

    def params(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = self.net(feat).chunk(2, -1)
        low, high = STD_RANGE
        return torch.tanh(mean), (high - low) * torch.sigmoid(raw + 2.0) + low

    def forward(self, feat: torch.Tensor, deterministic: bool = False,
                generator: torch.Generator | None = None):
        """-> (action, entropy of the distribution (...)); the mean when deterministic."""
        mean, std = self.params(feat)
        entropy = entropy_of(std)
        if deterministic:
            return mean, entropy
        noise = torch.randn(mean.shape, device=mean.device, generator=generator)
        return mean + std * noise, entropy


def entropy_of(std: torch.Tensor) -> torch.Tensor:
    """The entropy of a diagonal Gaussian, summed over its dims."""
    return (torch.log(std) + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)


def loss_weights(cont: torch.Tensor, gamma: float, start_goes_on: torch.Tensor) -> torch.Tensor:
    """cont (H, N) of arriving at states 1..H, start_goes_on (N,) -> weights (H + 1, N) of
    states 0..H: w_k = prod_{j=0..k} (gamma c_j) / gamma, c_0 the start's."""
    discounts = gamma * torch.cat([start_goes_on[None], cont])
    return torch.cumprod(discounts, 0) / gamma


class ImaginedActorCriticV3(ImaginedActorCritic):
    def __init__(self, feat_dim: int, act_dim: int, cfg, device: torch.device,
                 seed: int = 0, trainable: bool = True) -> None:
        """cfg: the dreamer section; seed: of the initial weights (seeding.py)."""
        self.two_hot = TwoHot()
        super().__init__(feat_dim, act_dim, cfg, device, seed, trainable)

    def networks(self, feat_dim: int, act_dim: int) -> tuple[nn.Module, nn.Module]:
        c = self.cfg
        return (BoundedActor(feat_dim, act_dim, c.hidden, c.layers),
                silu_mlp(feat_dim, self.two_hot.bins, c.hidden, c.layers, zero_out=True))

    def update(self, model, start: Belief, generator: torch.Generator | None = None,
               start_goes_on: torch.Tensor | None = None) -> dict[str, float]:
        """One actor and one critic step from posterior states (any shape, flattened);
        start_goes_on: 1 - is_terminal of those states' rows (all 1 when None)."""
        c = self.cfg
        start = Belief(*(x.reshape(-1, x.shape[-1]) for x in (start.h, start.s, start.stats)))
        goes_on = (torch.ones(len(start.h), device=start.h.device) if start_goes_on is None
                   else start_goes_on.reshape(-1).float())
        with frozen(model), frozen(self.critic):
            feats, entropies = self.imagine(model, start, generator)
            rewards, cont = model.reward(feats[1:]), model.continues(feats[1:])
            values = self.two_hot.mean(self.critic(feats))
        returns = lambda_returns(rewards, values, c.gamma * cont, c.lam)
        weights = loss_weights(cont, c.gamma, goes_on).detach()[:-1]
        scale = self.scale.update(returns) if c.return_norm else 1.0
        actor_loss = -(weights * (returns / scale + c.entropy * entropies)).mean()
        self._step(self.actor_opt, self.actor, actor_loss)
        critic_loss = self._critic_loss(feats[:-1].detach(), returns.detach(), weights)
        self._step(self.critic_opt, self.critic, critic_loss)
        self._polyak()
        return {"dreamer_actor_loss": actor_loss.item(), "dreamer_critic_loss": critic_loss.item(),
                "dreamer_return": returns.mean().item(), "dreamer_entropy": entropies.mean().item(),
                "dreamer_return_scale": scale}

    def _critic_loss(self, feats: torch.Tensor, returns: torch.Tensor, weights: torch.Tensor
                     ) -> torch.Tensor:
        """Two-hot cross-entropy to the returns, plus slow_reg x to the slow critic's means."""
        logits = self.critic(feats)
        with torch.no_grad():
            slow = self.two_hot.mean(self.slow_critic(feats))
        loss = (self.two_hot.loss(logits, returns)
                + self.cfg.slow_reg * self.two_hot.loss(logits, slow))
        return (weights * loss).mean()
