"""Deep PILCO's dynamics (Gal, McAllister & Rasmussen 2016): a network whose dropout is kept at
prediction time, so each dropout mask is one sample of the dynamics function (dropout as
variational inference). Inputs and targets (state differences) are standardised; the masks of
a rollout are drawn once and held for all its steps, one per particle."""
from __future__ import annotations

import torch
from torch import nn

from mbrl_ray.world_models.ensemble import Standardizer

Tensor = torch.Tensor


class DropoutDynamics(nn.Module):
    """delta = f(inputs) by `layers` ReLU layers of `hidden` units, each followed by dropout of
    rate `p` (Bernoulli masks scaled by 1 / (1 - p))."""

    def __init__(self, inputs: int, outputs: int, hidden: int, layers: int, p: float) -> None:
        super().__init__()
        dims = [inputs] + [hidden] * layers
        self.hidden = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims, dims[1:]))
        self.out = nn.Linear(hidden, outputs)
        self.p = p
        self.inp_norm, self.out_norm = Standardizer(inputs), Standardizer(outputs)

    def sample_masks(self, count: int, generator: torch.Generator) -> list[Tensor]:
        """One mask per hidden layer, (count, hidden) each: a dynamics sample per row."""
        keep = 1.0 - self.p
        return [torch.bernoulli(torch.full((count, layer.out_features), keep,
                                           dtype=layer.weight.dtype), generator=generator) / keep
                for layer in self.hidden]

    def forward(self, x: Tensor, masks: list[Tensor]) -> Tensor:
        """Predicted differences for inputs x (N, inputs) under masks (N, hidden) each."""
        h = self.inp_norm(x)
        for layer, mask in zip(self.hidden, masks):
            h = torch.relu(layer(h)) * mask
        return self.out_norm.inverse(self.out(h))

    def loss(self, x: Tensor, y: Tensor, masks: list[Tensor]) -> Tensor:
        """Squared error of standardised targets under fresh masks (the weight decay of the
        variational objective is the optimiser's)."""
        h = self.inp_norm(x)
        for layer, mask in zip(self.hidden, masks):
            h = torch.relu(layer(h)) * mask
        return ((self.out(h) - self.out_norm(y)) ** 2).mean()
