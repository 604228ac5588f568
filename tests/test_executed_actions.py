"""A rollout worker's belief must follow the action it executed: with exploration noise on, the
action carried into the next filter step is the noisy one returned (and written to replay), not
the policy's action before the noise."""
import numpy as np
import pytest
import torch

from mbrl_ray.agents import make_actor, make_learner
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs import EnvSpec

pytestmark = pytest.mark.unit

STATE = EnvSpec.state(3, 2)
ATOL = 1e-5  # one GRU step in float32, worker (obs_step) against learner (observe)


def test_a_worker_filters_with_the_noisy_action_it_executed():
    """Worker: act on o_0 exploring (noise std 0.5), then filter o_1. Learner: observe (o_0, o_1)
    with the rows replay holds, the executed action at row 1. h_1 depends on s_0 (the first draw
    of both generators, seeded alike) and the action alone, so the two agree."""
    cfg = apply_overrides(load_preset("dreamer-debug"), ["rssm.explore_noise=0.5"])
    learner = make_learner(STATE, cfg, seed=3)
    learner.updates = 1
    worker = make_actor(STATE, cfg, seed=3)
    worker.load_inference_weights(learner.inference_weights())
    obs = torch.as_tensor(np.random.default_rng(0).normal(size=(2, 2, 3)).astype(np.float32))
    worker.generator.manual_seed(11)
    executed, state = worker.act(obs[:, 0].numpy(), worker.initial_state(2), explore=True)
    _, state = worker.act(obs[:, 1].numpy(), state, explore=True)
    rows = torch.stack([torch.zeros(2, 2), torch.as_tensor(executed)], 1)
    is_first = torch.tensor([[True, False]] * 2)
    learner.generator.manual_seed(11)
    post, _ = learner.model.observe(obs, rows, is_first, learner.generator)
    assert torch.allclose(state["h"], post.h[:, 1], atol=ATOL)
