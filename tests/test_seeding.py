"""train.seed controls every generator: the same seed gives the same initial weights in fresh
processes and the same evaluation curve; another seed gives other weights."""
import subprocess
import sys

import pytest

from test_distributed import _run, _scalars

WEIGHTS_DIGEST = """
import hashlib, sys
from mbrl_ray.agents import make_agent
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs import EnvSpec
cfg = apply_overrides(load_preset("debug"), ["planner.value_weight=1"])  # ensemble and SAC
agent = make_agent(EnvSpec.state(2, 2), cfg, seed=int(sys.argv[1]))
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
def test_same_seed_same_debug_curve(ray_session, tmp_path):
    runs = [_run(tmp_path, f"seed0-{i}", ["train.steps=800", "train.eval_every=200"])[0]
            for i in range(2)]
    curves = [_scalars(r.run_dir, "eval/episodic_return") for r in runs]
    assert len(curves[0]) >= 4 and curves[0] == curves[1]
    returns = [_scalars(r.run_dir, "charts/episodic_return") for r in runs]
    assert returns[0] == returns[1]
