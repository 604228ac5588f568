"""Layers shared by world models, critics and policies: plain and normed MLPs (Mish or SiLU),
Mish, a zero-initialised linear layer, and E independent linear layers as one batched matmul;
and the epochs-of-minibatches loop that fits a network to all its rows. Neither `critics` nor
`world_models` imports the other for these."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def mlp(inp: int, out: int, hidden: int, layers: int,
        activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """`layers` hidden layers of Linear -> activation (ReLU: SAC's networks), then a plain
    Linear."""
    dims = [inp] + [hidden] * layers
    body = [m for i, o in zip(dims, dims[1:]) for m in (nn.Linear(i, o), activation())]
    return nn.Sequential(*body, nn.Linear(dims[-1], out))


def normed_mlp(inp: int, out: int, hidden: int, layers: int) -> nn.Sequential:
    """`layers` hidden layers of Linear -> LayerNorm -> Mish, then a plain Linear (the layer
    block of TD-MPC2 and of the DCWM authors' code)."""
    dims = [inp] + [hidden] * layers
    body = [m for i, o in zip(dims, dims[1:])
            for m in (nn.Linear(i, o), nn.LayerNorm(o), Mish())]
    return nn.Sequential(*body, nn.Linear(dims[-1], out))


def silu_mlp(inp: int, out: int, hidden: int, layers: int, zero_out: bool = False
             ) -> nn.Sequential:
    """`layers` hidden layers of Linear -> LayerNorm -> SiLU, then a plain Linear, or one
    initialised to zero (`zero_out`: DreamerV3's reward and critic outputs, which so start at
    the bins' centre, 0)."""
    dims = [inp] + [hidden] * layers
    body = [m for i, o in zip(dims, dims[1:])
            for m in (nn.Linear(i, o), nn.LayerNorm(o), nn.SiLU())]
    return nn.Sequential(*body, (ZeroLinear if zero_out else nn.Linear)(dims[-1], out))


class ZeroLinear(nn.Module):
    """A linear layer whose weights and bias start at zero (seeding.init_weights keeps them)."""

    seeded_init = True

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_dim, in_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        self.weight.zero_()
        self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias)


class EnsembleLinear(nn.Module):
    """E independent linear layers applied as one batched matmul: (E, N, in) -> (E, N, out)."""

    seeded_init = True  # seeding.init_weights draws its weights through reset_parameters

    def __init__(self, members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(members, 1, out_dim))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        bound = 1.0 / self.weight.shape[1] ** 0.5
        self.weight.uniform_(-bound, bound, generator=generator)
        self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class _Mish(torch.autograd.Function):
    """mish(x) = x tanh(softplus(x)) from one exp: tanh(softplus(x)) = n / (n + 2) with
    n = e^x (e^x + 2); torch's CPU mish and softplus kernels cost ~10x SiLU per element."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        e = torch.exp(x.clamp(max=20.0))  # above 20, tanh(softplus(x)) = 1 in float32
        n = e * (e + 2.0)
        t = n / (n + 2.0)
        ctx.save_for_backward(x, t)
        return x * t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        x, t = ctx.saved_tensors
        return grad * (t + x * (1.0 - t * t) * torch.sigmoid(x))


def mish(x: torch.Tensor) -> torch.Tensor:
    """Mish (Misra 2019), as F.mish, computed from one exp (see _Mish)."""
    return _Mish.apply(x)


class Mish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mish(x)


def train_epochs(loss_of: Callable[[torch.Tensor], torch.Tensor],
                 optimizer: torch.optim.Optimizer, rows: int, epochs: int, batch_size: int,
                 device: torch.device | str, generator: torch.Generator | None = None) -> float:
    """`epochs` passes over `rows` rows, each in a fresh shuffle, one optimizer step on
    loss_of(minibatch row indices) per `batch_size` rows; the last pass's mean loss per row
    (summed on the device: no host sync per step)."""
    for _ in range(epochs):
        order = torch.randperm(rows, device=device, generator=generator)
        total = torch.zeros((), device=device)
        for start in range(0, rows, batch_size):
            idx = order[start:start + batch_size]
            loss = loss_of(idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
    return float(total) / rows
