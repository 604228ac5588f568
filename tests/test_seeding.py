"""train.seed controls every generator: the same seed gives the same initial weights in fresh
processes and the same evaluation curve; another seed gives other weights."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from mbrl_ray.agents import make_learner
from mbrl_ray.config import load_preset
from mbrl_ray.envs import EnvSpec
from test_distributed import _run, _scalars

WEIGHTS_DIGEST = """
import hashlib, sys
from mbrl_ray.agents import make_learner
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs import EnvSpec
cfg = apply_overrides(load_preset("debug"), ["planner.value_weight=1"])  # ensemble and SAC
agent = make_learner(EnvSpec.state(2, 2), cfg, seed=int(sys.argv[1]))
digest = hashlib.sha256()
for part in (agent.model, agent.sac.actor, agent.sac.critic):
    for value in part.state_dict().values():
        digest.update(value.numpy().tobytes())
print(digest.hexdigest())
"""


def _digest(seed: int) -> str:
    out = subprocess.run([sys.executable, "-c", WEIGHTS_DIGEST, str(seed)], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


@pytest.mark.unit
def test_same_seed_same_initial_weights_in_fresh_processes():
    first, again, other = _digest(0), _digest(0), _digest(1)
    assert first == again
    assert first != other


@pytest.mark.ray
@pytest.mark.long
def test_same_seed_same_debug_curve(ray_session, tmp_path):
    runs = [_run(tmp_path, f"seed0-{i}", ["train.steps=800", "train.eval_every=200"])[0]
            for i in range(2)]
    curves = [_scalars(r.run_dir, "eval/episodic_return") for r in runs]
    assert len(curves[0]) >= 4 and curves[0] == curves[1]
    returns = [_scalars(r.run_dir, "charts/episodic_return") for r in runs]
    assert returns[0] == returns[1]


CUDA_STATE = torch.tensor([7, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0], dtype=torch.uint8)


def _as_if_saved_on_cuda(state):
    """A state dict whose torch generator states have a CUDA generator's layout (16 bytes: seed,
    offset), as a GPU learner's checkpoint holds them."""
    if isinstance(state, dict):
        return {k: CUDA_STATE.clone() if k == "generator" else _as_if_saved_on_cuda(v)
                for k, v in state.items()}
    return state


def _generator_holder(agent):
    """The part that holds the agent's own torch and numpy generators (SAC's lie in its critic)."""
    return agent if hasattr(agent, "generator") else agent.sac


@pytest.mark.unit
@pytest.mark.parametrize("preset", ["debug", "sac-pendulum", "dcmpc-debug", "dreamer-debug"])
def test_checkpoint_from_a_gpu_learner_resumes_on_cpu(preset):
    """Generator states do not travel between device kinds; loading one from another kind
    restarts the generator from a seed drawn from it (the same each time), and keeps numpy's."""
    cfg = load_preset(preset)
    spec = EnvSpec.state(2, 2)
    saved = _as_if_saved_on_cuda(make_learner(spec, cfg, seed=0).state_dict())
    draws, numpy_draws = [], []
    for seed in (1, 2):
        agent = make_learner(spec, cfg, seed=seed)
        agent.load_state_dict(saved)
        holder = _generator_holder(agent)
        draws.append(torch.rand(4, generator=holder.generator))
        numpy_draws.append(holder.rng.random(4))
    assert torch.equal(draws[0], draws[1])
    assert np.array_equal(numpy_draws[0], numpy_draws[1])
    fresh = _generator_holder(make_learner(spec, cfg, seed=0))
    assert np.array_equal(numpy_draws[0], fresh.rng.random(4)), "numpy's stream continues"
