"""What the planners promise besides their update rules (found by mutation testing, issue 39):
every config value reaches the planner make_planner builds, the classes' defaults are the
config's, a seeded generator makes a plan reproducible (no draw from the global RNG), actions
stay in [-1, 1] whatever the prior says, and SMCP's bookkeeping (survivor picks, sweeps,
resampling at the edges, distinct survivors, the weights it reports) holds on small cases."""
import math

import pytest
import torch

from mbrl_ray.config import Config, apply_overrides, load_preset
from mbrl_ray.config.schema import PlannerConfig
from mbrl_ray.planners import (CEMLSTPlanner, CEMPlanner, ICEMPlanner, MPPIPlanner,
                               RandomShootingPlanner, SMCPlanner, colored_noise, make_planner)
from mbrl_ray.planners.base import prior_moments
from mbrl_ray.planners.lst import weighted_moments
from mbrl_ray.planners.smcp import distinct_survivors, systematic_resample

pytestmark = pytest.mark.unit

# A value other than the default for every planner key (the defaults would hide a dropped one).
KEYS = {"horizon": 7, "population": 33, "num_elites": 6, "iterations": 4, "alpha": 0.35,
        "init_std": 0.45, "execute": "best", "noise_beta": 1.5, "population_decay": 1.6,
        "keep_elites": 0.5, "temperature": 2.5, "min_std": 0.07, "max_std": 1.7,
        "discount": 0.93, "sweeps": 3, "resampling": "multinomial", "prior_weight": 0.4,
        "prior_init": True}
ATTRIBUTE = {"num_elites": "num_elites", "noise_beta": "beta", "population_decay": "decay",
             "population": "population", "resampling": "resample", "prior_weight":
             "prior_weight", "prior_init": "prior_init"}
USED = {"cem": ["horizon", "population", "num_elites", "iterations", "alpha", "init_std",
                "execute", "discount", "prior_weight", "prior_init"],
        "icem": ["horizon", "population", "num_elites", "iterations", "alpha", "init_std",
                 "noise_beta", "population_decay", "keep_elites", "discount", "prior_weight",
                 "prior_init"],
        "mppi": ["horizon", "population", "num_elites", "iterations", "temperature",
                 "min_std", "max_std", "discount", "prior_weight", "prior_init"],
        "rs": ["horizon", "population", "iterations"],
        "smcp": ["horizon", "population", "discount", "sweeps", "min_std", "resampling"]}


def _config(name: str, posterior: str = "mpc") -> Config:
    values = {k: v for k, v in KEYS.items() if k in USED[name]}
    if name == "smcp":
        values.pop("prior_weight", None)
    return apply_overrides(load_preset("debug"), [f"planner.name={name}",
                                                  f"planner.posterior={posterior}"]
                           + [f"planner.{k}={str(v).lower() if isinstance(v, bool) else v}"
                              for k, v in values.items()])


@pytest.mark.parametrize("name", list(USED))
def test_make_planner_passes_every_key_of_its_planner(name):
    planner = make_planner(_config(name).planner, act_dim=3)
    assert planner.act_dim == 3
    for key in USED[name]:
        if key == "keep_elites":
            continue
        attribute = "particles" if (name, key) == ("smcp", "population") else ATTRIBUTE.get(key,
                                                                                           key)
        got = getattr(planner, attribute)
        if key == "resampling":
            assert got.__name__ == "multinomial_resample"
        elif key == "iterations" and name == "rs":
            assert got == KEYS[key]
        else:
            assert got == KEYS[key], (name, key, got)
    if name == "icem":
        assert planner.keep == round(0.5 * 6) == 3


def test_make_planner_builds_cem_lst_for_the_lst_posterior_only():
    assert type(make_planner(_config("cem").planner, 2)) is CEMPlanner
    assert type(make_planner(_config("cem", "lst").planner, 2)) is CEMLSTPlanner
    with pytest.raises(ValueError, match="planner.name='nope': no such planner"):
        make_planner(PlannerConfig(name="nope"), 2)


