"""Trajectory sampling (PETS): score action sequences by rolling particles through the ensemble."""
from __future__ import annotations

from typing import Callable

import torch

from mbrl_ray.finite import NonFiniteError
from mbrl_ray.world_models.base import rollout_returns
from mbrl_ray.world_models.ensemble import ProbabilisticEnsemble
from mbrl_ray.world_models.planning_ensemble import PlanningEnsemble


def _to_members(x: torch.Tensor, members: int) -> torch.Tensor:
    """(M, ...) with M divisible by E -> (E, M/E, ...): row i goes to member i % E."""
    return x.reshape(-1, members, *x.shape[1:]).transpose(0, 1).contiguous()


def _from_members(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(0, 1).reshape(-1, *x.shape[2:])


def _information(model, state: torch.Tensor, action: torch.Tensor, propagation: str,
                 kind: str, generator: torch.Generator | None):
    if propagation == "ts_inf":  # already (E, K, ·)
        return model.information(state, action, kind, generator)
    e = model.members
    return _from_members(model.information(_to_members(state, e), _to_members(action, e),
                                           kind, generator))


class EnsembleRollout:
    """The ensemble's planning view (world_models/base.py): `particles` rows per candidate from
    each observation, padded to a multiple of E with copies. ts_inf: row i stays on member i % E
    for the whole horizon (rows in member layout (E, K, ·)); ts1: a random member per step."""

    def __init__(self, model: ProbabilisticEnsemble | PlanningEnsemble, obs: torch.Tensor,
                 particles: int, propagation: str) -> None:
        self.model, self.obs, self.particles, self.propagation = model, obs, particles, propagation
        self.first: torch.Tensor | None = None  # every row's state after the first action

    def start(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, h, a = actions.shape
        obs, e = self.obs, self.model.members
        self.shape = (b, n, self.particles)
        rows = self.rows = b * n * self.particles
        pad = (-rows) % e
        state = obs[:, None, None, :].expand(*self.shape, obs.shape[-1]).reshape(rows, -1)
        acts = actions[:, :, None].expand(*self.shape, h, a).reshape(rows, h, a)
        if pad:  # fill up to a multiple of E with copies of rows (more than `rows` when rows < E)
            fill = torch.arange(pad, device=obs.device) % rows
            state = torch.cat([state, state[fill]])
            acts = torch.cat([acts, acts[fill]])
        if self.propagation == "ts_inf":  # rows stay in member layout for the whole horizon
            return _to_members(state, e), _to_members(acts, e)
        return state, acts

    def step(self, state: torch.Tensor, action: torch.Tensor, generator: torch.Generator | None):
        if self.propagation == "ts_inf":
            state, reward, p_term = self.model.step(state, action, generator)
        else:
            e, total = self.model.members, state.shape[0]
            perm = torch.randperm(total, device=state.device, generator=generator)
            nxt, reward, p_term = self.model.step(_to_members(state[perm], e),
                                                  _to_members(action[perm], e), generator)
            inverse = torch.empty_like(perm)
            inverse[perm] = torch.arange(total, device=state.device)
            state = _from_members(nxt)[inverse]
            reward, p_term = _from_members(reward)[inverse], _from_members(p_term)[inverse]
        if self.first is None:
            self.first = state
        return state, reward, 1.0 - p_term

    def values(self, returns: torch.Tensor) -> torch.Tensor:
        """Mean over particles; a non-finite return stops planning (a broken model)."""
        if self.propagation == "ts_inf":
            returns = _from_members(returns)
        ret = returns[:self.rows]
        if not bool(torch.isfinite(ret).all()):  # a broken model: stop, do not plan around it
            raise NonFiniteError("non-finite predicted return in planning "
                                 f"({int((~torch.isfinite(ret)).sum())} of {ret.numel()} "
                                 "rollouts)")
        return ret.view(self.shape).mean(-1)

    def first_states(self) -> torch.Tensor:
        """Every particle's sampled state after the first action, (B, N, particles, obs_dim)."""
        first = _from_members(self.first) if self.propagation == "ts_inf" else self.first
        return first[:self.rows].view(*self.shape, -1)

    def information(self, kind: str, generator: torch.Generator | None):
        """The inference view's information term at each row's state and action (Marino & Yue)."""
        def term(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
            return _information(self.model, state, action, self.propagation, kind, generator)
        return term


@torch.no_grad()
def expected_returns(model: ProbabilisticEnsemble | PlanningEnsemble, obs: torch.Tensor,
                     actions: torch.Tensor, *, particles: int, propagation: str,
                     discount: float = 1.0, info_weight: float = 0.0, info_term: str = "mi",
                     terminal_value: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     log_prior: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                     generator: torch.Generator | None = None, first_states: bool = False):
    """Mean return over particles of each action sequence (trajectory sampling, PETS).

    obs (B, obs_dim), actions (B, N, H, act_dim) -> (B, N), by `rollout_returns` on the
    ensemble's view (EnsembleRollout): a particle's reward at step t counts with the model's
    probability that it has not terminated before t, so planning foresees falls.
    info_weight != 0 adds, per step, that weight times the information term of the inference
    view at the particle's state and action (info_term "mi": the mutual information between
    member and predicted transition; "std": the members' spread; costs E more passes):
    +1 is Marino & Yue's Eq. 10, a negative weight penalises disagreement.
    terminal_value maps final states (R, obs_dim) -> (R,); its value counts at the horizon with
    the particle's survival probability and discount^H (a critic seeing beyond the horizon).
    log_prior maps (states (R, obs_dim), actions (R, A)) -> (R,): an action prior's weighted
    log-density, added per step like a reward (Marino & Yue's log p(a_t | s_t); the planner pays the
    matching -log q).
    first_states=True also returns every particle's sampled state after the first action
    (B, N, particles, obs_dim), for the LST posterior.
    """
    view = EnsembleRollout(model, obs, particles, propagation)
    bonuses = []
    if log_prior is not None:
        bonuses.append((1.0, lambda s, a: _flat_call(log_prior, s, a)))
    if info_weight:
        bonuses.append((info_weight, view.information(info_term, generator)))
    value = None
    if terminal_value is not None:
        def value(state: torch.Tensor) -> torch.Tensor:
            return terminal_value(state.reshape(-1, state.shape[-1])).view(state.shape[:-1])
    values = rollout_returns(view, actions, discount, value, bonuses, generator)
    return (values, view.first_states()) if first_states else values


def _flat_call(fn, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """fn on rows flattened from any layout ((E, K, ·) or (R, ·)), shaped back."""
    out = fn(state.reshape(-1, state.shape[-1]), action.reshape(-1, action.shape[-1]))
    return out.view(state.shape[:-1])


def _pad_rows(x: torch.Tensor, members: int) -> torch.Tensor:
    """Append copies of the first rows until the row count is a multiple of `members`."""
    pad = (-x.shape[0]) % members
    if not pad:
        return x
    return torch.cat([x, x[torch.arange(pad, device=x.device) % x.shape[0]]])


@torch.no_grad()
def flat_step(model: ProbabilisticEnsemble | PlanningEnsemble, state: torch.Tensor,
              action: torch.Tensor, generator: torch.Generator | None = None):
    """One sampled transition per row of (R, ·) tensors, row i on member i % E (SMCP's
    particles): -> next states (R, obs_dim), rewards (R,), P(terminated) (R,)."""
    rows, e = state.shape[0], model.members
    out = model.step(_to_members(_pad_rows(state, e), e), _to_members(_pad_rows(action, e), e),
                     generator)
    return tuple(_from_members(x)[:rows] for x in out)


@torch.no_grad()
def policy_sequences(model: ProbabilisticEnsemble | PlanningEnsemble, obs: torch.Tensor,
                     policy: Callable[[torch.Tensor], torch.Tensor], count: int, horizon: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Action sequences of a policy rolled through the model from each obs: (B, obs_dim) ->
    (B, count, horizon, act_dim), each row on one member (TS-inf), a_t = policy(s_t)."""
    b, e = obs.shape[0], model.members
    rows = b * count
    state = _to_members(_pad_rows(obs.repeat_interleave(count, 0), e), e)
    actions = []
    for _ in range(horizon):
        action = policy(state.reshape(-1, state.shape[-1])).view(*state.shape[:2], -1)
        actions.append(action)
        state, _, _ = model.step(state, action, generator)
    seq = _from_members(torch.stack(actions, 2))[:rows]
    return seq.view(b, count, horizon, -1)
