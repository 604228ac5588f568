"""What planning needs of a world model, and the one return estimator every family plans with.

A family gives planning a `Rollout`: its view of a batch of beliefs (the ensemble's particles,
the RSSM's latent state, the DCWM's codes) laid out with the candidate action sequences, one row
per simulated trajectory. `rollout_returns` walks every row through the model and sums

    sum_t discount^t alive_t (bonus_t + r_t)  +  discount^H alive_H value(s_H),
    alive_0 = 1, alive_{t+1} = alive_t c_t,

where r_t and c_t (the probability that the episode goes on after step t) come from the model's
step: the step on which an episode ends still pays its reward, later steps and the value at the
horizon count with the probability of getting there.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

State = Any  # a family's row state: a tensor, a Belief, ...
Bonus = tuple[float, Callable[[State, torch.Tensor], torch.Tensor]]


class Rollout(Protocol):
    """A world model's planning view of a batch of beliefs (built per call)."""

    def start(self, actions: torch.Tensor) -> tuple[State, torch.Tensor]:
        """The rows for candidate sequences (B, N, H, A): their start states and actions laid
        out per row, (*rows, H, A)."""

    def step(self, state: State, action: torch.Tensor, generator: torch.Generator | None
             ) -> tuple[State, torch.Tensor, torch.Tensor | float]:
        """One imagined step of every row: (next state, reward (*rows), P(continue) (*rows) or
        1.0 for a model that never ends an episode)."""

    def values(self, returns: torch.Tensor) -> torch.Tensor:
        """Per-row returns (*rows) -> one value per candidate, (B, N)."""


@torch.no_grad()
def rollout_returns(model: Rollout, actions: torch.Tensor, discount: float = 1.0,
                    value: Callable[[State], torch.Tensor] | None = None,
                    bonuses: Sequence[Bonus] = (),
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Values (B, N) of action sequences (B, N, H, A) under `model` (see the module docstring).
    value maps the states at the horizon to (*rows); each bonus (weight, fn(state, action)) is
    added per step before the model steps, weighted like a reward (an action prior's
    log-density, an information term)."""
    state, acts = model.start(actions)
    ret = torch.zeros(acts.shape[:-2], device=acts.device)
    alive = torch.ones(acts.shape[:-2], device=acts.device)
    horizon = acts.shape[-2]
    for t in range(horizon):
        action = acts[..., t, :]
        for weight, bonus in bonuses:
            ret += (discount ** t) * alive * weight * bonus(state, action)
        state, reward, cont = model.step(state, action, generator)
        ret += (discount ** t) * alive * reward
        alive = alive * cont
    if value is not None:
        ret += (discount ** horizon) * alive * value(state)
    return model.values(ret)