def test_the_classes_defaults_are_the_configs():
    """A planner built in code (a test, a bench) plans as a config that sets nothing."""
    d = PlannerConfig()
    cem, icem = CEMPlanner(1, 2, 8, 2, 1), ICEMPlanner(1, 2, 8, 2, 1)
    mppi, smcp = MPPIPlanner(1, 2, 8, 2, 1), SMCPlanner(1, 2, 8)
    assert (cem.alpha, cem.init_std, cem.execute) == (d.alpha, d.init_std, d.execute)
    assert (icem.alpha, icem.init_std, icem.beta, icem.decay) == (
        d.alpha, d.init_std, d.noise_beta, d.population_decay)
    assert icem.keep == round(d.keep_elites * 2)
    assert (mppi.temperature, mppi.min_std, mppi.max_std) == (d.temperature, d.min_std,
                                                              d.max_std)
    assert (smcp.discount, smcp.sweeps, smcp.min_std) == (d.discount, d.sweeps, d.min_std)
    assert smcp.resample.__name__ == f"{d.resampling}_resample"
    assert RandomShootingPlanner(1, 2, 8).iterations == 1
    assert CEMPlanner(1, 2, 8, 2, 1).discount == d.discount


def test_icem_state_holds_the_mean_and_the_kept_elites_and_keeps_none_when_asked():
    assert ICEMPlanner(2, 5, 40, 10, 2, keep_elites=0.0).initial_state(3).shape == (3, 1, 5, 2)
    assert ICEMPlanner(2, 5, 40, 10, 2, keep_elites=0.3).initial_state(3).shape == (3, 4, 5, 2)


def _objective(a):
    return -((a - 0.3) ** 2).sum((-1, -2))


@pytest.mark.parametrize("name", ["cem", "icem", "mppi", "rs"])
def test_a_seeded_generator_makes_the_plan_reproducible(name):
    """Two plans with generators of the same seed agree, whatever the global RNG did between."""
    planner = make_planner(_config(name).planner, 2)
    planner.set_action_prior(0.0, False, 1.0) if hasattr(planner, "set_action_prior") else None
    plans = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        plans.append(planner.plan(_objective, planner.initial_state(2),
                                  torch.Generator().manual_seed(0))[0])
    torch.testing.assert_close(plans[0], plans[1], rtol=0, atol=0)


