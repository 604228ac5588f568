"""SMCP's weights and resampling, the LST posterior against exact Bayes, the ensemble's mixture
density, and CEM-LST / SMCP on analytic problems."""
import math

import pytest
import torch

from mbrl_ray.config import ConfigError, apply_overrides, load_preset, validate
from mbrl_ray.planners import CEMLSTPlanner, CEMPlanner, SMCPlanner, make_planner
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


def test_cem_lst_finds_the_quadratic_optimum():
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


def _noisy_first_step(sigma, c=0.3, particles=4, seed=0):
    """A stochastic 1-D model: each of `particles` particles lands at s' = a_0 + N(0, sigma^2);
    the value is -(s' - c)^2 averaged over particles; the density is that Gaussian."""
    g = _gen(1000 + seed)

    def objective(actions):
        first = actions[:, :, 0, :]
        landed = first[:, :, None, :] + sigma * torch.randn(*first.shape[:2], particles, 1,
                                                            generator=g)
        return -((landed - c) ** 2).mean((-1, -2)), landed

    def density(actions, next_states):
        return -0.5 * ((next_states[:, None, :, 0] - actions[:, :, None, 0]) / sigma) ** 2
    return objective, density


def _executed(sigma, seeds=range(20)):
    """Executed first actions of CEM-LST and CEM-MPC on the same problems and seeds."""
    lst, mpc = [], []
    for seed in seeds:
        objective, density = _noisy_first_step(sigma, seed=seed)
        planner = CEMLSTPlanner(1, 1, 200, 20, 5)
        lst.append(planner.plan(objective, planner.initial_state(1), _gen(seed), None,
                                density)[0][0, 0, 0])
        objective, _ = _noisy_first_step(sigma, seed=seed)
        planner = CEMPlanner(1, 1, 200, 20, 5)
        mpc.append(planner.plan(lambda a: objective(a)[0], planner.initial_state(1),
                                _gen(seed))[0][0, 0, 0])
    return torch.stack(lst), torch.stack(mpc)


def test_cem_lst_acts_with_a_posterior_sample_where_cem_acts_on_the_elite_mean():
    """Under a stochastic model (sigma 0.3) the elites' next states say little about which
    action led there: LST's executed actions spread as its posterior does (measured ~0.18 over
    seeds), CEM-MPC's elite mean hardly moves (~0.03)."""
    lst, mpc = _executed(0.3)
    assert float(lst.std()) > 0.1 and float(mpc.std()) < 0.05, (lst.std(), mpc.std())


def test_cem_lst_agrees_with_cem_as_the_density_sharpens():
    lst, mpc = _executed(0.005)
    assert float((lst - mpc).abs().mean()) < 0.02
    assert float(lst.std()) < 0.02


def test_lst_weights_tend_to_uniform_as_the_density_broadens():
    """Effective sample size of Eq. 4's weights over 500 candidates rises with the density's
    width and reaches the candidate count."""
    candidates = torch.randn(1, 500, 1, generator=_gen(), dtype=torch.float64)
    states = 0.5 + 0.1 * torch.randn(1, 50, 1, generator=_gen(1), dtype=torch.float64)
    ess = []
    for width in (0.01, 0.1, 1.0, 10.0, 100.0):
        log_density = -0.5 * ((states[:, None, :, 0] - candidates[:, :, None, 0]) / width) ** 2
        w = lst_log_weights(log_density).exp()
        ess.append(float(1 / (w ** 2).sum()) / 500)
    assert all(a < b for a, b in zip(ess, ess[1:])), ess
    assert ess[0] < 0.2 and ess[-1] > 0.99, ess


def _gaussian_proposal_at(mean, std, seed=1):
    g = _gen(seed)

    def proposal(states):
        noise = torch.randn(states.shape[0], 1, generator=g)
        log_pi = -0.5 * noise[:, 0] ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
        return mean + std * noise, log_pi, torch.zeros(states.shape[0])
    return proposal


def _quadratic_step(c, s):
    def step(states, actions):
        return states + actions, -((actions[:, 0] - c) ** 2) / (2 * s * s), \
            torch.zeros(len(states))
    return step


def test_smcp_sweep_from_a_gaussian_pays_its_log_density_at_step_zero():
    """Later sweeps draw first actions from N(0.3, 0.2^2) instead of the proposal: with its
    -log q in the weight the survivors still follow exp(r / alpha) = N(0.5, 0.1^2); without it
    they would follow q exp(r / alpha) (mean 0.46, std 0.089)."""
    planner = SMCPlanner(1, 1, 50_000)
    first = (torch.tensor([[0.3]]), torch.tensor([[0.2]]))
    candidates, lineage, _ = planner.sweep(_quadratic_step(0.5, 0.1), _gaussian_proposal(),
                                           torch.zeros(1, 1), 1.0, _gen(), first)
    survivors = candidates[0, lineage[0], 0]
    assert abs(float(survivors.mean()) - 0.5) < 0.01
    assert abs(float(survivors.std()) - 0.1) < 0.005


