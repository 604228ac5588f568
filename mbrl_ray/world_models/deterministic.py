"""A deterministic delta network (MBMF, Nagabandi et al. 2018): s' = s + f(s, a), one MLP on
standardised (s, a) predicting the standardised (s' - s) and, unlike the paper (which plans on
the task's known reward function), the reward, so that it plans like every other model here.
Trained by the mean squared error of those standardised targets; plans through `DeltaRollout`
(world_models/base.py). The paper: 2 hidden layers of 500 ReLU units, Adam 1e-3, batch 512."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mbrl_ray.nn import mlp, train_epochs
from mbrl_ray.world_models.ensemble import Standardizer


class DeltaMLP(nn.Module):
    """(s, a) -> (s', r) through one MLP on standardised inputs and targets."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 500, layers: int = 2) -> None:
        super().__init__()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.net = mlp(obs_dim + act_dim, obs_dim + 1, hidden, layers)
        self.in_norm = Standardizer(obs_dim + act_dim)
        self.out_norm = Standardizer(obs_dim + 1)  # (s' - s, r)

    def fit_normalizers(self, batch: dict[str, torch.Tensor]) -> None:
        """Input and target statistics from transitions (obs, action, reward, next_obs)."""
        self.in_norm.fit(torch.cat([batch["obs"], batch["action"]], -1))
        self.out_norm.fit(self._targets(batch))

    def _targets(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([batch["next_obs"] - batch["obs"], batch["reward"][..., None]], -1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Standardised prediction of (s' - s, r), (..., obs_dim + 1)."""
        return self.net(self.in_norm(torch.cat([obs, action], -1)))

    def step(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(next state (..., obs_dim), reward (...))."""
        out = self.out_norm.inverse(self(obs, action))
        return obs + out[..., :self.obs_dim], out[..., self.obs_dim]

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean squared error of the standardised (s' - s, r) over rows and dimensions."""
        error = F.mse_loss(self(batch["obs"], batch["action"]),
                           self.out_norm(self._targets(batch)))
        return error, {"model_mse": error.item()}


class DeltaRollout:
    """DeltaMLP's planning view (world_models/base.py): one deterministic trajectory per
    candidate from each observation; episodes never end in the model."""

    def __init__(self, model: DeltaMLP, obs: torch.Tensor) -> None:
        self.model, self.obs = model, obs

    def start(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.obs[:, None].expand(-1, actions.shape[1], -1), actions

    def step(self, state: torch.Tensor, action: torch.Tensor, generator: torch.Generator | None):
        next_state, reward = self.model.step(state, action)
        return next_state, reward, 1.0

    def values(self, returns: torch.Tensor) -> torch.Tensor:
        return returns


def fit(model: DeltaMLP, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
        epochs: int, batch_size: int, generator: torch.Generator | None = None) -> float:
    """MBMF's fit on every transition held: the standardisation refit to the rows, then
    `epochs` passes of minibatch steps over a fresh shuffle each; the last pass's mean loss."""
    model.fit_normalizers(batch)
    return train_epochs(lambda idx: model.loss({k: v[idx] for k, v in batch.items()})[0],
                        optimizer, len(batch["obs"]), epochs, batch_size, batch["obs"].device,
                        generator)
