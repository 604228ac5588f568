"""Each Gaussian planner's update checked against the paper's formula, recomputed here in float64
loops from the samples the planner showed its objective: horizon 3, two action dims, two
problems, several iterations, a non-separable objective. The noise a planner drew is drawn
again from a generator with the same seed (the planners draw nothing else between iterations)."""
import math

import pytest
import torch

from mbrl_ray.planners import (CEMPlanner, ICEMPlanner, MPPIPlanner, RandomShootingPlanner,
                               colored_noise)
from mbrl_ray.planners.base import shift

pytestmark = pytest.mark.unit

B, H, A = 2, 3, 2
TOL = dict(atol=1e-5, rtol=1e-5)  # float32 planner against a float64 recomputation
TARGET = torch.tensor([[[0.3, -0.5], [0.1, 0.6], [-0.4, 0.2]],
                       [[-0.6, 0.4], [0.5, -0.1], [0.2, 0.7]]])  # (B, H, A)


class Recorder:
    """The objective: a weighted distance to TARGET with a cross term between the two action
    dims (so no dim or step can be optimised alone); remembers every batch of samples."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        self.seen.append(a.clone())
        d = a - TARGET[:, None]
        return -(torch.tensor([1.0, 2.0, 3.0])[:, None] * d ** 2).sum((-1, -2)) \
            + 0.5 * (d[..., 0] * d[..., 1]).sum(-1)


def value_of(seq: list[list[float]], problem: int) -> float:
    """The Recorder's value of one sequence (H lists of A floats), in float64 loops."""
    total = 0.0
    for t in range(H):
        d = [seq[t][j] - float(TARGET[problem, t, j]) for j in range(A)]
        total -= (t + 1) * (d[0] ** 2 + d[1] ** 2)
        total += 0.5 * d[0] * d[1]
    return total


def rows(samples: torch.Tensor, problem: int) -> list[list[list[float]]]:
    return samples[problem].double().tolist()


def elites_of(samples: list, problem: int, k: int) -> list:
    """The k sequences of highest value (plain sort)."""
    return sorted(samples, key=lambda s: value_of(s, problem), reverse=True)[:k]


def mean_std(elites: list, weights: list[float] | None = None, unbiased: bool = True):
    """Per (t, j): the (weighted) mean and std of the elites, as nested lists."""
    n = len(elites)
    w = weights or [1.0 / n] * n
    mean = [[sum(w[i] * elites[i][t][j] for i in range(n)) for j in range(A)] for t in range(H)]
    if weights is None and unbiased:
        var = [[sum((e[t][j] - mean[t][j]) ** 2 for e in elites) / (n - 1) for j in range(A)]
               for t in range(H)]
    else:
        var = [[sum(w[i] * (elites[i][t][j] - mean[t][j]) ** 2 for i in range(n))
                for j in range(A)] for t in range(H)]
    return mean, [[math.sqrt(v) for v in r] for r in var]


def blend(alpha: float, old: list, new: list) -> list:
    return [[alpha * old[t][j] + (1 - alpha) * new[t][j] for j in range(A)] for t in range(H)]


def around(mean: list, std: list, noise: torch.Tensor) -> torch.Tensor:
    """clip(mean + std x noise, -1, 1) for noise (N, H, A), in float64."""
    m, s = torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)
    return (m + s * noise.double()).clamp(-1.0, 1.0)


def test_cem_refits_mean_and_std_to_the_elites_with_momentum():
    """PETS's CEM: each iteration's elites (top K by value) give the next Gaussian,
    mean' = alpha mean + (1 - alpha) mean(elites), std' = alpha std + (1 - alpha) std(elites)
    (the unbiased sample std, as mbrl-lib's var); the executed plan is the last mean and the
    next state that mean shifted by a step."""
    n, k, iters, alpha, init_std, seed = 40, 6, 3, 0.25, 0.5, 7
    planner = CEMPlanner(A, H, n, k, iters, alpha=alpha, init_std=init_std)
    warm = 0.2 * torch.randn(B, H, A, generator=torch.Generator().manual_seed(99))
    objective = Recorder()
    plan, state = planner.plan(objective, warm, torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed)
    noises = [torch.randn(B, n, H, A, generator=gen) for _ in range(iters)]
    for b in range(B):
        mean, std = warm[b].double().tolist(), [[init_std] * A for _ in range(H)]
        for i in range(iters):
            expected = around(mean, std, noises[i][b])
            torch.testing.assert_close(objective.seen[i][b].double(), expected, **TOL)
            e_mean, e_std = mean_std(elites_of(rows(objective.seen[i], b), b, k))
            mean, std = blend(alpha, mean, e_mean), blend(alpha, std, e_std)
        torch.testing.assert_close(plan[b].double(), torch.tensor(mean, dtype=torch.float64),
                                   **TOL)
        torch.testing.assert_close(state[b], shift(plan)[b])
    assert (state[:, -1] == 0).all()


