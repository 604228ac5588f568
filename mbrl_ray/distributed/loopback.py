"""A Ray this process starts for itself listens on 127.0.0.1 only.

Ray binds every server of a node (GCS, raylet, workers' gRPC, the dashboard and runtime-env
agents, the Prometheus `/metrics` endpoints) to the node's IP, and to loopback only where that IP
is 127.0.0.1. On Linux it takes the machine's outward address, and `_node_ip_address="127.0.0.1"`
is resolved back to it (`ray._private.services.resolve_ip_for_localhost`); the one switch that
yields 127.0.0.1 is the flag Ray sets for its single-machine platforms (RAY_ENABLE_WINDOWS_OR_OSX_
CLUSTER=0, read at import into `ray_constants.ENABLE_RAY_CLUSTER`), which changes nothing else for
`ray.init()`. Measured in Ray 2.60 with `ss -ltnp`: all 11 listeners move to loopback
(`tests/test_reliability.py`). A node joining a cluster is left as it is."""
from __future__ import annotations

from ray._private import ray_constants, services


def starts_a_new_ray(address: str | None) -> bool:
    """Whether ray.init(address) starts a Ray of its own here rather than joining one (an
    address, RAY_ADDRESS, or a `ray start` instance of this machine found by Ray)."""
    if address == "local":
        return True
    try:
        return services.canonicalize_bootstrap_address(address) is None
    except Exception:  # Ray raises its own error for the address in ray.init
        return False


def listen_on_loopback_only() -> None:
    """Make the Ray this process starts next bind its servers to 127.0.0.1 (call before
    ray.init; the node's address is handed to every process Ray starts)."""
    ray_constants.ENABLE_RAY_CLUSTER = False
