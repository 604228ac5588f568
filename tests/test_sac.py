"""SAC's pieces against closed forms, and SAC through the topology."""
import math

import numpy as np
import pytest
import torch

from mbrl_ray.agents import PETSAgent, SACAgent, SACLearner, make_learner
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.critics import Actor
from mbrl_ray.envs import EnvSpec
from slow_runs import final_returns, timeout_s

SPEC = EnvSpec.state(3, 2)  # 3-D observations, 2-D actions


def _cfg(*overrides):
    return apply_overrides(load_preset("debug"), ["agent.name=sac", "sac.hidden_size=32",
                                                  "sac.batch_size=64", *overrides])


def _batch(n=64, obs_dim=3, act_dim=2, seed=0):
    rng = np.random.default_rng(seed)
    return {"obs": rng.normal(size=(n, obs_dim)).astype(np.float32),
            "action": rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
            "reward": rng.normal(size=n).astype(np.float32),
            "next_obs": rng.normal(size=(n, obs_dim)).astype(np.float32),
            "terminated": rng.random(n) < 0.1}


def _sampled(rows: int, seed: int):
    """A small actor's sampled actions and their log-probs; `ok` marks rows not at the bounds,
    where atanh is ill-conditioned."""
    torch.manual_seed(0)
    actor = Actor(3, 2, 16, 2)
    obs = torch.randn(rows, 3)
    action, log_prob = actor(obs, generator=torch.Generator().manual_seed(seed))
    return actor, obs, action, log_prob, action.abs().max(-1).values < 0.999


@pytest.mark.unit
def test_tanh_gaussian_log_prob_matches_torch_distributions():
    actor, obs, action, log_prob, ok = _sampled(500, 1)
    mean, log_std = actor.net(obs).chunk(2, -1)
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.clamp(-5, 2).exp()),
        [torch.distributions.TanhTransform(cache_size=1)])
    pre = torch.atanh(action.clamp(-1 + 1e-6, 1 - 1e-6))
    reference = dist.log_prob(torch.tanh(pre)).sum(-1)
    torch.testing.assert_close(log_prob[ok], reference[ok], atol=2e-3, rtol=1e-4)
    assert (action.abs() <= 1).all()


@pytest.mark.unit
def test_log_prob_of_given_actions_matches_sampling():
    actor, obs, action, log_prob, ok = _sampled(200, 2)
    torch.testing.assert_close(actor.log_prob(obs, action)[ok], log_prob[ok], atol=1e-3,
                               rtol=1e-4)


@pytest.mark.unit
def test_consolidation_pulls_the_actor_towards_executed_actions():
    """The planner always executed (0.6, -0.6): with consolidation the actor's mean action
    moves there; without, it does not (the critic alone has nothing to say about it)."""
    batch = _batch()
    batch["action"][:] = (0.6, -0.6)
    batch["reward"][:] = 0.0
    means = {}
    for weight in (0.0, 1.0):
        agent = SACLearner(SPEC, _cfg(f"sac.consolidation={weight}", "sac.lr=1e-3"), seed=0)
        for _ in range(300):
            agent.update(batch)
        mean, _ = agent.sac.actor(torch.as_tensor(batch["obs"]), deterministic=True)
        means[weight] = mean.mean(0)
    target = torch.tensor([0.6, -0.6])
    assert (means[1.0] - target).abs().max() < 0.15
    assert (means[0.0] - target).abs().max() > 0.3


@pytest.mark.unit
def test_update_moves_targets_by_tau_and_temperature_towards_target_entropy():
    agent = SACLearner(SPEC, _cfg("sac.tau=0.1", "sac.init_alpha=1.0"), seed=0)
    sac = agent.sac
    before = [p.clone() for p in sac.target.parameters()]
    agent.update(_batch())
    for old, new, online in zip(before, sac.target.parameters(), sac.critic.parameters()):
        torch.testing.assert_close(new, old + 0.1 * (online - old))
    # A fresh policy's entropy (~ +2.8 nats for 2 dims) exceeds the target (-2): alpha falls.
    alphas = [agent.update(_batch(seed=s))["sac_alpha"] for s in range(30)]
    assert alphas[-1] < alphas[0] < 1.0 + 1e-6
    assert math.isclose(sac.target_entropy, -2.0)


