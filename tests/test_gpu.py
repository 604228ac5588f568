"""Every agent on CUDA, as the learner and a GPU rollout worker run it, without Ray: trained on
real replay rows of the dummy env (state and pixels), its published weights on CPU, acting on
the GPU from them, and its checkpoint resumed on a CPU-only machine. Skipped without CUDA; run
with `.venv/bin/python -m pytest -m gpu` on a GPU machine."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from mbrl_ray.agents import make_actor, make_learner
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs.batch import EnvBatch, StreamRows
from mbrl_ray.envs import env_kwargs, env_spec
from mbrl_ray.finite import check_finite
from mbrl_ray.replay import StreamStorage, all_transitions, sample
from test_agent_contract import _act, _tensors

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

DUMMY = ["env.id=dummy"]
CASES = {  # id: (preset, overrides), every agent and the planners with their own GPU code
    "pets-cem": ("debug", []),
    "pets-cem-lst": ("cem-lst-pendulum", DUMMY + ["model.max_epochs=5"]),
    "pets-smcp-lst": ("smcp-lst-pendulum", DUMMY + ["model.max_epochs=5"]),
    "sac": ("sac-pendulum", DUMMY),
    "mbpo": ("mbpo-pendulum", DUMMY + ["model.max_epochs=5"]),
    "dcmpc": ("dcmpc-debug", []),
    "planet-state": ("planet-debug", []),
    "planet-pixels": ("planet-debug", ["env.obs=pixels", "env.image_size=32", "rssm.cnn_depth=8",
                                       "rssm.cnn_layers=3"]),
    "dreamer-state": ("dreamer-debug", []),
    "dreamer-pixels": ("dreamer-debug", ["env.obs=pixels", "env.image_size=32",
                                         "rssm.cnn_depth=8", "rssm.cnn_layers=3"]),
}
STEPS = 300  # random env steps per env collected into replay


def _replay(cfg, spec, envs: int = 2) -> StreamStorage:
    """Real rows of `envs` dummy envs stepped at random, as a rollout worker writes them."""
    store = StreamStorage(envs * (2 * STEPS + 1), spec)
    batch, rows = EnvBatch(cfg.env, envs, seed=0), StreamRows(spec, envs, STEPS)
    rng = np.random.default_rng(0)
    for _ in range(STEPS):
        batch.step(rng.uniform(-1, 1, (envs, spec.act_dim)).astype(np.float32), rows)
    for key, segment in rows.segments(list(range(envs))):
        store.add(segment, key)
    batch.close()
    return store


def _on(device, batch: dict) -> dict[str, torch.Tensor]:
    """A replay batch as the learner hands it over (Learner._on_device)."""
    return {k: torch.tensor(v, device=device) for k, v in batch.items()}


def _train(agent, store: StreamStorage) -> dict[str, float]:
    """One sync fit or a few async updates, as the learner actor runs them."""
    if agent.cfg.train.schedule == "sync":
        return agent.fit(all_transitions(store), store.written)
    rng = np.random.default_rng(1)
    if agent.refresh_rows:
        agent.refresh(_on(agent.device, all_transitions(store)))
    return [agent.update(_on(agent.device, sample(store, agent.batch_spec, rng)))
            for _ in range(3)][-1]


@pytest.mark.parametrize("case", CASES)
def test_agent_trains_on_cuda_publishes_cpu_weights_and_resumes_on_cpu(case):
    preset, overrides = CASES[case]
    cfg = apply_overrides(load_preset(preset), overrides + ["learner.device=cuda",
                                                            "workers.device=cuda"])
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    store = _replay(cfg, spec)
    learner = make_learner(spec, cfg, "cuda", seed=0)
    check_finite(_train(learner, store), f"{case} loss on cuda")

    weights = learner.inference_weights()
    assert weights is not None
    assert {t.device.type for t in _tensors(weights)} == {"cpu"}, "workers load CPU weights"

    worker = make_actor(spec, cfg, "cuda", seed=1)
    worker.load_inference_weights(weights)
    obs = np.stack([store.data["obs"][0], store.data["obs"][1]])
    actions = _act(worker, obs)  # twice: the second call carries the first's state
    assert actions.shape == (2, spec.act_dim) and np.isfinite(actions).all()
    assert np.abs(actions).max() <= 1.0

    # A checkpoint written by a GPU learner, loaded as Learner does on a machine without one.
    buffer = io.BytesIO()
    torch.save({"agent": learner.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, map_location="cpu", weights_only=True)
    resumed = make_learner(spec, cfg, "cpu", seed=2)
    resumed.load_state_dict(state["agent"])
    for ours, theirs in zip(_tensors(resumed.inference_weights()), _tensors(weights)):
        assert torch.equal(ours, theirs), "the CPU resume holds the GPU learner's weights"
    check_finite(_train(resumed, store), f"{case} loss after the CPU resume")
