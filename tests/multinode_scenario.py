"""Run by tests/test_multinode.py in a process of its own (the test session already holds one
Ray): a 3-node Ray cluster simulated with ray.cluster_utils.Cluster; a debug run with one
rollout worker per node; one worker node removed mid-run. Prints one JSON line of results."""
import json
import sys
import threading
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.distributed.driver import Driver

REMOVE_AT_STEP = 400


def main(run_dir: Path) -> None:
    # The driver connects while the head is the only node, so that it attaches to the head
    # (all simulated nodes share one IP), as a job's driver does on a real cluster.
    cluster = Cluster(initialize_head=True, connect=True, head_node_args={"num_cpus": 3})
    doomed = cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    cfg = apply_overrides(load_preset("debug"), [
        "workers.num=3", "workers.num_cpus=1", "workers.envs_per_worker=1", "learner.num_cpus=1",
        "train.steps=1500", "train.steps_per_round=150", "train.random_steps=150",
        "train.eval_every=0", "train.checkpoint_every=1500", "workers.max_restarts=5"])
    driver = Driver(cfg, run_dir, printer=lambda *a, **k: print(*a, file=sys.stderr))
    removed = {}

    def remove_when_running() -> None:
        while driver.counters["env_steps"] < REMOVE_AT_STEP:
            time.sleep(0.2)
        removed["node"], removed["at_step"] = doomed.node_id, driver.counters["env_steps"]
        cluster.remove_node(doomed)

    threading.Thread(target=remove_when_running, daemon=True).start()
    result = driver.run()
    result_json = json.loads((run_dir / "result.json").read_text())
    alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    print(json.dumps({**result_json, "removed": removed, "alive_nodes": alive,
                      "head": cluster.head_node.node_id}))
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
