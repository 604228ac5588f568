"""SMCP's weights and resampling, the LST posterior against exact Bayes, the ensemble's mixture
density, and CEM-LST / SMCP on analytic problems."""
import math

import pytest
import torch

from mbrl_ray.config import ConfigError, apply_overrides, load_preset, validate
from mbrl_ray.planners import CEMLSTPlanner, SMCPlanner, make_planner
from mbrl_ray.planners.lst import lst_log_weights, weighted_moments
from mbrl_ray.planners.smcp import (distinct_survivors, multinomial_resample,
                                    systematic_resample)
from mbrl_ray.world_models.density import log_mixture_density
from mbrl_ray.world_models.ensemble import ProbabilisticEnsemble
from mbrl_ray.world_models.planning_ensemble import PlanningEnsemble

pytestmark = pytest.mark.unit
WEIGHTS = torch.tensor([[0.05, 0.3, 0.0, 0.15, 0.5]])


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("seed", range(5))
def test_systematic_resampling_draws_each_index_floor_or_ceil_of_n_w_times(seed):
    n = 40
    log_w = torch.cat([WEIGHTS.log(), torch.full((1, n - 5), -math.inf)], 1)
    counts = torch.bincount(systematic_resample(log_w, _gen(seed))[0], minlength=n)[:5]
    expected = n * WEIGHTS[0]
    assert ((counts >= expected.floor()) & (counts <= expected.ceil())).all()


def test_multinomial_resampling_frequencies_match_the_weights():
    log_w = WEIGHTS.log().expand(4000, 5)
    freq = torch.bincount(multinomial_resample(log_w, _gen()).flatten(), minlength=5) / 20000
    torch.testing.assert_close(freq, WEIGHTS[0], atol=0.01, rtol=0)


def _gaussian_proposal(std=1.0):
    def proposal(states):
        noise = torch.randn(states.shape[0], 1, generator=_gen(1))
        log_pi = -0.5 * noise[:, 0] ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
        return std * noise, log_pi, torch.zeros(states.shape[0])
    return proposal


def _survivors(planner, step, proposal, temperature=1.0, seed=0):
    candidates, lineage, _ = planner.sweep(step, proposal, torch.zeros(1, 1), temperature,
                                           _gen(seed))
    return candidates[0, lineage[0], 0]


@pytest.mark.parametrize("resampling", ["systematic", "multinomial"])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_smcp_one_step_survivors_follow_the_soft_optimal_posterior(resampling, temperature):
    """Horizon 1, s' = a, r = -(a - c)^2 / (2 s^2), V = 0, proposal N(0, 1): after -log pi the
    target is exp(r / alpha) with a uniform action prior, i.e. N(c, alpha s^2)."""
    c, s = 0.5, 0.3

    def step(states, actions):
        nxt = states + actions
        return nxt, -((actions[:, 0] - c) ** 2) / (2 * s * s), torch.zeros(len(states))

    planner = SMCPlanner(1, 1, 50_000, resampling)
    survivors = _survivors(planner, step, _gaussian_proposal(), temperature)
    assert abs(float(survivors.mean()) - c) < 0.01
    assert abs(float(survivors.std()) - s * math.sqrt(temperature)) < 0.01


def test_smcp_weights_drop_particles_that_terminate_where_the_value_is_high():
    """Proposal uniform on [-1, 1], no reward, V = 5 everywhere, a < 0 terminates: an ended
    particle loses V(s') = 5 nats, so exp(-5) / (1 + exp(-5)) of survivors have a < 0."""
    def proposal(states):
        u = torch.rand(states.shape[0], 1, generator=_gen(2)) * 2 - 1
        return u, torch.full((states.shape[0],), -math.log(2)), torch.full((states.shape[0],), 5.0)

    def step(states, actions):
        return states + actions, torch.zeros(len(states)), (actions[:, 0] < 0).float()

    survivors = _survivors(SMCPlanner(1, 1, 50_000), step, proposal)
    expected = math.exp(-5) / (1 + math.exp(-5))
    assert abs(float((survivors < 0).float().mean()) - expected) < 0.003


