"""MBPO: the rollout-length schedule, branched model rollouts, the real/model batch mix, and a
short in-process learning run on the point-mass env."""
import sys

import numpy as np
import pytest

from mbrl_ray.agents import MBPOAgent, make_learner
from mbrl_ray.agents.mbpo import rollout_length
from mbrl_ray.config import ConfigError, apply_overrides, load_preset
from mbrl_ray.envs import EnvSpec, make_env

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_pets_agent import Transitions, _episodes  # noqa: E402

pytestmark = pytest.mark.unit
SMALL = ["agent.name=mbpo", "sac.hidden_size=64", "mbpo.updates_per_step=5",
         "mbpo.rollouts_per_step=50", "mbpo.retain_steps=200"]
SPEC = EnvSpec.state(2, 2)  # the point-mass env


def _cfg(*extra):
    return apply_overrides(load_preset("debug"), SMALL + list(extra))


def test_rollout_length_follows_the_schedule():
    cfg = _cfg("mbpo.rollout_length_start=1", "mbpo.rollout_length_end=15",
               "mbpo.schedule_start_steps=20000", "mbpo.schedule_end_steps=100000")
    lengths = [rollout_length(cfg, s) for s in (0, 20_000, 60_000, 100_000, 500_000)]
    assert lengths == [1, 1, 8, 15, 15]


def test_branched_rollouts_and_the_batch_mix():
    cfg = _cfg("mbpo.rollout_length_start=3", "mbpo.rollout_length_end=3", "mbpo.real_ratio=0.25")
    agent = make_learner(SPEC, cfg, seed=0)
    assert isinstance(agent, MBPOAgent)
    buf = Transitions(1000)
    _episodes(make_env("dummy", seed=0), agent, 200, buf)
    metrics = agent.fit(buf.all(), buf.env_steps)
    rows = agent.model_data.size
    # 50 rollouts per new step x 200 steps, 3 steps each unless the model ends them earlier
    assert 200 * 50 * 2 < rows <= 200 * 50 * 3 and metrics["mbpo_rollout_length"] == 3
    model = {k: v[:rows] for k, v in agent.model_data.data.items()}  # not wrapped yet
    reach = np.abs(model["next_obs"] - model["obs"]).max()
    assert reach < 0.5  # the point moves at most 0.2 per axis: rollouts follow the learned model
    batch = agent._mixed_batch(buf.all())
    assert len(batch["obs"]) == cfg.sac.batch_size
    real = {tuple(r) for r in buf.all()["obs"]}
    from_real = sum(tuple(r) in real for r in batch["obs"])
    assert from_real >= round(0.25 * cfg.sac.batch_size)  # (model rows may start on real ones)


def test_new_steps_are_counted_past_the_replay_wrapping():
    """Once the replay is full its rows stop growing; MBPO must still branch from every new
    env step (counted by the replay's lifetime inserts), or it would stall for good."""
    cfg = _cfg("mbpo.rollout_length_start=1", "mbpo.rollout_length_end=1",
               "mbpo.updates_per_step=1")
    agent = make_learner(SPEC, cfg, seed=0)
    buf = Transitions(100)
    _episodes(make_env("dummy", seed=0), agent, 150, buf)
    agent.fit(buf.all(), buf.env_steps)
    before = agent.model_data.size
    _episodes(make_env("dummy", seed=1), agent, 40, buf)
    assert buf.size == 100 and buf.env_steps == 190
    metrics = agent.fit(buf.all(), buf.env_steps)
    # one-step rollouts: exactly rollouts_per_step rows per new env step
    assert agent.model_data.size - before == 40 * 50 and agent.seen == 190
    # one SAC step per new env step, counted over both fits and kept by a checkpoint
    assert metrics["mbpo_sac_updates"] == 190
    restored = make_learner(SPEC, cfg, seed=1)
    restored.load_state_dict(agent.state_dict())
    assert restored.sac_updates == 190


def test_mbpo_needs_the_sync_schedule():
    """The class declares its schedules; preflight asks it."""
    with pytest.raises(ConfigError, match="agent.name='mbpo' runs on train.schedule sync, "
                                          "not 'async'"):
        MBPOAgent.check_config(_cfg("train.schedule=async"), SPEC)
