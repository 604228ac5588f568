"""What this machine has, asked without importing torch or Ray (validation runs before both)."""
from __future__ import annotations

import os
from pathlib import Path

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU the driver sees


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