def test_smcp_lst_sweeps_carry_the_action_to_an_optimum_the_proposal_misses():
    """The proposal N(-0.5, 0.25^2) puts almost no particle near the optimum 0.6: one sweep
    acts ~0.38 away from it (measured), eight sweeps (each refitting p^k) ~0.03."""
    def density(actions, next_states):
        return -0.5 * ((next_states[:, None, :, 0] - actions[:, :, None, 0]) / 0.05) ** 2

    def error(sweeps):
        errors = []
        for seed in range(10):
            planner = SMCPlanner(1, 1, 500, sweeps=sweeps)
            action, _ = planner.plan(_quadratic_step(0.6, 0.05),
                                     _gaussian_proposal_at(-0.5, 0.25, seed),
                                     torch.zeros(1, 1), planner.initial_state(1),
                                     generator=_gen(seed), density=density)
            errors.append(abs(float(action) - 0.6))
        return sum(errors) / len(errors)

    one, eight = error(1), error(8)
    assert one > 0.25 and eight < 0.1, (one, eight)


def test_first_states_line_up_with_their_candidates_across_particles():
    """CEM-LST reads each candidate's simulated first next states from expected_returns: with
    several particles on several members, every particle's state is one member's prediction
    for its own candidate's first action (a near-deterministic ensemble), never another's."""
    from mbrl_ray.world_models.propagation import expected_returns

    torch.manual_seed(0)
    model = ProbabilisticEnsemble(3, 2, members=3, hidden=16, layers=2, termination=False)
    with torch.no_grad():
        model.min_logvar.fill_(-30.0)
        model.max_logvar.fill_(-29.0)
        model.out_norm.std.fill_(50.0)  # predictions far apart for different actions
    obs, actions = torch.randn(2, 3), torch.rand(2, 6, 2, 2) * 2 - 1
    for propagation in ("ts_inf", "ts1"):
        _, first = expected_returns(PlanningEnsemble(model), obs, actions, particles=4,
                                    propagation=propagation, generator=_gen(),
                                    first_states=True)
        rows = torch.cat([obs.repeat_interleave(6, 0), actions[:, :, 0].reshape(12, 2)], 1)
        with torch.no_grad():
            mean, _ = model(rows[None, :, :3].expand(3, -1, -1), rows[None, :, 3:].expand(3, -1, -1))
        predicted = (obs.repeat_interleave(6, 0) + model.out_norm.inverse(mean)[..., :3])
        predicted = predicted.view(3, 2, 6, 3)  # (member, B, candidate, obs)
        # distance of particle (b, i, p) to member e's prediction for candidate i'
        dist = (first[None, :, :, None, :, :] - predicted[:, :, None, :, None, :]).norm(dim=-1)
        own = dist.diagonal(dim1=2, dim2=3)  # (E, B, P, N): candidate i' = i
        assert float(own.amin(0).max()) < 1e-3, propagation
        other = dist + torch.eye(6)[None, None, :, :, None] * 1e9
        assert float(other.amin((0, 3)).min()) > 0.1, propagation


def test_cem_lst_draws_its_first_candidates_from_the_action_prior():
    """Algorithm 1 line 2, p^0 = pi: with prior sequences whose first actions sit at 0.8, the
    first iteration's candidates centre there instead of at the warm start (0)."""
    seen = []

    def objective(actions):
        seen.append(actions[:, :200, 0, 0].clone())
        return -actions[..., 0].pow(2).sum(-1), actions[:, :, 0:1, :]

    def density(actions, next_states):
        return -0.5 * ((next_states[:, None, :, 0] - actions[:, :, None, 0]) / 0.1) ** 2

    prior = 0.8 + 0.05 * torch.randn(1, 16, 2, 1, generator=_gen(3))
    planner = CEMLSTPlanner(1, 2, 200, 20, 1)
    planner.plan(objective, planner.initial_state(1), _gen(), prior, density)
    assert abs(float(seen[0].mean() - prior[0, :, 0].mean())) < 0.02
    seen.clear()
    planner.plan(objective, planner.initial_state(1), _gen(), None, density)
    assert abs(float(seen[0].mean())) < 0.1
