"""In-process learning on the dummy point-mass env (slow tier: about 2.5 min on 2 slow cores):
MBPO, and PETS planning with CEM-LST, SMCP-MPC and SMCP-LST, each above what random play
reaches, with a worker holding only the inference weights acting as the learner does."""
import sys

import numpy as np
import pytest

from mbrl_ray.agents import MBPOAgent, MBPOLearner, PETSAgent, PETSLearner
from mbrl_ray.config import load_preset
from mbrl_ray.envs import make_env

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_mbpo import SPEC, _cfg  # noqa: E402
from test_pets_agent import Transitions, _episodes  # noqa: E402

pytestmark = pytest.mark.slow


def test_mbpo_learns_the_point_mass_and_workers_act_with_its_actor():
    cfg = _cfg()
    env = make_env("dummy", seed=0)
    agent = MBPOLearner(SPEC, cfg, seed=0)
    buf = Transitions(10_000)
    random_returns = _episodes(env, agent, 200, buf)
    for _ in range(5):
        agent.fit(buf.all(), buf.env_steps)
        _episodes(env, agent, 100, buf)
    # The final policy over 6 episodes: its exploring actions make 2 episodes too noisy a
    # measure (seeds 0-3 gave 19.8-36.4 on 2 episodes).
    returns = _episodes(env, agent, 300, buf)
    assert np.mean(returns) > 20 > np.mean(random_returns) + 15  # random play: about -2
    worker = MBPOAgent(SPEC, cfg, seed=0)
    worker.load_inference_weights(agent.inference_weights())
    obs = np.random.default_rng(0).uniform(-1, 1, (4, 2)).astype(np.float32)
    np.testing.assert_allclose(worker.act(obs, worker.initial_state(4), explore=False)[0],
                               agent.act(obs, agent.initial_state(4), explore=False)[0])
    clone = MBPOLearner(SPEC, cfg, seed=3)
    clone.load_state_dict(agent.state_dict())
    assert clone.seen == agent.seen




@pytest.mark.parametrize("overrides", [["planner.posterior=lst"], ["planner.name=smcp"],
                                       ["planner.name=smcp", "planner.posterior=lst"]],
                         ids=["cem-lst", "smcp-mpc", "smcp-lst"])
def test_lst_and_smcp_agents_learn_dummy_env_and_plan_on_workers(overrides):
    """As PETS above, with a lower bar: these act on samples, not on the elite mean, and
    SMCP (two rounds more) proposes with the SAC actor, which learns more slowly than the
    model. A worker holding only the inference weights plans too."""
    from mbrl_ray.config import apply_overrides

    cfg = apply_overrides(load_preset("debug"), overrides + ["sac.hidden_size=64",
                                                             "sac.updates_per_fit=400"])
    env = make_env("dummy", seed=0)
    agent = PETSLearner(SPEC, cfg, seed=0)
    buf = Transitions(10_000)
    random_returns = _episodes(env, agent, 200, buf)
    for _ in range(5 if cfg.planner.name == "smcp" else 3):
        agent.fit(buf.all(), buf.env_steps)
        returns = _episodes(env, agent, 100, buf)
    assert np.mean(returns) > 20 > np.mean(random_returns) + 15  # random play: about -2
    worker = PETSAgent(SPEC, cfg, seed=0)
    worker.load_inference_weights(agent.inference_weights())
    action, state = worker.act(np.zeros((3, 2), np.float32), worker.initial_state(3))
    assert action.shape == (3, 2) and np.abs(action).max() <= 1
