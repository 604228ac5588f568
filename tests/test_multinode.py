"""Placement across nodes and surviving the loss of one, on a simulated 3-node Ray cluster."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[1]


def test_workers_spread_over_nodes_and_survive_a_lost_node(tmp_path):
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "multinode_scenario.py"),
                           str(tmp_path / "run")], capture_output=True, text=True, env=env,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    start, end = out["worker_nodes"]["start"], out["worker_nodes"]["end"]
    assert len(set(start)) == 3, "three workers, three nodes: SPREAD puts one on each"
    assert out["removed"]["node"] in start and out["removed"]["node"] not in out["alive_nodes"]
    assert out["env_steps"] == 1500, "the run completes its budget"
    assert out["worker_restarts"] >= 1
    assert out["removed"]["node"] not in end and set(end) <= set(out["alive_nodes"])
