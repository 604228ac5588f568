import pytest
import torch

from mbrl_ray.planners import CEMPlanner

pytestmark = pytest.mark.unit


def test_finds_quadratic_optimum_for_a_batch_of_problems():
    target = torch.tensor([[0.3, -0.5], [-0.7, 0.2]])  # one optimum per problem

    def objective(a):  # a (B, N, H, A)
        return -((a - target[:, None, None, :]) ** 2).sum((-1, -2))

    planner = CEMPlanner(act_dim=2, horizon=4, population=200, num_elites=20, iterations=8,
                         alpha=0.1, init_std=0.5)
    mean = planner.plan(objective, planner.initial_mean(2),
                        torch.Generator().manual_seed(0))
    assert mean.shape == (2, 4, 2)
    torch.testing.assert_close(mean, target[:, None, :].expand(2, 4, 2), atol=0.05, rtol=0)


def test_respects_action_bounds():
    planner = CEMPlanner(act_dim=1, horizon=3, population=100, num_elites=10, iterations=6)
    mean = planner.plan(lambda a: a.sum((-1, -2)), planner.initial_mean(1),
                        torch.Generator().manual_seed(0))
    assert (mean <= 1.0).all() and (mean > 0.9).all()


def test_shift_warm_starts_next_step():
    mean = torch.arange(6.0).view(1, 3, 2)
    shifted = CEMPlanner.shift(mean)
    torch.testing.assert_close(shifted, torch.tensor([[[2.0, 3.0], [4.0, 5.0], [0.0, 0.0]]]))
