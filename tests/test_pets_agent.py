import numpy as np
import pytest
import torch

from mbrl_ray.agents import PETSAgent, PETSLearner
from mbrl_ray.config import load_preset
from mbrl_ray.envs import EnvSpec, make_env
from mbrl_ray.replay import empty_transitions

pytestmark = pytest.mark.unit
SPEC = EnvSpec.state(2, 2)  # the point-mass env: 2-D position, 2-D action


class Transitions:
    """The transitions a test made, oldest first, the newest `capacity` of them kept (as a full
    replay keeps them): `all()` is the dict `fit` takes, `env_steps` counts every step made."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.env_steps = capacity, 0
        self.data = empty_transitions(2, 2, 0)

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        self.data = {k: np.concatenate([v, chunk[k]])[-self.capacity:]
                     for k, v in self.data.items()}
        self.env_steps += len(chunk["reward"])

    @property
    def size(self) -> int:
        return len(self.data["reward"])

    def all(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.data.items()}


def _episodes(env, agent, steps, buf):
    chunk = empty_transitions(2, 2, steps)
    obs, _ = env.reset()
    state = agent.initial_state(1)
    returns, total = [], 0.0
    for t in range(steps):
        action, state = agent.act(obs[None], state)
        nxt, reward, term, trunc, _ = env.step(action[0])
        for key, value in (("obs", obs), ("action", action[0]), ("reward", reward),
                           ("next_obs", nxt), ("terminated", term)):
            chunk[key][t] = value
        total += reward
        obs = nxt
        if term or trunc:
            returns.append(total)
            total = 0.0
            obs, _ = env.reset()
            state = agent.reset_state(state, np.array([True]))
    buf.add(chunk)
    return returns


def test_pets_learns_dummy_env_in_process():
    """Random first trial, then fit/plan rounds: planning must beat random play clearly."""
    cfg = load_preset("debug")
    env = make_env("dummy", seed=0)
    agent = PETSLearner(SPEC, cfg, seed=0)
    buf = Transitions(10_000)
    random_returns = _episodes(env, agent, 200, buf)
    for _ in range(3):
        metrics = agent.fit(buf.all(), buf.env_steps)
        returns = _episodes(env, agent, 100, buf)
    assert np.isfinite(metrics["model_nll"]) and metrics["model_val_mse"] < 1.0
    assert np.mean(returns) > 35 > np.mean(random_returns) + 20


def test_state_dict_round_trip_and_inference_weights():
    cfg = load_preset("debug")
    agent = PETSLearner(SPEC, cfg, seed=0)
    assert agent.inference_weights() is None  # acts randomly until its first fit
    buf = Transitions(1000)
    _episodes(make_env("dummy", seed=0), agent, 100, buf)
    agent.fit(buf.all(), buf.env_steps)
    clone = PETSLearner(SPEC, cfg, seed=5)
    clone.load_state_dict(agent.state_dict())
    worker = PETSAgent(SPEC, cfg, seed=0)
    worker.load_inference_weights(agent.inference_weights())
    assert worker.plan_model.members == cfg.model.num_elites
    obs = np.zeros((3, 2), np.float32)
    a1, _ = clone.act(obs, clone.initial_state(3))
    a2, _ = agent.act(obs, agent.initial_state(3))
    np.testing.assert_allclose(a1, a2)  # same weights and same generator state
    for key, value in agent.plan_model.state_dict().items():
        torch.testing.assert_close(worker.plan_model.state_dict()[key], value)


def test_terminal_value_critic_trains_with_the_model_and_reaches_workers():
    """planner.value_weight > 0: fit also trains a SAC critic; its actor and critic travel with
    the inference weights, so a worker's terminal value equals the learner's; with
    planner.prior_samples the actor's model rollouts are handed to the planner."""
    from mbrl_ray.config import apply_overrides

    cfg = apply_overrides(load_preset("debug"), ["planner.value_weight=1", "planner.prior_samples=4",
                                                 "sac.updates_per_fit=20", "sac.hidden_size=32"])
    agent = PETSLearner(SPEC, cfg, seed=0)
    buf = Transitions(1000)
    _episodes(make_env("dummy", seed=0), agent, 100, buf)
    metrics = agent.fit(buf.all(), buf.env_steps)
    assert "sac_critic_loss" in metrics and agent.sac.fitted
    worker = PETSAgent(SPEC, cfg, seed=0)
    worker.load_inference_weights(agent.inference_weights())
    states = torch.randn(7, 2)
    torch.testing.assert_close(worker.sac.value(states), agent.sac.value(states))
    clone = PETSLearner(SPEC, cfg, seed=3)
    clone.load_state_dict(agent.state_dict())
    torch.testing.assert_close(clone.sac.value(states), agent.sac.value(states))
    priors = []
    planner = worker.policy.planner
    plan = planner.plan
    planner.plan = lambda *args, **kw: priors.append(args[3]) or plan(*args, **kw)
    action, _ = worker.act(np.zeros((2, 2), np.float32), worker.initial_state(2))
    assert action.shape == (2, 2) and np.abs(action).max() <= 1
    horizon = cfg.planner.horizon  # the actor's sequences join the planner's samples
    assert priors[0].shape == (2, 4, horizon, 2) and priors[0].abs().max() <= 1


def test_action_prior_term_asks_the_actor_for_the_log_density_of_every_planned_step():
    """planner.prior_weight: the objective adds the SAC actor's log pi(a_t | s_t) at every step
    of every particle (and the planner pays -log q); with prior_init the sampler starts from
    the actor's sequences."""
    from mbrl_ray.config import apply_overrides

    cfg = apply_overrides(load_preset("debug"), [
        "planner.prior_weight=0.1", "planner.prior_samples=4", "planner.prior_init=true",
        "sac.updates_per_fit=20", "sac.hidden_size=32"])
    agent = PETSLearner(SPEC, cfg, seed=0)
    buf = Transitions(1000)
    _episodes(make_env("dummy", seed=0), agent, 100, buf)
    agent.fit(buf.all(), buf.env_steps)
    rows = []
    log_prob = agent.sac.actor.log_prob
    agent.sac.actor.log_prob = lambda s, a: rows.append(len(s)) or log_prob(s, a)
    action, _ = agent.act(np.zeros((2, 2), np.float32), agent.initial_state(2))
    p, m = cfg.planner, cfg.model
    per_iteration = 2 * (p.population + p.prior_samples) * m.particles
    assert np.abs(action).max() <= 1
    assert sum(rows) >= per_iteration * p.horizon * p.iterations, (sum(rows), per_iteration)


