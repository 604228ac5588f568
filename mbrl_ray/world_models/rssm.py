"""Recurrent state-space model (Hafner et al. 2019, PlaNet): a deterministic recurrent state h
(a GRU) and a stochastic latent s, with the prior p(s_t | h_t) for imagination and the posterior
q(s_t | h_t, e(o_t)) for filtering observations.

Time convention (the replay's rows): row t holds o_t and the action a_{t-1} that led to it.
    h_t = GRU(h_{t-1}, [s_{t-1}, a_{t-1}]),  s_t ~ q(. | h_t, e_t)   (observe)
                                            s_t ~ p(. | h_t)         (imagine)
A row marked is_first starts from the zero state and a zero action, as a rollout worker's
acting state does after its env resets, so training and acting filter alike."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mbrl_ray.world_models.latents import make_latent


@dataclass
class Belief:
    """A batch of model states: h (..., deter), s (..., stoch) and the statistics s was drawn
    from (..., stats_dim)."""
    h: torch.Tensor
    s: torch.Tensor
    stats: torch.Tensor

    @property
    def feat(self) -> torch.Tensor:
        """[h, s]: what the decoder, the heads, the actor and the critic read."""
        return torch.cat([self.h, self.s], -1)


class GRUCell(nn.Module):
    """The GRU of DreamerV2 (one linear layer, layer norm, update gate biased toward keeping
    h): a plain Linear, so its initial weights are seeded like every other layer's."""

    def __init__(self, inp: int, size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(inp + size, 3 * size, bias=False)
        self.norm = nn.LayerNorm(3 * size)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        reset, cand, update = self.norm(self.linear(torch.cat([x, h], -1))).chunk(3, -1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1)
        return update * cand + (1 - update) * h


def _layer(inp: int, out: int, v3: bool) -> list[nn.Module]:
    """Linear -> ELU (PlaNet, Dreamer), or Linear -> LayerNorm -> SiLU (DreamerV3)."""
    if v3:
        return [nn.Linear(inp, out), nn.LayerNorm(out), nn.SiLU()]
    return [nn.Linear(inp, out), nn.ELU()]


def _head(inp: int, hidden: int, out: int, v3: bool) -> nn.Sequential:
    return nn.Sequential(*_layer(inp, hidden, v3), nn.Linear(hidden, out))


class RSSM(nn.Module):
    def __init__(self, act_dim: int, embed_dim: int, deter: int = 200, stoch: int = 30,
                 hidden: int = 200, latent: str = "gaussian", classes: int = 32,
                 min_std: float = 0.1, v3: bool = False) -> None:
        """v3: DreamerV3's LayerNorm + SiLU in place of ELU."""
        super().__init__()
        self.latent = make_latent(latent, stoch, classes, min_std)
        self.deter = deter
        self.img_in = nn.Sequential(*_layer(self.latent.size + act_dim, hidden, v3))
        self.gru = GRUCell(hidden, deter)
        self.prior_net = _head(deter, hidden, self.latent.stats_dim, v3)
        self.post_net = _head(deter + embed_dim, hidden, self.latent.stats_dim, v3)

    @property
    def feat_dim(self) -> int:
        return self.deter + self.latent.size

    def initial(self, batch: int, device: torch.device | str = "cpu") -> Belief:
        """The zero state of `batch` sequences (the state before a row marked is_first)."""
        zeros = torch.zeros
        return Belief(zeros(batch, self.deter, device=device),
                      zeros(batch, self.latent.size, device=device),
                      zeros(batch, self.latent.stats_dim, device=device))

    def recur(self, prev: Belief, action: torch.Tensor) -> torch.Tensor:
        """h_t from (h_{t-1}, s_{t-1}, a_{t-1})."""
        return self.gru(self.img_in(torch.cat([prev.s, action], -1)), prev.h)

    def img_step(self, prev: Belief, action: torch.Tensor,
                 generator: torch.Generator | None = None, sample: bool = True) -> Belief:
        """One step of the prior: imagination without an observation."""
        h = self.recur(prev, action)
        stats = self.prior_net(h)
        return Belief(h, self._draw(stats, generator, sample), stats)

    def obs_step(self, prev: Belief, action: torch.Tensor, embed: torch.Tensor,
                 generator: torch.Generator | None = None, sample: bool = True
                 ) -> tuple[Belief, torch.Tensor]:
        """One filtering step -> (posterior belief, the prior's statistics at this step)."""
        h = self.recur(prev, action)
        stats = self.post_net(torch.cat([h, embed], -1))
        return Belief(h, self._draw(stats, generator, sample), stats), self.prior_net(h)

    def observe(self, embeds: torch.Tensor, actions: torch.Tensor, is_first: torch.Tensor,
                start: Belief | None = None, generator: torch.Generator | None = None,
                sample: bool = True) -> tuple[Belief, torch.Tensor]:
        """Filter sequences: embeds (B, T, E), actions (B, T, A) (row t's action led to o_t),
        is_first (B, T) -> posterior beliefs (B, T, ...) and prior statistics (B, T, K).
        Rows marked is_first restart from the zero state and a zero action."""
        state = start if start is not None else self.initial(len(embeds), embeds.device)
        posts, priors = [], []
        for t in range(embeds.shape[1]):
            keep = (~is_first[:, t].bool()).to(embeds.dtype)[:, None]
            state = Belief(state.h * keep, state.s * keep, state.stats * keep)
            state, prior = self.obs_step(state, actions[:, t] * keep, embeds[:, t], generator,
                                         sample)
            posts.append(state)
            priors.append(prior)
        stack = lambda xs: torch.stack(xs, 1)  # noqa: E731
        return (Belief(stack([b.h for b in posts]), stack([b.s for b in posts]),
                       stack([b.stats for b in posts])), stack(priors))

    def _draw(self, stats: torch.Tensor, generator, sample: bool) -> torch.Tensor:
        return self.latent.sample(stats, generator) if sample else self.latent.mode(stats)

    def kl_loss(self, post: torch.Tensor, prior: torch.Tensor, free_nats: float,
                balance: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (the KL term to minimise, the plain KL(post || prior) averaged, for logs).
        Free nats: each step's KL counts as max(KL, free_nats), so a posterior within
        free_nats of the prior gets no gradient from it. balance in (0, 1): KL balancing."""
        kl = self.latent.kl(post, prior)
        if not balance:
            return kl.clamp_min(free_nats).mean(), kl.mean()
        dyn, rep = self.kl_terms(post, prior, free_nats)
        return balance * dyn + (1 - balance) * rep, kl.mean()

    def kl_terms(self, post: torch.Tensor, prior: torch.Tensor, free_nats: float
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (dynamics term: KL(sg(post) || prior), training the prior; representation
        term: KL(post || sg(prior)), training the posterior), each step's clipped below
        free_nats, averaged. Their values are equal; their gradients differ."""
        dyn = self.latent.kl(post.detach(), prior).clamp_min(free_nats).mean()
        rep = self.latent.kl(post, prior.detach()).clamp_min(free_nats).mean()
        return dyn, rep
