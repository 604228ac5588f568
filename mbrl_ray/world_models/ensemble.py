"""Probabilistic ensemble (PETS/MBPO): E members as batched (E, in, out) layers.

Each member predicts a Gaussian over standardised (Δobs, reward). An optional termination head
per member, p(terminated | s'), reads the next state: termination is a function of where the
system lands (a pole past its angle limit), which a head on s' learns from few examples and which
planning can then evaluate on sampled next states. Inputs and targets are standardised with
statistics of the whole buffer (refreshed each fit).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mbrl_ray.nn import EnsembleLinear
from mbrl_ray.world_models.information import member_spread, mutual_information

TERM_HIDDEN = 64  # width of the small termination head


class Standardizer(nn.Module):
    """Per-feature mean/std kept as buffers so that they travel with the weights."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: torch.Tensor) -> None:
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp_min(1e-6) if len(x) > 1 else torch.ones_like(self.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


class ProbabilisticEnsemble(nn.Module):
    """Gaussian NLL ensemble over (Δobs, reward) plus a termination head, PETS style."""

    def __init__(self, obs_dim: int, act_dim: int, members: int, hidden: int, layers: int,
                 termination: bool = True) -> None:
        super().__init__()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.members, self.hidden, self.layers = members, hidden, layers
        self.termination = termination
        self.target_dim = obs_dim + 1  # Δobs and reward
        dims = [obs_dim + act_dim] + [hidden] * layers
        self.body = nn.ModuleList(EnsembleLinear(members, i, o) for i, o in zip(dims, dims[1:]))
        self.head = EnsembleLinear(members, hidden, 2 * self.target_dim)
        term_dims = [obs_dim, TERM_HIDDEN, TERM_HIDDEN, 1] if termination else []
        self.term = nn.ModuleList(EnsembleLinear(members, i, o)
                                  for i, o in zip(term_dims, term_dims[1:]))
        self.max_logvar = nn.Parameter(torch.full((1, 1, self.target_dim), 0.5))
        self.min_logvar = nn.Parameter(torch.full((1, 1, self.target_dim), -10.0))
        self.in_norm = Standardizer(obs_dim + act_dim)
        self.out_norm = Standardizer(self.target_dim)

    def forward(self, obs: torch.Tensor, act: torch.Tensor):
        """obs (E, N, obs_dim), act (E, N, act_dim) -> standardised mean and logvar."""
        h = self.in_norm(torch.cat([obs, act], -1))
        for layer in self.body:
            h = F.silu(layer(h))
        mean, logvar = self.head(h).split([self.target_dim, self.target_dim], -1)
        logvar = self.max_logvar - F.softplus(self.max_logvar - logvar)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return mean, logvar

    def termination_logit(self, next_obs: torch.Tensor) -> torch.Tensor:
        """(E, N, obs_dim) -> (E, N) logits of p(terminated | s'); -inf-like when disabled."""
        if not self.termination:
            return torch.full(next_obs.shape[:-1], -30.0, device=next_obs.device)
        h = (next_obs - self.in_norm.mean[:self.obs_dim]) / self.in_norm.std[:self.obs_dim]
        for layer in self.term[:-1]:
            h = F.silu(layer(h))
        return self.term[-1](h).squeeze(-1)

    def targets(self, obs, reward, next_obs) -> torch.Tensor:
        """Standardised (Δobs, reward) regression targets."""
        return self.out_norm(torch.cat([next_obs - obs, reward.unsqueeze(-1)], -1))

    def loss(self, obs, act, reward, next_obs, terminated):
        """Gaussian NLL + logvar-bound penalty + termination BCE; all shaped (E, N, ...).
        Returns (total loss, nll, standardised mse)."""
        mean, logvar = self(obs, act)
        target = self.targets(obs, reward, next_obs)
        nll = (((mean - target) ** 2) * torch.exp(-logvar) + logvar).mean()
        bounds = 0.01 * (self.max_logvar.sum() - self.min_logvar.sum())
        mse = ((mean - target) ** 2).mean()
        loss = nll + bounds
        if self.termination:
            bce = F.binary_cross_entropy_with_logits(self.termination_logit(next_obs),
                                                     terminated.float())
            loss = loss + bce
        return loss, nll, mse

    @torch.no_grad()
    def step(self, obs: torch.Tensor, act: torch.Tensor, generator: torch.Generator | None = None):
        """Sample one transition per row: (E, N, ·) -> next_obs, reward, P(terminated)."""
        mean, logvar = self(obs, act)
        noise = torch.randn(mean.shape, device=mean.device, dtype=mean.dtype, generator=generator)
        sample = self.out_norm.inverse(mean + noise * torch.exp(0.5 * logvar))
        delta, reward = sample.split([self.obs_dim, 1], -1)
        next_obs = obs + delta
        return next_obs, reward.squeeze(-1), torch.sigmoid(self.termination_logit(next_obs))

    @torch.no_grad()
    def information(self, obs: torch.Tensor, act: torch.Tensor, kind: str = "mi",
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """(E, K, ·) rows -> (E, K): every row through every member; kind "mi": the mutual
        information between member and predicted (state change, reward), "std": the std over
        members of the standardised mean state change (see world_models/information.py)."""
        e, k = obs.shape[:2]
        mean, logvar = self(obs.reshape(1, e * k, -1).expand(e, -1, -1),
                            act.reshape(1, e * k, -1).expand(e, -1, -1))
        if kind == "std":
            return member_spread(mean[..., :self.obs_dim]).view(e, k)
        return mutual_information(mean, logvar, generator).view(e, k)

    def select(self, members: list[int]) -> "ProbabilisticEnsemble":
        """A smaller ensemble holding copies of the chosen members (e.g. the elites)."""
        small = ProbabilisticEnsemble(self.obs_dim, self.act_dim, len(members), self.hidden,
                                      self.layers, self.termination).to(self.max_logvar.device)
        index = torch.as_tensor(members, device=self.max_logvar.device)
        state = {k: (v.index_select(0, index) if v.dim() == 3 and v.shape[0] == self.members
                     and not k.endswith("logvar") else v)
                 for k, v in self.state_dict().items()}
        small.load_state_dict(state)
        return small


def planning_flops(cfg, obs_dim: int, act_dim: int) -> float:
    """Matmul FLOPs of one planned action on the ensemble (cfg: a Config): every particle of
    every sample of every iteration through one member, termination head included."""
    m, p = cfg.model, cfg.planner
    dims = [obs_dim + act_dim] + [m.hidden_size] * m.num_layers + [2 * (obs_dim + 1)]
    per_row = sum(2 * i * o for i, o in zip(dims, dims[1:]))
    if m.termination:
        per_row += 2 * (obs_dim * TERM_HIDDEN + TERM_HIDDEN * TERM_HIDDEN + TERM_HIDDEN)
    return per_row * p.population * m.particles * p.horizon * p.iterations