def test_cem_execute_best_acts_with_the_best_elite_of_any_iteration():
    n, k, iters, seed = 30, 5, 3, 3
    planner = CEMPlanner(A, H, n, k, iters, alpha=0.1, init_std=0.6, execute="best")
    objective = Recorder()
    plan, _ = planner.plan(objective, planner.initial_state(B), torch.Generator().manual_seed(seed))
    for b in range(B):
        seen = [s for batch in objective.seen for s in rows(batch, b)]
        best = max(seen, key=lambda s: value_of(s, b))
        torch.testing.assert_close(plan[b].double(), torch.tensor(best, dtype=torch.float64),
                                   **TOL)


def test_mppi_weights_elites_by_exp_temperature_times_value_and_bounds_the_std():
    """TD-MPC2's MPPI: w_i = exp(tau (v_i - max v)) / sum over the K elites; mean' = sum w e;
    std' = clip(sqrt(sum w (e - mean')^2), min_std, max_std); the first iteration samples with
    max_std; the executed sequence is one of the last iteration's elites; the state is the
    last mean shifted. min_std is set where it binds for some (t, j) after the first iteration."""
    n, k, iters, tau, min_std, max_std, seed = 48, 8, 3, 2.0, 0.12, 0.9, 5
    planner = MPPIPlanner(A, H, n, k, iters, temperature=tau, min_std=min_std, max_std=max_std)
    objective = Recorder()
    plan, state = planner.plan(objective, planner.initial_state(B),
                               torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed)
    noises = [torch.randn(B, n, H, A, generator=gen) for _ in range(iters)]
    bound_hit = False
    for b in range(B):
        mean, std = [[0.0] * A for _ in range(H)], [[max_std] * A for _ in range(H)]
        for i in range(iters):
            expected = around(mean, std, noises[i][b])
            torch.testing.assert_close(objective.seen[i][b].double(), expected, **TOL)
            elites = elites_of(rows(objective.seen[i], b), b, k)
            values = [value_of(e, b) for e in elites]
            raw = [math.exp(tau * (v - max(values))) for v in values]
            mean, std = mean_std(elites, [r / sum(raw) for r in raw])
            bound_hit |= any(s < min_std for r in std for s in r)
            std = [[min(max(s, min_std), max_std) for s in r] for r in std]
        assert any(torch.allclose(plan[b].double(), torch.tensor(e, dtype=torch.float64),
                                  atol=1e-6) for e in elites), "an elite of the last iteration"
        torch.testing.assert_close(state[b].double(), torch.tensor(
            mean[1:] + [[0.0] * A], dtype=torch.float64), **TOL)
    assert bound_hit, "the test must exercise min_std"


def test_mppi_draws_the_executed_elite_in_proportion_to_its_weight():
    """One elite far better than the others at a high temperature is drawn nearly always; at
    temperature 0 the weights are uniform and each elite is drawn about equally often."""
    def objective(a):
        v = torch.zeros(a.shape[:2])
        v[:, 0] = 1.0  # the first sample (never changed by sampling: values by position)
        return v

    picks = {0.0: [], 50.0: []}
    for tau in picks:
        planner = MPPIPlanner(1, 2, 4, 4, 1, temperature=tau, max_std=0.3)
        for seed in range(400):
            plan, _ = planner.plan(_Tracking(objective), planner.initial_state(1),
                                   torch.Generator().manual_seed(seed))
            picks[tau].append(_Tracking.index_of(plan[0]))
    assert picks[50.0].count(0) == 400
    counts = [picks[0.0].count(i) for i in range(4)]
    assert min(counts) > 60, counts  # 100 expected each; 60 is 4.9 standard deviations off


class _Tracking:
    """Wraps an objective and remembers the last batch of samples, to find the executed one."""
    last: torch.Tensor

    def __init__(self, objective) -> None:
        self.objective = objective

    def __call__(self, a):
        _Tracking.last = a.clone()
        return self.objective(a)

    @staticmethod
    def index_of(seq: torch.Tensor) -> int:
        return int(((_Tracking.last[0] - seq) ** 2).sum((-1, -2)).argmin())


