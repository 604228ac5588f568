"""Placement across nodes and surviving the loss of one, on a simulated 3-node Ray cluster; the
Figure-3 job's runs as Ray tasks on a simulated 2-node one."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.long]

ROOT = Path(__file__).resolve().parents[1]


def _scenario(script: str, arg: Path, timeout: int) -> dict:
    """Run tests/<script> in a process of its own (it starts its own simulated cluster beside
    the session's Ray) and return the JSON line it prints last."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / script), str(arg)],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_workers_spread_over_nodes_and_survive_a_lost_node(tmp_path):
    out = _scenario("multinode_scenario.py", tmp_path / "run", timeout=600)
    start, end = out["worker_nodes"]["start"], out["worker_nodes"]["end"]
    assert len(set(start)) == 3, "three workers, three nodes: SPREAD puts one on each"
    assert out["removed"]["node"] in start and out["removed"]["node"] not in out["alive_nodes"]
    assert out["env_steps"] == 1500, "the run completes its budget"
    assert out["worker_restarts"] >= 1
    assert out["removed"]["node"] not in end and set(end) <= set(out["alive_nodes"])


def test_figure3_job_runs_its_runs_as_ray_tasks_on_a_cluster(tmp_path):
    """The path jobs/lst-figure3.sh takes (--address of a cluster, --parallel N), at a tiny size:
    a --parallel the cluster cannot hold is refused before anything is written; two runs at a
    time complete as Ray tasks and land in one curves.csv and table."""
    out = _scenario("figure3_cluster_scenario.py", tmp_path, timeout=900)
    assert out["too_many"]["rc"] != 0
    assert "--parallel 3 needs 6 CPUs" in out["too_many"]["stderr"]
    assert not (tmp_path / "too-many" / "curves.csv").exists()
    assert out["two"]["rc"] == 0, out["two"]["stderr"]
    with open(tmp_path / "two" / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted({(r["method"], r["seed"]) for r in rows}) == [("SAC", "0"), ("SAC", "1")]
    assert sorted(int(r["env_step"]) for r in rows) == [250, 250, 500, 500]
    assert "| SAC |" in (tmp_path / "two" / "table.md").read_text()
