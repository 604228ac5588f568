"""MBPO's branched rollouts and its real/model batch mix (Janner et al. 2019, Algorithm 2),
checked row by row on a model whose every prediction is known: a constant state change and
reward per member, and a termination probability set by the test."""
import numpy as np
import pytest
import torch

from mbrl_ray.agents import make_actor, make_learner
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs import EnvSpec
from mbrl_ray.replay import empty_transitions
from mbrl_ray.world_models import ProbabilisticEnsemble
from mbrl_ray.world_models.planning_ensemble import PlanningEnsemble

pytestmark = pytest.mark.unit

SPEC = EnvSpec.state(2, 2)
DELTAS = [[0.1, 0.0], [0.0, -0.2], [0.3, 0.3]]  # member e moves the state by DELTAS[e]
REWARDS = [1.0, 2.0, 4.0]


def _agent(*overrides: str):
    cfg = apply_overrides(load_preset("debug"), [
        "agent.name=mbpo", "sac.hidden_size=16", "sac.batch_size=40", "mbpo.rollouts_per_step=5",
        "mbpo.retain_steps=10", "mbpo.rollout_length_start=4", "mbpo.rollout_length_end=4",
        *overrides])
    return make_learner(SPEC, cfg, seed=0)


def _known_model(termination_logit: float) -> PlanningEnsemble:
    model = ProbabilisticEnsemble(2, 2, members=3, hidden=4, layers=1, termination=True)
    with torch.no_grad():
        model.min_logvar.fill_(-30.0)
        model.max_logvar.fill_(-29.0)
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.bias[:, 0, :3] = torch.tensor([d + [r] for d, r in zip(DELTAS, REWARDS)])
        model.term[-1].weight.zero_()
        model.term[-1].bias.fill_(termination_logit)
    return PlanningEnsemble(model)


def _real(n: int = 30) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    data = empty_transitions(2, 2, n)
    data["obs"][:] = rng.uniform(-1, 1, (n, 2))
    data["next_obs"][:] = data["obs"] + 0.05
    data["reward"][:] = np.arange(n) / n  # in [0, 1): tells real rows from model rows
    return data


def _rollout_rows(agent) -> dict[str, np.ndarray]:
    size = agent.model_data.size
    return {k: v[:size] for k, v in agent.model_data.data.items()}


@pytest.mark.parametrize("logit, steps", [(-30.0, 4), (30.0, 1)])
def test_branches_start_on_real_states_follow_the_policy_and_stop_at_terminations(logit, steps):
    """count rollouts of length 4: step t's rows continue step t-1's surviving rows (obs = their
    next_obs); each row is one member's prediction (s' - s, r) = (DELTAS[e], REWARDS[e]); a
    rollout that terminates is not continued (termination certain: one step each)."""
    agent, real, count = _agent(), _real(), 12
    agent._branch(real, _known_model(logit), count, 4)
    rows = _rollout_rows(agent)
    assert agent.model_data.size == count * steps
    real_obs = {tuple(o) for o in real["obs"]}
    assert all(tuple(o) in real_obs for o in rows["obs"][:count]), "branch from real states"
    assert len({tuple(o) for o in rows["obs"][:count]}) >= 6, "drawn from all of them"
    for t in range(1, steps):
        prev, cur = slice((t - 1) * count, t * count), slice(t * count, (t + 1) * count)
        np.testing.assert_allclose(rows["obs"][cur], rows["next_obs"][prev], atol=1e-6)
    for obs, nxt, r in zip(rows["obs"], rows["next_obs"], rows["reward"]):
        member = REWARDS.index(min(REWARDS, key=lambda x: abs(x - r)))
        np.testing.assert_allclose(nxt - obs, DELTAS[member], atol=1e-4)
    assert rows["terminated"].all() == (logit > 0) and rows["terminated"].any() == (logit > 0)
    assert len({round(float(r)) for r in rows["reward"]}) == 3, "rows spread over members"


