"""Networks of the actor-critic family: a tanh-Gaussian actor and twin Q critics (SAC's), and a
Q ensemble on batched layers (TD3-style critics of TD-MPC2 and DC-MPC), as plain modules that
any agent composes (SAC, PETS's terminal value and action prior, SMCP's proposal, MBPO)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mbrl_ray.nn import EnsembleLinear, mish, mlp, normed_mlp

LOG_STD = (-5.0, 2.0)
ACTION_EPS = 1e-4  # given actions are kept this far inside +-1 before atanh


class DeterministicActor(nn.Module):
    """latent -> action in [-1, 1] (TD3's actor, DC-MPC's prior policy)."""

    def __init__(self, in_dim: int, act_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.net = normed_mlp(in_dim, act_dim, hidden, layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(z))


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


class QEnsemble(nn.Module):
    """E independent Q-functions (TD-MPC2, REDQ, DC-MPC's 5) as one batched MLP of
    EnsembleLinear layers, each hidden layer layer-normalised with per-member scale and shift,
    then `activation` (relu, or mish as TD-MPC2 and DC-MPC): (obs (..., D), act (..., A)) ->
    values (E, ...)."""

    def __init__(self, members: int, obs_dim: int, act_dim: int, hidden: int,
                 layers: int, activation: str = "relu") -> None:
        super().__init__()
        self.members = members
        self.activation = {"relu": F.relu, "mish": mish}[activation]
        dims = [obs_dim + act_dim] + [hidden] * layers
        self.hidden = nn.ModuleList(EnsembleLinear(members, i, o) for i, o in zip(dims, dims[1:]))
        self.scale = nn.ParameterList(nn.Parameter(torch.ones(members, 1, o)) for o in dims[1:])
        self.shift = nn.ParameterList(nn.Parameter(torch.zeros(members, 1, o)) for o in dims[1:])
        self.head = EnsembleLinear(members, dims[-1], 1)

    def forward(self, obs: torch.Tensor, act: torch.Tensor,
                members: torch.Tensor | None = None) -> torch.Tensor:
        """Values of every member, or of the `members` given (an index tensor): (M, ...)."""
        x = torch.cat([obs, act], -1)
        lead = x.shape[:-1]
        pick = (lambda t: t) if members is None else (lambda t: t[members])
        x = x.reshape(1, -1, x.shape[-1]).expand(len(pick(self.scale[0])), -1, -1)
        for layer, scale, shift in zip(self.hidden, self.scale, self.shift):
            x = torch.baddbmm(pick(layer.bias), x, pick(layer.weight))
            x = self.activation(F.layer_norm(x, x.shape[-1:]) * pick(scale) + pick(shift))
        out = torch.baddbmm(pick(self.head.bias), x, pick(self.head.weight))
        return out.reshape(-1, *lead)

    def mean_of_two(self, obs: torch.Tensor, act: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean over two members drawn at random (TD-MPC2's and DC-MPC's value for the actor
        loss and for planning)."""
        return self(obs, act, self._pair(generator, obs.device)).mean(0)

    def min_of_two(self, obs: torch.Tensor, act: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """Min over two members drawn at random (one draw per call): the clipped target of
        TD3 / REDQ / TD-MPC2 over an ensemble; only those two are evaluated; -> (N,)."""
        return self(obs, act, self._pair(generator, obs.device)).min(0).values

    def _pair(self, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        pair = torch.randperm(self.members, generator=generator, device=generator.device
                              if generator is not None else "cpu")[:2]
        return pair.to(device)
