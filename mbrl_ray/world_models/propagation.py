"""Trajectory sampling (PETS): score action sequences by rolling particles through the ensemble."""
from __future__ import annotations

from typing import Callable

import torch

from mbrl_ray.finite import NonFiniteError
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


@torch.no_grad()
def expected_returns(model: ProbabilisticEnsemble | PlanningEnsemble, obs: torch.Tensor,
                     actions: torch.Tensor, *, particles: int, propagation: str,
                     discount: float = 1.0, info_weight: float = 0.0, info_term: str = "mi",
                     terminal_value: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     log_prior: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                     generator: torch.Generator | None = None, first_states: bool = False):
    """Mean return over particles of each action sequence.

    obs (B, obs_dim), actions (B, N, H, act_dim) -> (B, N). A particle's reward at step t counts
    with the model's probability that it has not terminated before t, so planning foresees falls.
    ts_inf: each particle keeps one member for the whole horizon; ts1: a random member per step.
    info_weight != 0 adds, per step, that weight times the information term of the inference
    view at the particle's state and action (info_term "mi": the mutual information between
    member and predicted transition; "std": the members' spread; costs E more passes):
    +1 is seed 001's Eq. 10, a negative weight penalises disagreement.
    terminal_value maps final states (R, obs_dim) -> (R,); its value counts at the horizon with
    the particle's survival probability and discount^H (a critic seeing beyond the horizon).
    log_prior maps (states (R, obs_dim), actions (R, A)) -> (R,): an action prior's weighted
    log-density, added per step like a reward (seed 001's log p(a_t | s_t); the planner pays the
    matching -log q).
    first_states=True also returns every particle's sampled state after the first action
    (B, N, particles, obs_dim), for the LST posterior.
    """
    b, n, h, a = actions.shape
    e = model.members
    rows = b * n * particles
    pad = (-rows) % e
    state = obs[:, None, None, :].expand(b, n, particles, obs.shape[-1]).reshape(rows, -1)
    acts = actions[:, :, None].expand(b, n, particles, h, a).reshape(rows, h, a)
    if pad:  # fill up to a multiple of E with copies of rows (more than `rows` when rows < E)
        fill = torch.arange(pad, device=obs.device) % rows
        state = torch.cat([state, state[fill]])
        acts = torch.cat([acts, acts[fill]])
    total = rows + pad
    shape = (e, total // e) if propagation == "ts_inf" else (total,)
    ret = torch.zeros(shape, device=obs.device)
    alive = torch.ones(shape, device=obs.device)
    if propagation == "ts_inf":  # rows stay in member layout for the whole horizon
        state, acts = _to_members(state, e), _to_members(acts, e)
    for t in range(h):
        if log_prior is not None:
            ret += (discount ** t) * alive * _flat_call(log_prior, state, acts[..., t, :])
        if info_weight:
            ret += (discount ** t) * alive * info_weight * _information(
                model, state, acts[..., t, :], propagation, info_term, generator)
        if propagation == "ts_inf":
            state, reward, p_term = model.step(state, acts[:, :, t], generator)
        else:
            perm = torch.randperm(total, device=obs.device, generator=generator)
            nxt, reward, p_term = model.step(_to_members(state[perm], e),
                                             _to_members(acts[perm, t], e), generator)
            inverse = torch.empty_like(perm)
            inverse[perm] = torch.arange(total, device=obs.device)
            state = _from_members(nxt)[inverse]
            reward, p_term = _from_members(reward)[inverse], _from_members(p_term)[inverse]
        ret += (discount ** t) * alive * reward
        alive = alive * (1.0 - p_term)
        if t == 0:
            first = state
    if terminal_value is not None:
        ret += (discount ** h) * alive * terminal_value(state.reshape(-1, state.shape[-1])).view(
            ret.shape)
    if propagation == "ts_inf":
        ret = _from_members(ret)
    ret = ret[:rows]
    if not bool(torch.isfinite(ret).all()):  # a broken model: stop, do not plan around it
        raise NonFiniteError("non-finite predicted return in planning "
                             f"({int((~torch.isfinite(ret)).sum())} of {ret.numel()} rollouts)")
    values = ret.view(b, n, particles).mean(-1)
    if not first_states:
        return values
    if propagation == "ts_inf":
        first = _from_members(first)
    return values, first[:rows].view(b, n, particles, -1)


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