def test_half_terminating_rollouts_continue_only_the_survivors():
    """P(terminated) = 1/2: step t+1 holds exactly the rows of step t that did not terminate,
    in order."""
    agent, real = _agent("mbpo.retain_steps=100"), _real()  # room for 5 x 100 x 4 rows
    agent._branch(real, _known_model(0.0), 400, 4)
    rows = _rollout_rows(agent)
    start, width = 0, 400
    while start + width < agent.model_data.size:
        step = slice(start, start + width)
        alive = ~rows["terminated"][step]
        assert 0.35 < alive.mean() < 0.65 or width < 100
        nxt = slice(start + width, start + width + int(alive.sum()))
        np.testing.assert_allclose(rows["obs"][nxt], rows["next_obs"][step][alive], atol=1e-6)
        start, width = start + width, int(alive.sum())
    assert start + width == agent.model_data.size


@pytest.mark.parametrize("ratio", [0.25, 0.6])
def test_a_batch_holds_the_real_ratio_of_real_rows_and_the_rest_from_rollouts(ratio):
    """round(real_ratio x batch) rows drawn from the real data, the rest from model rollouts;
    before any rollout, the whole batch is real."""
    agent, real = _agent(f"mbpo.real_ratio={ratio}"), _real()
    assert (agent._mixed_batch(real)["reward"] < 1).all()
    synthetic = empty_transitions(2, 2, 50)
    synthetic["reward"][:] = 100 + np.arange(50)
    agent.model_data.add(synthetic)
    for _ in range(5):
        batch = agent._mixed_batch(real)
        from_real = batch["reward"] < 1
        assert len(from_real) == 40 and from_real.sum() == round(ratio * 40)
        real_rows = {tuple(np.r_[o, r]) for o, r in zip(real["obs"], real["reward"])}
        assert all(tuple(np.r_[o, r]) in real_rows
                   for o, r in zip(batch["obs"][from_real], batch["reward"][from_real]))


def test_real_rows_are_drawn_uniformly_by_the_agents_generator():
    """The real part of a batch: rows rng.integers(0, n, real) of the real data (any row, the
    first included), from the agent's own generator."""
    import copy

    agent, real = _agent(), _real()
    first_rows = copy.deepcopy(agent.rng).integers(0, len(real["obs"]), 40)
    batch = agent._mixed_batch(real)
    np.testing.assert_array_equal(batch["obs"], real["obs"][first_rows])
    small = {k: v[:2] for k, v in real.items()}  # row 0 is drawn about 20 times in 40
    rows = copy.deepcopy(agent.rng).integers(0, 2, 40)
    np.testing.assert_array_equal(agent._mixed_batch(small)["obs"], small["obs"][rows])


def test_the_seed_decides_the_model_and_the_rollout_generator():
    """Two MBPO learners of one seed: the same ensemble and the same draws; another seed: other
    ensemble weights and other draws."""
    cfg = apply_overrides(load_preset("debug"), ["agent.name=mbpo", "sac.hidden_size=16"])
    a, b, c = (make_learner(SPEC, cfg, seed=s) for s in (1, 1, 2))
    weights = [torch.cat([p.flatten() for p in x.model.parameters()]) for x in (a, b, c)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])
    draws = [x.rng.integers(0, 1000, 8).tolist() for x in (a, b, c)]
    assert draws[0] == draws[1] != draws[2]


def test_a_learners_checkpoint_holds_the_model_and_a_workers_does_not():
    cfg = apply_overrides(load_preset("debug"), ["agent.name=mbpo", "sac.hidden_size=16"])
    learner = make_learner(SPEC, cfg, seed=0)
    worker = make_actor(SPEC, cfg, seed=0)
    assert {"model", "optimizer"} <= learner.state_dict().keys()
    assert not any(hasattr(worker, k) for k in ("model", "optimizer", "state_dict"))
    fresh = make_learner(SPEC, cfg, seed=1)
    fresh.load_state_dict(learner.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(fresh.model.parameters(),
                                                 learner.model.parameters()))
