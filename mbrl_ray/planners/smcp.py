"""Sequential Monte Carlo planning (Piché et al. 2019) and its LST posterior (SMCP-LST).

N particles per env start at the env's state. Each step every particle samples an action from
the proposal (the SAC policy), the model samples its transition, and its log weight grows by

    (r + discount * (1 - done) * V(s') - V(s)) / alpha - log pi(a | s)

the soft-optimality target exp(r / alpha) (uniform action prior) over the proposal, twisted by a
value V(s) so that the weights look beyond the horizon; alpha is SAC's temperature. (Piché et al.
use the soft value E_pi[min Q(s, a) - alpha log pi(a | s)]; the agent passes min Q at the policy's
mean action, whose lower variance SMCP needs, see SACAgent.proposal.) An ended particle keeps
paying -log pi with no reward or value, as in an absorbing state. Particles are resampled
(multinomial or systematic) after every step. SMCP-MPC acts with the first action of a
surviving particle; SMCP-LST samples it from the LST posterior over all first actions given the
survivors' first next states.

SMCP-LST iterates Algorithm 1 of the LST paper over K sweeps: sweep 1 draws the first actions
from the proposal (p^0 = pi); sweep k > 1 draws them from a Gaussian fitted to the previous
sweep's LST-weighted candidates (p^{k-1}), clipped to the action bounds, and pays its
-log density in the step-0 weight in place of -log pi. The action is drawn from the last
sweep's weighted candidates (p^K).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from mbrl_ray.planners.lst import Density, lst_log_weights, sample_index, weighted_moments

# states (R, obs), actions (R, A) -> next states (R, obs), rewards (R,), P(terminated) (R,)
Step = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
# states (R, obs) -> actions (R, A), log pi(a | s) (R,), soft value V(s) (R,)
Proposal = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def multinomial_resample(log_w: torch.Tensor, generator: torch.Generator | None = None):
    """(B, N) log weights -> (B, N) ancestor indices, N independent draws per row."""
    return torch.multinomial(torch.softmax(log_w, 1), log_w.shape[1], replacement=True,
                             generator=generator)


def systematic_resample(log_w: torch.Tensor, generator: torch.Generator | None = None):
    """(B, N) log weights -> (B, N) ancestor indices from one uniform offset per row: index i
    is drawn floor(N w_i) or ceil(N w_i) times (lower variance than multinomial)."""
    b, n = log_w.shape
    cdf = torch.softmax(log_w, 1).cumsum(1)
    u = (torch.rand(b, 1, device=log_w.device, generator=generator)
         + torch.arange(n, device=log_w.device)) / n
    return torch.searchsorted(cdf, u.contiguous()).clamp_(max=n - 1)


RESAMPLERS = {"multinomial": multinomial_resample, "systematic": systematic_resample}


class SMCPlanner:
    """plan(step, proposal, obs, temperature) -> (actions (B, A), state); stateless between
    steps (its state tensor is empty), so it shares the agent's per-env bookkeeping."""

    def __init__(self, act_dim: int, horizon: int, particles: int,
                 resampling: str = "systematic", discount: float = 1.0, sweeps: int = 1,
                 min_std: float = 0.05) -> None:
        self.act_dim, self.horizon, self.particles = act_dim, horizon, particles
        self.resample, self.discount = RESAMPLERS[resampling], discount
        self.sweeps, self.min_std = sweeps, min_std

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(batch, 0, device=device)

    @torch.no_grad()
    def sweep(self, step: Step, proposal: Proposal, obs: torch.Tensor, temperature: float,
              generator: torch.Generator | None = None,
              first: tuple[torch.Tensor, torch.Tensor] | None = None):
        """One SMC pass over the horizon from obs (B, obs_dim). Returns the candidates (the
        particles' first actions, draws from the proposal, or from the Gaussian `first` = (mean,
        std), each (B, A), when given) (B, N, A), each survivor's candidate index (B, N) and
        each candidate's first next state (B, N, obs_dim)."""
        b, n = obs.shape[0], self.particles
        rows = torch.arange(b, device=obs.device)[:, None]
        state = obs.repeat_interleave(n, 0)
        action, log_pi, value = proposal(state)
        if first is not None:
            action, log_pi = _gaussian_first_actions(*first, n, generator)
        candidates = action.view(b, n, -1)
        lineage = torch.arange(n, device=obs.device).expand(b, n)
        alive = torch.ones(b * n, dtype=torch.bool, device=obs.device)
        first_states = None
        for t in range(self.horizon):
            nxt, reward, p_term = step(state, action)
            done = torch.rand(p_term.shape, device=obs.device, generator=generator) < p_term
            next_action, next_log_pi, next_value = proposal(nxt)
            live = alive & ~done
            log_w = (alive * reward + self.discount * live * next_value - alive * value) \
                / temperature - log_pi
            if t == 0:
                first_states = nxt.view(b, n, -1)
            ancestor = self.resample(log_w.view(b, n), generator)  # (B, N)
            flat = (rows * n + ancestor).view(-1)
            lineage = lineage.gather(1, ancestor)
            alive = live[flat]
            state, action = nxt[flat], next_action[flat]
            log_pi, value = next_log_pi[flat], next_value[flat]
        return candidates, lineage, first_states

    def plan(self, step: Step, proposal: Proposal, obs: torch.Tensor, state: torch.Tensor,
             temperature: float = 1.0, generator: torch.Generator | None = None,
             density: Density | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The executed first actions (B, A): a surviving particle's (SMCP-MPC), or, given the
        model's transition density, a draw from the LST posterior (SMCP-LST)."""
        candidates, lineage, first_states = self.sweep(step, proposal, obs, temperature,
                                                       generator)
        b = obs.shape[0]
        if density is None:  # weights are uniform after resampling: a random survivor
            survivor = torch.randint(0, self.particles, (b, 1), device=obs.device,
                                     generator=generator)
            pick = lineage.gather(1, survivor).squeeze(1)
            return candidates[torch.arange(b, device=obs.device), pick], state
        log_w = self.lst_weights(candidates, lineage, first_states, density)
        for _ in range(self.sweeps - 1):
            first = weighted_moments(candidates, log_w, self.min_std)
            candidates, lineage, first_states = self.sweep(step, proposal, obs, temperature,
                                                           generator, first)
            log_w = self.lst_weights(candidates, lineage, first_states, density)
        self.last_log_weights = log_w  # diagnostics (effective sample size)
        pick = sample_index(log_w, generator)
        return candidates[torch.arange(b, device=obs.device), pick], state

    @staticmethod
    def lst_weights(candidates: torch.Tensor, lineage: torch.Tensor,
                    first_states: torch.Tensor, density: Density) -> torch.Tensor:
        """Eq. 4 on one sweep: the candidates' normalised log weights (B, N) given the
        survivors' first next states."""
        optimal, log_counts = distinct_survivors(first_states, lineage)
        return lst_log_weights(density(candidates, optimal), log_counts)


def _gaussian_first_actions(mean: torch.Tensor, std: torch.Tensor, n: int,
                            generator: torch.Generator | None):
    """n draws per row from N(mean, std^2) (B, A), clipped to [-1, 1], flattened to (B n, A),
    with the log density of each unclipped draw (B n,)."""
    noise = torch.randn((mean.shape[0], n, mean.shape[1]), device=mean.device,
                        generator=generator)
    log_q = (-0.5 * noise ** 2 - std.log()[:, None] - 0.5 * math.log(2 * math.pi)).sum(-1)
    action = (mean[:, None] + std[:, None] * noise).clamp(-1.0, 1.0)
    return action.flatten(0, 1), log_q.flatten()


def distinct_survivors(first_states: torch.Tensor, lineage: torch.Tensor):
    """The survivors' first next states without repeats: resampling leaves many survivors on
    few lineages, and the LST density costs candidates x states. (B, N, obs), (B, N) ->
    states (B, M, obs) and log counts (B, M), M the most distinct lineages in any row;
    shorter rows are padded with count 0."""
    counts = torch.zeros(lineage.shape, device=lineage.device).scatter_add_(
        1, lineage, torch.ones(lineage.shape, device=lineage.device))
    present = counts > 0
    m = int(present.sum(1).max())
    order = present.to(torch.int8).argsort(dim=1, descending=True, stable=True)[:, :m]
    states = first_states.gather(1, order[..., None].expand(-1, -1, first_states.shape[-1]))
    return states, counts.gather(1, order).log()
