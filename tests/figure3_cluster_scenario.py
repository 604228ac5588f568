"""Run by tests/test_multinode.py in a process of its own (the test session already holds one
Ray): the Figure-3 bench as its cluster job (jobs/lst-figure3.sh) runs it, against a 2-node Ray
cluster simulated with ray.cluster_utils.Cluster. First --parallel 3 (more runs than the cluster's
CPUs hold), then --parallel 2 (each run a Ray task placed by SPREAD). Prints one JSON line: each
invocation's exit code and the tail of its stderr."""
import json
import subprocess
import sys
from pathlib import Path

from ray.cluster_utils import Cluster

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--methods", "SAC", "--envs", "InvertedPendulum-v5", "--seeds", "2", "--steps", "500",
        "--eval-every", "250", "--eval-episodes", "1", "--random-steps", "250", "--eval-wait"]


def bench(address: str, parallel: int, out: Path) -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "lst_figure3.py"), "--address",
                           address, "--parallel", str(parallel), "--out", str(out), *TINY],
                          capture_output=True, text=True, timeout=500, cwd=ROOT)
    return {"rc": proc.returncode, "stderr": proc.stderr[-2000:]}


def main(out: Path) -> None:
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 2})
    cluster.add_node(num_cpus=2)  # each run holds 2 CPUs (a rollout worker and its learner)
    cluster.wait_for_nodes()
    try:
        too_many = bench(cluster.address, 3, out / "too-many")
        two = bench(cluster.address, 2, out / "two")
    finally:
        cluster.shutdown()
    print(json.dumps({"too_many": too_many, "two": two}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
