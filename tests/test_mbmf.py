"""MBMF's DAgger phase (agents/mbmf.py) against computations written here: which states are
labelled with what (the MPC phase's executed actions, then the expert's plans on the newest
model, never the random steps, kept across rounds), the hand-over to the policy at
mbmf.imitate_from, the policy's mean by hand, and the imitation loss."""
import copy

import numpy as np
import pytest
import torch

from mbrl_ray.agents import make_actor, make_learner
from mbrl_ray.agents.mb_mpc import MBMPCAgent, MBMPCLearner
from mbrl_ray.agents.mbmf import GaussianPolicy, imitate
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs import EnvSpec

pytestmark = pytest.mark.unit

SPEC = EnvSpec.state(3, 1)


def _cfg(*overrides):
    return apply_overrides(load_preset("mbmf-pendulum"), [
        "delta.epochs=2", "planner.population=64", "planner.horizon=4", "train.random_steps=10",
        "mbmf.imitate_from=30", "mbmf.epochs=3", *overrides])


def _data(n: int, seed: int) -> dict[str, np.ndarray]:
    g = np.random.default_rng(seed)
    obs = g.normal(size=(n, 3)).astype(np.float32)
    action = g.uniform(-1, 1, (n, 1)).astype(np.float32)
    return {"obs": obs, "action": action, "next_obs": obs + 0.1 * action,
            "reward": (action[:, 0] - (obs ** 2).sum(1)).astype(np.float32),
            "terminated": np.zeros(n, dtype=bool)}


def _join(*parts):
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def test_labels_are_executed_actions_then_the_experts_plans_never_random_steps():
    agent = make_learner(SPEC, _cfg(), seed=0)
    first = _data(20, 0)  # 10 random steps, then 10 MPC steps
    logs = agent.fit(first, 20)
    assert not agent.imitating and "mbmf_imitation_mse" not in logs
    assert torch.equal(agent.labels["obs"], torch.as_tensor(first["obs"][10:]))
    assert torch.equal(agent.labels["action"], torch.as_tensor(first["action"][10:]))
    second = _join(first, _data(10, 1))  # 10 more MPC steps: imitate_from reached
    logs = agent.fit(second, 30)
    assert agent.imitating and logs["mbmf_policy_acts"] == 1.0 and logs["mbmf_labelled"] == 20
    assert torch.equal(agent.labels["action"], torch.as_tensor(second["action"][10:]))

    third = _join(second, _data(10, 2))  # 10 steps the policy acted: the expert labels them
    twin = copy.deepcopy(agent)
    agent.fit(third, 40)
    MBMPCLearner.fit(twin, third, 40)  # the same model fit, then MB-MPC's own plan at each state
    want, _ = MBMPCAgent.act(twin, third["obs"][30:], twin.initial_state(10), explore=False)
    assert torch.equal(agent.labels["obs"][20:], torch.as_tensor(third["obs"][30:]))
    assert torch.allclose(agent.labels["action"][20:], torch.as_tensor(want))
    assert not torch.allclose(agent.labels["action"][20:], torch.as_tensor(third["action"][30:]))
    assert torch.equal(agent.labels["action"][:20], torch.as_tensor(second["action"][10:]))


def test_the_expert_labels_chunk_by_chunk_in_order_each_from_a_fresh_start():
    agent = make_learner(SPEC, _cfg("mbmf.label_chunk=4"), seed=0)
    agent.fit(_data(40, 0), 40)
    obs = torch.as_tensor(_data(6, 3)["obs"])
    seen = []

    def act(problem, state, generator):  # the policy's first action: here the state's first
        fresh = agent.policy.initial_state(len(problem.obs_rows), agent.device)  # coordinate
        seen.append((len(problem.obs_rows), torch.equal(state["plan"], fresh["plan"])))
        return problem.obs_rows[:, :1], state

    real_problem = agent.problem

    def problem(rows, explore):
        out = real_problem(rows, explore)
        out.obs_rows = rows
        assert not explore
        return out

    agent.policy.act, agent.problem = act, problem
    labels = agent.expert_actions(obs)
    assert seen == [(4, True), (2, True)]
    assert torch.equal(labels, obs[:, :1])


@torch.no_grad()
def _mean_by_hand(policy: GaussianPolicy, obs: torch.Tensor) -> torch.Tensor:
    h = (obs.double() - policy.norm.mean.double()) / policy.norm.std.double()
    linears = [m for m in policy.net if isinstance(m, torch.nn.Linear)]
    for i, m in enumerate(linears):
        h = h @ m.weight.double().T + m.bias.double()
        h = torch.tanh(h)  # tanh hidden units, and tanh on the mean
    return h


def test_workers_act_on_the_policy_mean_once_the_learner_hands_over():
    cfg = _cfg("mbmf.imitate_from=20")
    learner = make_learner(SPEC, cfg, seed=0)
    worker = make_actor(SPEC, cfg, seed=5)
    obs = _data(4, 7)["obs"]
    learner.fit(_data(15, 0), 15)  # MPC phase: the worker plans
    worker.load_inference_weights(learner.inference_weights())
    assert not worker.imitating
    learner.fit(_data(25, 1), 25)
    worker.load_inference_weights(learner.inference_weights())
    assert worker.imitating
    mean, _ = worker.act(obs, worker.initial_state(4), explore=False)
    assert np.allclose(mean, _mean_by_hand(learner.actor, torch.as_tensor(obs)).numpy(),
                       atol=1e-6)
    noisy, _ = worker.act(obs, worker.initial_state(4), explore=True)
    gap = noisy - mean
    assert (np.abs(gap) > 0).all() and np.abs(gap).max() < 0.5  # std 0.1 noise
    worker.load_inference_weights(None)
    assert not worker.imitating


def test_imitation_loss_is_the_mean_squared_error_of_the_mean_and_it_learns():
    torch.manual_seed(0)
    obs = torch.randn(200, 3) * 3 + 2
    target = 0.8 * torch.tanh((obs[:, :1] - obs[:, 1:2]) / 3)
    policy = GaussianPolicy(3, 1, 32, 2)
    frozen = torch.optim.Adam(policy.parameters(), lr=0.0)
    loss = imitate(policy, frozen, obs, target, epochs=1, batch_size=500)
    assert torch.allclose(policy.norm.mean, obs.mean(0)) and torch.allclose(policy.norm.std,
                                                                             obs.std(0))
    want = ((_mean_by_hand(policy, obs) - target.double()) ** 2).mean()
    assert loss == pytest.approx(float(want), rel=1e-5)
    before = float(want)
    after = imitate(policy, torch.optim.Adam(policy.parameters(), lr=3e-3), obs, target,
                    epochs=300, batch_size=64)
    assert after < before / 5