def test_icem_keeps_elites_into_the_next_iteration_and_adds_the_mean_in_the_last():
    """iCEM (Pinneri et al. 2020): iteration i draws N decay^-i coloured-noise samples around
    the Gaussian, plus the top keep-fraction of the previous iteration's elites (the previous
    step's, shifted, in the first), plus the mean in the last iteration; refit as CEM; the best
    sequence seen is executed; the state is [mean, kept elites], shifted."""
    n, k, iters, alpha, init_std, decay, beta, seed = 40, 10, 3, 0.2, 0.5, 1.5, 2.0, 11
    planner = ICEMPlanner(A, H, n, k, iters, alpha=alpha, init_std=init_std, noise_beta=beta,
                          population_decay=decay, keep_elites=0.3)
    keep = 3
    state0 = 0.3 * torch.randn(B, 1 + keep, H, A, generator=torch.Generator().manual_seed(4))
    objective = Recorder()
    plan, state = planner.plan(objective, state0, torch.Generator().manual_seed(seed))
    sizes = [max(round(n * decay ** -i), 2 * k) for i in range(iters)]
    assert sizes == [40, 27, 20]
    gen = torch.Generator().manual_seed(seed)
    noises = [colored_noise((B, s, H, A), beta, "cpu", gen) for s in sizes]
    for b in range(B):
        mean, std = state0[b, 0].double().tolist(), [[init_std] * A for _ in range(H)]
        kept = rows(state0[:, 1:], b)
        best, seen_all = None, []
        for i in range(iters):
            fresh = around(mean, std, noises[i][b])
            extra = kept + ([mean] if i == iters - 1 else [])
            expected = torch.cat([fresh, torch.tensor(extra, dtype=torch.float64)])
            torch.testing.assert_close(objective.seen[i][b].double(), expected, **TOL)
            seen = rows(objective.seen[i], b)
            seen_all += seen
            elites = elites_of(seen, b, k)
            kept = elites[:keep]
            e_mean, e_std = mean_std(elites)
            mean, std = blend(alpha, mean, e_mean), blend(alpha, std, e_std)
        best = max(seen_all, key=lambda s: value_of(s, b))
        torch.testing.assert_close(plan[b].double(), torch.tensor(best, dtype=torch.float64),
                                   **TOL)
        expected_state = torch.tensor([mean] + kept, dtype=torch.float64)
        torch.testing.assert_close(state[b].double(), shift(expected_state), **TOL)


def test_random_shooting_acts_on_the_best_of_all_samples_and_the_warm_start():
    n, iters, seed = 25, 3, 2
    planner = RandomShootingPlanner(A, H, n, iters)
    warm = TARGET + 0.05  # the warm start is better than any uniform sample is likely to be
    warm[1] = -0.9  # for problem 1 it is poor
    objective = Recorder()
    plan, state = planner.plan(objective, warm.clone(), torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed)
    for i in range(iters):
        expected = torch.rand(B, n, H, A, generator=gen) * 2 - 1
        torch.testing.assert_close(objective.seen[1 + i], expected)
    for b in range(B):
        candidates = rows(warm[:, None], b) + [s for batch in objective.seen[1:]
                                               for s in rows(batch, b)]
        best = max(candidates, key=lambda s: value_of(s, b))
        torch.testing.assert_close(plan[b].double(), torch.tensor(best, dtype=torch.float64),
                                   **TOL)
    torch.testing.assert_close(plan[0], warm[0])
    assert not torch.equal(plan[1], warm[1])
    torch.testing.assert_close(state, shift(plan))


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_colored_noise_power_falls_as_one_over_f_to_the_beta(beta):
    """The averaged periodogram of the noise along time, fitted on a log-log scale over the
    frequencies above DC: slope -beta (within 0.1)."""
    steps = 64
    x = colored_noise((4000, steps, 1), beta, generator=torch.Generator().manual_seed(0))
    power = (torch.fft.rfft(x[..., 0].double(), dim=-1).abs() ** 2).mean(0)
    freqs = torch.fft.rfftfreq(steps, dtype=torch.float64)
    f, p = freqs[1:-1].log(), power[1:-1].log()  # DC and Nyquist are special bins
    slope = float(((f - f.mean()) * (p - p.mean())).sum() / ((f - f.mean()) ** 2).sum())
    assert abs(slope + beta) < 0.1, slope