def test_smcp_plan_acts_with_a_survivor_and_lst_with_a_weighted_candidate():
    c, s = 0.5, 0.1

    def step(states, actions):
        return states + actions, -((actions[:, 0] - c) ** 2) / (2 * s * s), torch.zeros(len(states))

    planner = SMCPlanner(1, 2, 2000)
    state = planner.initial_state(3)
    action, state = planner.plan(step, _gaussian_proposal(), torch.zeros(3, 1), state,
                                 generator=_gen())
    assert action.shape == (3, 1) and state.shape == (3, 0)
    assert (action - c).abs().max() < 3 * s

    def density(actions, next_states):  # s' = s + a + N(0, 0.05^2), s = 0
        return (-0.5 * ((next_states[:, None, :, 0] - actions[:, :, None, 0]) / 0.05) ** 2)

    lst_action, _ = planner.plan(step, _gaussian_proposal(), torch.zeros(3, 1), state,
                                 generator=_gen(), density=density)
    assert (lst_action - c).abs().max() < 3 * s


def _mixture_log_density(a, s_next):
    """A known two-member model of s' given s = 0 and action a: members N(a + 0.2, 0.3^2) and
    N(1.5 a - 0.1, 0.5^2), as a mixture with equal weights."""
    comps = torch.stack([torch.distributions.Normal(a + 0.2, 0.3).log_prob(s_next),
                         torch.distributions.Normal(1.5 * a - 0.1, 0.5).log_prob(s_next)])
    return torch.logsumexp(comps, 0) - math.log(2)


def _exact_posterior(grid, observed):
    """Eq. 4 by quadrature: mean over j of p(s'_j | a) N(a; 0, 1) / Z_j on a grid of a."""
    prior = torch.distributions.Normal(0.0, 1.0).log_prob(grid).exp()
    post = torch.zeros_like(grid)
    dx = grid[1] - grid[0]
    for s_next in observed:
        lik = _mixture_log_density(grid, s_next).exp() * prior
        post += lik / (lik.sum() * dx) / len(observed)
    return post, dx


def test_lst_weights_match_exact_bayes_for_a_known_mixture_density():
    """p^k = N(0, 1); three simulated next states; the weighted candidates' moments and mass
    above 0 match quadrature of Eq. 4 (the normaliser Z_j is itself estimated from them)."""
    observed = torch.tensor([0.5, -0.8, 1.2], dtype=torch.float64)
    candidates = torch.randn(1, 200_000, 1, generator=_gen(), dtype=torch.float64)
    log_density = _mixture_log_density(candidates[0, :, :], observed[None, :])[None]  # (1,N,M)
    log_w = lst_log_weights(log_density)
    mean, std = weighted_moments(candidates, log_w)
    grid = torch.linspace(-8, 8, 40_001, dtype=torch.float64)
    post, dx = _exact_posterior(grid, observed)
    exact_mean = float((grid * post).sum() * dx)
    exact_std = float((((grid - exact_mean) ** 2 * post).sum() * dx).sqrt())
    assert abs(float(mean) - exact_mean) < 0.01 and abs(float(std) - exact_std) < 0.01
    above = float(log_w.exp()[0][candidates[0, :, 0] > 0].sum())
    assert abs(above - float(post[grid > 0].sum() * dx)) < 0.01


def test_lst_weights_on_distinct_survivors_equal_those_on_every_survivor():
    """SMCP-LST weighs each distinct first next state by its survivor count, not once per
    survivor: the same posterior, with rows of different distinct counts padded."""
    lineage = torch.tensor([[3, 3, 3, 0, 5, 5, 3, 0], [1, 1, 1, 1, 1, 1, 1, 1]])
    first_states = torch.randn(2, 8, 3, generator=_gen(), dtype=torch.float64)
    candidates = torch.randn(2, 8, 1, generator=_gen(1), dtype=torch.float64)

    def density(actions, states):  # any smooth log-likelihood of (candidate, state) pairs
        return -((states.sum(-1)[:, None, :] - 2 * actions) ** 2)

    every = first_states.gather(1, lineage[..., None].expand(-1, -1, 3))
    states, log_counts = distinct_survivors(first_states, lineage)
    assert states.shape == (2, 3, 3)
    assert sorted(log_counts[0].exp().tolist()) == [2, 2, 4]
    assert log_counts[1].exp().tolist() == [8, 0, 0]
    torch.testing.assert_close(lst_log_weights(density(candidates, states), log_counts),
                               lst_log_weights(density(candidates, every)))


def test_lst_weights_are_the_exact_posterior_on_a_discrete_support():
    """p^k uniform on five actions, all five as candidates: the weights are exactly
    mean_j p(s'_j | a) / sum_a' p(s'_j | a') (uniform prior cancels)."""
    actions = torch.linspace(-1, 1, 5, dtype=torch.float64)
    observed = torch.tensor([0.3, 0.9], dtype=torch.float64)
    lik = _mixture_log_density(actions[:, None], observed[None, :]).exp()  # (5, 2)
    exact = (lik / lik.sum(0)).mean(1)
    weights = lst_log_weights(lik.log()[None]).exp()[0]
    torch.testing.assert_close(weights, exact)


