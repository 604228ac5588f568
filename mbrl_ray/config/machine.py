"""What this machine has, asked without importing torch or Ray (validation runs before both)."""
from __future__ import annotations

import os
import re
import socket
from pathlib import Path

from mbrl_ray.config.loading import ConfigError

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU the driver sees
RAY_ADDRESS = re.compile(r"^(ray://)?(\[[0-9a-fA-F:]+\]|[\w.-]+):(\d{1,5})$")
CONNECT_TIMEOUT_S = 5.0  # a Ray head that does not answer in this time is taken as unreachable


def local_gpu_count() -> int:
    """CUDA GPUs a process started here would see: CUDA_VISIBLE_DEVICES when set, else the
    NVIDIA driver's GPU list (0 without the driver)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    return len(list(NVIDIA_GPUS.iterdir())) if NVIDIA_GPUS.is_dir() else 0


def is_local_run(address: str) -> bool:
    """No cluster to join: neither ray.address nor RAY_ADDRESS (set by `ray job submit`)."""
    return not (address or os.environ.get("RAY_ADDRESS"))


def local_memory_bytes() -> int:
    """Memory a process started here may use: the physical memory, or the cgroup's limit
    (a container's) where that is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def local_cpu_count() -> int:
    """CPUs this process may run on (its affinity: what a container or taskset grants)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def check_ray_address(address: str) -> None:
    """ray.address is empty, 'auto', 'local', HOST:PORT or ray://HOST:PORT, and a given host
    and port answer a TCP connection within CONNECT_TIMEOUT_S (Ray itself would retry for
    minutes)."""
    if address in ("", "auto", "local"):
        return
    match = RAY_ADDRESS.match(address)
    if not match or not 0 < int(match.group(3)) < 65536:
        raise ConfigError(f"ray.address={address!r} is not a Ray address; allowed: empty (a "
                          "local Ray), auto, local, HOST:PORT (the head's GCS, e.g. "
                          "10.0.0.1:6379) or ray://HOST:PORT (Ray Client)")
    host, port = match.group(2).strip("[]"), int(match.group(3))
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        why = err.strerror or type(err).__name__  # a time-out has no strerror
        raise ConfigError(f"ray.address={address!r} cannot be reached ({why}); is a Ray head "
                          "running there (`ray start --head`)?") from None