@pytest.mark.unit
def test_acts_randomly_until_fitted_then_from_the_published_actor():
    cfg = _cfg()
    learner, worker = SACLearner(SPEC, cfg, seed=0), SACAgent(SPEC, cfg, seed=1)
    assert learner.inference_weights() is None
    worker.load_inference_weights(None)
    assert worker.act(np.zeros((4, 3), np.float32), worker.initial_state(4))[0].shape == (4, 2)
    data = {k: np.concatenate([v] * 8) for k, v in _batch().items()}
    learner.fit(data, len(data["obs"]))
    worker.load_inference_weights(learner.inference_weights())
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    a_learner, _ = learner.act(obs, learner.initial_state(5), explore=False)
    a_worker, _ = worker.act(obs, worker.initial_state(5), explore=False)
    np.testing.assert_allclose(a_learner, a_worker, atol=1e-6)  # the same deterministic policy
    clone = SACLearner(SPEC, cfg, seed=7)
    clone.load_state_dict(learner.state_dict())
    np.testing.assert_allclose(clone.act(obs, clone.initial_state(5), explore=False)[0],
                               a_learner, atol=1e-6)


@pytest.mark.unit
def test_agent_is_chosen_by_config():
    assert isinstance(make_learner(SPEC, _cfg()), SACAgent)
    assert isinstance(make_learner(SPEC, load_preset("debug")), PETSAgent)


@pytest.mark.ray
def test_sac_runs_through_the_async_topology(ray_session, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mbrl_ray.distributed.driver import Driver

    cfg = _cfg("train.schedule=async", "train.steps=800", "train.samples_per_insert=32",
               "train.spi_error_buffer=1000", "train.updates_per_round=20",
               "train.steps_per_round=25")
    result = Driver(cfg, tmp_path / "sac", printer=lambda *a, **k: None).run()
    assert result.env_steps >= 800 and np.isfinite(result.final_eval_return)
    acc = EventAccumulator(str(result.run_dir / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"losses/sac_critic_loss", "losses/sac_alpha", "eval/episodic_return"} <= tags
    spi = acc.Scalars("replay/samples_per_insert")[-1].value
    # The limiter holds the learner within the error buffer plus one insert chunk (25 x 32).
    assert abs(spi - 32) <= (1000 + 25 * 32) / (800 - 200) + 1.0


@pytest.mark.slow
@pytest.mark.timeout(timeout_s(30_000, 0.022))
def test_sac_pendulum_preset_balances(ray_session, tmp_path):
    """The sac-pendulum preset (30,000 steps, about 7.5-12 min per seed on 2 cores) balances on
    at least 2 of seeds 0, 1, 2. Random play lasts ~5-10 steps; 900 needs a policy that
    balances almost the whole episode. Measured (2 evaluation episodes every 2,500 steps):
    seeds 0, 1, 2 reach 1000 at 15,000, 12,500 and 15,000 steps and stay at 1000 to the end
    (finals 1000, 1000, 1000; 9.4-11.6 min each, part of it beside another run). At the old
    budget of 15,000 steps two seeds were at their first 1000 and runs ended at 167-267.
    Fresh-clone slow tier (7.4-7.8 min each): seeds 0, 1, 2 first balance at 12,500, 15,000
    and 12,500; finals 598 (seed 0 dropped at the last evaluation), 1000, 1000. The second
    fresh-clone run (7.8-8.5 min each): first balanced at 12,500, 15,000 and 10,000 and stayed
    at 1000 to the end (finals 1000, 1000, 1000)."""
    finals = final_returns("sac-pendulum", tmp_path)
    assert sum(f >= 900 for f in finals) >= 2, finals


@pytest.mark.unit
def test_q_ensemble_members_are_independent_and_min_of_two_is_a_pair_min():
    """The batched Q ensemble: (E, N) values; a loss on one member moves only that member;
    min_of_two is the min of two distinct members' values."""
    from mbrl_ray.critics import QEnsemble

    torch.manual_seed(0)
    q = QEnsemble(5, 3, 2, 16, 2)
    obs, act = torch.randn(7, 3), torch.randn(7, 2)
    values = q(obs, act)
    assert values.shape == (5, 7)
    assert not torch.allclose(values[0], values[1])  # members start apart
    values[2].sum().backward()
    grads = q.hidden[0].weight.grad.abs().sum(dim=(1, 2))
    assert grads[2] > 0 and (grads[[0, 1, 3, 4]] == 0).all()
    gen = torch.Generator().manual_seed(3)
    low = q.min_of_two(obs, act, gen)
    pair = torch.randperm(5, generator=torch.Generator().manual_seed(3))[:2]
    torch.testing.assert_close(low, values.detach()[pair].min(0).values)