def test_log_mixture_density_matches_the_ensemble_module():
    torch.manual_seed(0)
    model = ProbabilisticEnsemble(3, 2, members=4, hidden=16, layers=2)
    with torch.no_grad():
        model.in_norm.mean.copy_(torch.tensor([0.5, -1.0, 2.0, 0.1, -0.2]))
        model.in_norm.std.copy_(torch.tensor([2.0, 0.5, 1.5, 0.7, 1.2]))
        model.out_norm.mean.copy_(torch.tensor([0.1, -0.2, 0.3, 1.0]))
        model.out_norm.std.copy_(torch.tensor([0.5, 2.0, 1.0, 3.0]))
    obs, actions = torch.randn(2, 3), torch.rand(2, 6, 2) * 2 - 1
    next_states = obs[:, None] + torch.randn(2, 5, 3)
    got = log_mixture_density(PlanningEnsemble(model), obs, actions, next_states)
    # Direct: every (s, a_n) through every member, de-standardised Gaussians, mixture.
    rows = torch.cat([obs.repeat_interleave(6, 0), actions.reshape(12, 2)], 1)
    with torch.no_grad():
        mean, logvar = model(rows[None, :, :3].expand(4, -1, -1), rows[None, :, 3:].expand(4, -1, -1))
    std = model.out_norm.std[:3]
    mu = (mean[..., :3] * std + model.out_norm.mean[:3]).view(4, 2, 6, 1, 3)
    sd = (torch.exp(0.5 * logvar[..., :3]) * std).view(4, 2, 6, 1, 3)
    delta = (next_states - obs[:, None])[None, :, None]  # (1, 2, 1, 5, 3)
    log_p = torch.distributions.Normal(mu, sd).log_prob(delta).sum(-1)
    expected = torch.logsumexp(log_p, 0) - math.log(4)
    assert got.shape == (2, 6, 5)
    torch.testing.assert_close(got.float(), expected, atol=1e-3, rtol=1e-4)


def _toy_lst_problem(target_of):
    """A deterministic-ish 1-D model s' = a_0 (+ N(0, 0.05^2)); value target_of(a) summed."""
    def objective(actions):  # (B, N, H, 1)
        first = actions[:, :, 0:1, :]  # (B, N, 1 particle, 1)
        return target_of(actions).sum((-1, -2)), first

    def density(actions, next_states):
        return -0.5 * ((next_states[:, None, :, 0] - actions[:, :, None, 0]) / 0.05) ** 2
    return objective, density


def test_cem_lst_finds_the_quadratic_optimum_and_acts_with_a_posterior_sample():
    objective, density = _toy_lst_problem(lambda a: -(a - 0.6) ** 2)
    planner = CEMLSTPlanner(1, 3, 200, 20, 6)
    sequence, state = planner.plan(objective, planner.initial_state(2), _gen(), None, density)
    assert sequence.shape == (2, 3, 1) and state.shape == (2, 3, 1)
    assert (sequence - 0.6).abs().max() < 0.1


@pytest.mark.parametrize("seed", range(3))
def test_cem_lst_samples_a_mode_where_the_elite_mean_falls_between_two(seed):
    objective, density = _toy_lst_problem(
        lambda a: -torch.minimum((a - 0.6) ** 2, (a + 0.6) ** 2))
    planner = CEMLSTPlanner(1, 2, 200, 20, 5)
    sequence, _ = planner.plan(objective, planner.initial_state(1), _gen(seed), None, density)
    assert sequence[0, 0].abs() > 0.4


def test_smcp_and_lst_are_chosen_by_config_and_lst_needs_cem_or_smcp():
    def planner(*overrides):
        return make_planner(apply_overrides(load_preset("debug"), list(overrides)).planner, 2)

    assert isinstance(planner("planner.name=smcp"), SMCPlanner)
    assert isinstance(planner("planner.posterior=lst"), CEMLSTPlanner)
    with pytest.raises(ConfigError, match="planner.posterior='lst' needs planner.name cem or "
                                          "smcp, not 'mppi'"):
        validate(apply_overrides(load_preset("debug"),
                                 ["planner.posterior=lst", "planner.name=mppi"]))