def test_colored_noise_of_one_step_is_white_and_reproducible():
    a = colored_noise((4000, 1, 2), 2.0, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(9)
    b = colored_noise((4000, 1, 2), 2.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and abs(float(a.std()) - 1) < 0.05


def test_prior_sequences_outside_the_bounds_are_clipped_everywhere():
    """A prior policy's sequences enter the samples and the prior's moments clipped to [-1, 1]:
    the moments are those of the clipped draws, std without Bessel's correction (floored)."""
    prior = torch.tensor([[1.8, -0.2], [-1.5, 0.4], [0.6, 0.4]])[None, :, :, None]  # (1, 3, 2, 1)
    mean, std = prior_moments(prior)
    clipped = [[1.0, -0.2], [-1.0, 0.4], [0.6, 0.4]]
    for t in range(2):
        col = [c[t] for c in clipped]
        mu = sum(col) / 3
        sd = max(math.sqrt(sum((x - mu) ** 2 for x in col) / 3), 0.05)
        assert math.isclose(float(mean[0, t, 0]), mu, abs_tol=1e-6)
        assert math.isclose(float(std[0, t, 0]), sd, abs_tol=1e-6)
    seen = []

    def objective(a):
        seen.append(a.clone())
        return torch.zeros(a.shape[:2])

    for planner in (CEMPlanner(1, 2, 8, 2, 1), MPPIPlanner(1, 2, 8, 2, 1),
                    ICEMPlanner(1, 2, 8, 2, 1), RandomShootingPlanner(1, 2, 8)):
        planner.plan(objective, planner.initial_state(1), torch.Generator().manual_seed(0),
                     prior)
        assert seen[-1].abs().max() <= 1.0, type(planner).__name__


def test_without_prior_init_the_first_iteration_samples_around_the_warm_start():
    seen = []

    def objective(a):
        seen.append(a.clone())
        return torch.zeros(a.shape[:2])

    planner = CEMPlanner(1, 2, 4000, 20, 1, init_std=0.1)
    planner.set_action_prior(0.0, False, 1.0)
    prior = torch.full((1, 5, 2, 1), 0.8)
    warm = torch.full((1, 2, 1), -0.5)
    planner.plan(objective, warm, torch.Generator().manual_seed(0), prior)
    assert abs(float(seen[0][:, :4000].mean()) + 0.5) < 0.01


def test_weighted_moments_of_several_action_dims():
    """N = 5 candidates of A = 3 dims (N != A): per-dim weighted mean and std."""
    samples = torch.arange(30, dtype=torch.float64).reshape(2, 5, 3) ** 1.3 / 10
    w = torch.tensor([[0.1, 0.2, 0.3, 0.15, 0.25], [0.5, 0.1, 0.1, 0.1, 0.2]],
                     dtype=torch.float64)
    mean, std = weighted_moments(samples, w.log(), min_std=0.0)
    for b in range(2):
        for j in range(3):
            xs = [float(samples[b, i, j]) for i in range(5)]
            mu = sum(float(w[b, i]) * xs[i] for i in range(5))
            var = sum(float(w[b, i]) * (xs[i] - mu) ** 2 for i in range(5))
            assert math.isclose(float(mean[b, j]), mu, rel_tol=1e-9)
            assert math.isclose(float(std[b, j]), math.sqrt(var), rel_tol=1e-9)


def test_systematic_resampling_can_pick_the_last_particle():
    log_w = torch.log(torch.tensor([[1e-9, 1e-9, 1.0], [0.5, 0.5, 1e-9]]))
    idx = systematic_resample(log_w, torch.Generator().manual_seed(0))
    assert idx[0].tolist() == [2, 2, 2] and set(idx[1].tolist()) <= {0, 1}


def test_distinct_survivors_count_every_lineage_once():
    """Lineages [0, 0, 3, 1] (particle 2 lost): states of 0, 1, 3 with counts 2, 1, 1, in
    particle order; a row with fewer lineages is padded with count 0 (log -inf)."""
    first = torch.arange(8, dtype=torch.float32).reshape(2, 4, 1)
    lineage = torch.tensor([[0, 0, 3, 1], [2, 2, 2, 2]])
    states, log_counts = distinct_survivors(first, lineage)
    assert states[0, :, 0].tolist() == [0.0, 1.0, 3.0]
    assert log_counts[0].exp().tolist() == pytest.approx([2.0, 1.0, 1.0])
    assert states[1, 0, 0] == 6.0 and log_counts[1].exp().tolist() == pytest.approx([4, 0, 0])


class _Counting:
    """A 1-D model and proposal: s' = s + a, reward -|s'|; counts proposal calls."""

    def __init__(self):
        self.calls = 0

    def step(self, s, a):
        return s + a, -(s + a).abs().sum(-1), torch.zeros(len(s))

    def proposal(self, s):
        self.calls += 1
        g = torch.Generator().manual_seed(self.calls)
        a = (torch.rand(len(s), 1, generator=g) * 2 - 1)
        return a, torch.zeros(len(s)), torch.zeros(len(s))


def test_smcp_picks_any_survivor_and_lst_runs_its_sweeps():
    smcp = SMCPlanner(1, 2, 2, sweeps=1)
    picks = set()
    for seed in range(60):
        model = _Counting()
        cand, lineage, _ = smcp.sweep(model.step, model.proposal, torch.zeros(1, 1), 1.0,
                                      torch.Generator().manual_seed(seed))
        model = _Counting()  # the same proposals again
        action, _ = smcp.plan(model.step, model.proposal, torch.zeros(1, 1),
                              smcp.initial_state(1), 1.0, torch.Generator().manual_seed(seed))
        picks.add(int(torch.isclose(cand[0, :, 0], action[0, 0]).nonzero()[0]))
    assert picks == {0, 1}, "either particle's lineage can be the executed one"

    def density(cands, states):  # log N(s'; a, 0.1^2), 1-D
        return -0.5 * ((states[:, None, :, 0] - cands[:, :, None, 0]) / 0.1) ** 2

    for sweeps in (1, 2, 3):
        model = _Counting()
        planner = SMCPlanner(1, 3, 16, sweeps=sweeps)
        action, _ = planner.plan(model.step, model.proposal, torch.zeros(2, 1),
                                 planner.initial_state(2), 1.0,
                                 torch.Generator().manual_seed(0), density)
        assert model.calls == sweeps * (1 + 3), (sweeps, model.calls)  # start + each step
        assert planner.last_log_weights.shape == (2, 16)
        torch.testing.assert_close(planner.last_log_weights.exp().sum(1), torch.ones(2))
        assert action.abs().max() <= 1.0


def test_smcp_lst_weights_count_each_survivor():
    """SMCPlanner.lst_weights passes the survivors' counts: a lineage holding three survivors
    weighs as three trajectories."""
    candidates = torch.tensor([[[-0.5], [0.5]]])
    first = candidates.clone()  # each candidate's next state is itself
    lineage = torch.tensor([[1, 1, 1, 0]])

    def density(cands, states):
        return -0.5 * ((states[:, None, :, 0] - cands[:, :, None, 0]) / 0.3) ** 2

    w = SMCPlanner.lst_weights(candidates, lineage, first, density).exp()
    d = [[math.exp(-0.5 * ((s - c) / 0.3) ** 2) for s in (-0.5, 0.5)] for c in (-0.5, 0.5)]
    z = [(d[0][j] + d[1][j]) / 2 for j in range(2)]
    raw = [d[i][0] / z[0] * 1 + d[i][1] / z[1] * 3 for i in range(2)]
    assert w[0].tolist() == pytest.approx([r / sum(raw) for r in raw], rel=1e-5)


def test_smcp_lst_first_actions_stay_in_bounds_near_the_edge():
    from mbrl_ray.planners.smcp import _gaussian_first_actions

    mean, std = torch.tensor([[0.95, -0.9]]), torch.tensor([[0.5, 0.5]])
    action, log_q = _gaussian_first_actions(mean, std, 500, torch.Generator().manual_seed(0))
    assert action.shape == (500, 2) and action.abs().max() <= 1.0
    assert (action == 1.0).any() and (action == -1.0).any()
    assert log_q.shape == (500,)
    b, a = 3, 2  # more rows than action dims: the noise has one row per env
    action, _ = _gaussian_first_actions(torch.zeros(b, a), torch.ones(b, a), 4, None)
    assert action.shape == (b * 4, a)


@pytest.mark.parametrize("resampling", ["systematic", "multinomial"])
@pytest.mark.parametrize("lst", [False, True])
def test_a_seeded_generator_makes_smcp_reproducible(resampling, lst):
    def density(cands, states):
        return -0.5 * ((states[:, None, :, 0] - cands[:, :, None, 0]) / 0.3) ** 2

    planner = SMCPlanner(1, 3, 12, resampling=resampling, sweeps=2)
    actions = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        model = _Counting()
        actions.append(planner.plan(model.step, model.proposal, torch.zeros(2, 1),
                                    planner.initial_state(2), 1.0,
                                    torch.Generator().manual_seed(0),
                                    density if lst else None)[0])
    assert torch.equal(actions[0], actions[1])
