"""Every planner as an optimiser over analytic objectives of action sequences (B, N, H, A)."""
import pytest
import torch

from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.planners import (CEMPlanner, ICEMPlanner, MPPIPlanner, RandomShootingPlanner,
                               colored_noise, make_planner)

pytestmark = pytest.mark.unit


def _planner(name, act_dim, horizon, population=200, elites=20, iterations=8):
    if name == "cem":
        return CEMPlanner(act_dim, horizon, population, elites, iterations, execute="best")
    if name == "icem":
        return ICEMPlanner(act_dim, horizon, population, elites, iterations)
    if name == "mppi":
        return MPPIPlanner(act_dim, horizon, population, elites, iterations)
    return RandomShootingPlanner(act_dim, horizon, population * iterations // 4, 4)


def _plan(planner, objective, batch, seed=0, prior=None):
    return planner.plan(objective, planner.initial_state(batch),
                        torch.Generator().manual_seed(seed), prior)


ITERATIVE = ["cem", "icem", "mppi"]
ALL = ITERATIVE + ["rs"]


@pytest.mark.parametrize("name", ALL)
def test_finds_the_quadratic_optimum_for_a_batch_of_problems(name):
    target = torch.tensor([[0.3, -0.5], [-0.7, 0.2]])  # one optimum per problem
    # rs: no refinement; mppi acts on a sampled elite, spread by its std floor (min_std 0.05)
    horizon, tolerance = {"rs": (1, 0.1), "mppi": (4, 0.1)}.get(name, (4, 0.05))

    def objective(a):  # a (B, N, H, A)
        return -((a - target[:, None, None, :]) ** 2).sum((-1, -2))

    sequence, _ = _plan(_planner(name, 2, horizon), objective, 2)
    assert sequence.shape == (2, horizon, 2)
    torch.testing.assert_close(sequence, target[:, None, :].expand(2, horizon, 2),
                               atol=tolerance, rtol=0)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("seed", range(3))
def test_two_modes_end_on_a_mode_not_their_mean(name, seed):
    """Two optima at +-0.6 per step; their mean (0) scores -0.36 per step. (CEM acting on its
    elite mean stays between the modes with some seeds: hence execute='best'.)"""
    def objective(a):
        return -torch.minimum((a - 0.6) ** 2, (a + 0.6) ** 2).sum((-1, -2))

    sequence, _ = _plan(_planner(name, 1, 2), objective, 1, seed)
    assert objective(sequence[:, None]).item() > -0.02
    assert (sequence.abs() > 0.45).all()


@pytest.mark.parametrize("name", ALL)
def test_respects_action_bounds(name):
    sequence, _ = _plan(_planner(name, 1, 3, 100, 10, 6), lambda a: a.sum((-1, -2)), 1)
    assert (sequence <= 1.0).all() and (sequence > 0.8).all()


@pytest.mark.parametrize("name", ALL)
def test_next_state_is_the_plan_shifted_one_step(name):
    planner = _planner(name, 2, 5)
    sequence, state = _plan(planner, lambda a: -(a - 0.5).pow(2).sum((-1, -2)), 3)
    warm = state[:, 0] if name == "icem" else state  # icem: row 0 the mean, then kept elites
    assert warm.shape == (3, 5, 2) and (warm[:, -1] == 0).all()
    if name == "rs":  # it acts on what it carries over; the others carry their mean
        torch.testing.assert_close(warm[:, :-1], sequence[:, 1:])


@pytest.mark.parametrize("name", ALL)
def test_prior_sequences_compete_with_the_samples(name):
    """A prior policy's sequence at the optimum of a sharp objective wins at once."""
    target = torch.tensor([0.9, -0.9, 0.9])[None, :, None]

    def objective(a):
        return -200 * ((a - target[:, None]) ** 2).sum((-1, -2))

    planner = _planner(name, 1, 3, population=8, elites=2, iterations=1)
    sequence, _ = _plan(planner, objective, 1, prior=target[:, None])
    torch.testing.assert_close(sequence, target, atol=0.05 if name != "mppi" else 0.3, rtol=0)
    without, _ = _plan(planner, objective, 1)
    assert objective(sequence[:, None]) > objective(without[:, None])


def test_icem_executes_the_best_sequence_seen_and_decays_its_population():
    planner = ICEMPlanner(1, 4, 100, 10, 4, population_decay=2.0)
    assert [planner.population_at(i) for i in range(4)] == [100, 50, 25, 20]  # >= 2 x elites

    def objective(a):
        return -((a - 0.4) ** 2).sum((-1, -2))

    sequence, state = _plan(planner, objective, 1)
    assert state.shape == (1, 1 + 3, 4, 1)  # mean + 30% of 10 elites
    assert objective(sequence[:, None]) >= objective(planner.initial_state(1)[:, :1])


@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_colored_noise_has_unit_std_and_its_spectrum(beta):
    x = colored_noise((20000, 16, 2), beta, generator=torch.Generator().manual_seed(0))
    lag1 = float((x[:, 1:] * x[:, :-1]).mean())
    assert abs(float(x.std()) - 1) < 0.02
    assert abs(lag1) < 0.02 if beta == 0 else lag1 > 0.5  # white vs smooth in time


@pytest.mark.parametrize("name", ALL)
def test_each_planner_is_selected_by_config(name):
    cfg = apply_overrides(load_preset("debug"), [f"planner.name={name}"])
    planner = make_planner(cfg.planner, 2)
    assert type(planner).__name__.lower().startswith({"rs": "random"}.get(name, name))


def test_gaussian_log_density_is_the_discounted_sum_of_normal_log_densities():
    from mbrl_ray.planners.base import gaussian_log_density

    samples = torch.randn(2, 5, 3, 2)
    mean, std = torch.randn(2, 3, 2), torch.rand(2, 3, 2) + 0.1
    per_step = torch.distributions.Normal(mean[:, None], std[:, None]).log_prob(samples).sum(-1)
    expected = (per_step * torch.tensor([1.0, 0.9, 0.81])).sum(-1)
    torch.testing.assert_close(gaussian_log_density(samples, mean, std, 0.9), expected)


@pytest.mark.parametrize("name", ITERATIVE)
def test_action_prior_weight_charges_each_sample_its_log_density_under_q(name):
    """Seed 001's -log q: a sample's score is the objective less prior_weight x its log density
    under the sampling Gaussian; without the weight, the objective alone."""
    from mbrl_ray.planners.base import gaussian_log_density

    def objective(a):
        return a.sum((-1, -2))

    planner = _planner(name, 1, 2, population=400, elites=20, iterations=1)
    samples = torch.randn(1, 7, 2, 1)
    mean, std = torch.zeros(1, 2, 1), torch.full((1, 2, 1), 0.5)
    planner.set_action_prior(2.0, False, 0.9)
    torch.testing.assert_close(planner.score(objective, samples, mean, std),
                               objective(samples) - 2.0 * gaussian_log_density(samples, mean, std,
                                                                               0.9))
    planner.set_action_prior(0.0, False, 1.0)
    torch.testing.assert_close(planner.score(objective, samples, mean, std), objective(samples))


@pytest.mark.parametrize("name", ITERATIVE)
def test_prior_init_starts_from_the_prior_sequences(name):
    seen = []

    def objective(a):
        seen.append(a[:, :50].clone())
        return torch.zeros(a.shape[:2])

    prior = torch.tensor([0.6, -0.4, 0.2])[None, None, :, None] \
        + 0.05 * torch.randn(1, 16, 3, 1, generator=torch.Generator().manual_seed(1))
    planner = _planner(name, 1, 3, population=400, elites=20, iterations=1)
    planner.set_action_prior(0.0, True, 1.0)
    _plan(planner, objective, 1, prior=prior)
    first = seen[0][:, :, :, 0].mean(1)[0]
    torch.testing.assert_close(first, prior[0, :, :, 0].mean(0), atol=0.05, rtol=0)
    seen.clear()
    planner.set_action_prior(0.0, False, 1.0)
    _plan(planner, objective, 1, prior=prior)
    assert seen[0].mean().abs() < 0.2
