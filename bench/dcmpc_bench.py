"""DC-MPC costs at the paper's size, against this machine's float32 matmul peak measured in the
same run, and the authors' anchor (about 100 ms per agent step, planning plus one update, on a
GPU; REFERENCE.md "DCWM / DC-MPC").

1. MPPI planning (512 samples of which 24 from the actor, 6 iterations, horizon 3, d = 512
   slots x FSQ [5, 3], 2 x 512 networks): ms per action for one env, FLOPs of one call
   (torch's FlopCounterMode) and the achieved FLOP/s as a fraction of the peak.
2. One learner update at batch 512 x (horizon 5 + 1) rows (world model, 5 critics, the actor
   every second step): updates per second, FLOPs and fraction of peak.
Sizes come from the dcmpc-walker-walk preset (walker: 24-D observations, 6-D actions); weights
are a fresh initialisation (costs do not depend on training).

Usage: .venv/bin/python bench/dcmpc_bench.py [--device cuda] [--threads N] [--quick]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from mbrl_ray.agents import DCMPCAgent, DCMPCLearner
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs import EnvSpec

OBS_DIM, ACT_DIM = 24, 6  # dmc:walker-walk
ANCHOR_MS = 100.0  # the authors' code: one agent step (planning + one update) on a GPU


def peak_gflops(device: torch.device, n: int = 4096, repeats: int = 20) -> float:
    """Best-of float32 square GEMM throughput on `device`."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return 2 * n ** 3 / best_seconds(lambda: a @ b, device, repeats) / 1e9


def best_seconds(fn, device: torch.device, repeats: int) -> float:
    for _ in range(2):
        fn()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flops_of(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def random_batch(cfg, rng: np.random.Generator) -> dict[str, np.ndarray]:
    b, length = cfg.dcmpc.batch_size, cfg.dcmpc.horizon + 1
    zeros = np.zeros((b, length), bool)
    return {"obs": rng.normal(size=(b, length, OBS_DIM)).astype(np.float32),
            "action": rng.uniform(-1, 1, (b, length, ACT_DIM)).astype(np.float32),
            "reward": rng.uniform(0, 1, (b, length)).astype(np.float32),
            "is_first": zeros, "is_last": zeros, "is_terminal": zeros}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--quick", action="store_true", help="dcmpc-cartpole-swingup's size")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    preset = "dcmpc-cartpole-swingup" if args.quick else "dcmpc-walker-walk"
    cfg = apply_overrides(load_preset(preset), [])
    spec = EnvSpec.state(OBS_DIM, ACT_DIM)
    rng = np.random.default_rng(0)
    peak = peak_gflops(device)
    learner = DCMPCLearner(spec, cfg, device, seed=0)
    batch = {k: torch.as_tensor(v, device=device) for k, v in random_batch(cfg, rng).items()}
    update_s = best_seconds(lambda: (learner.update(batch), learner.update(batch)), device,
                            5) / 2
    update_flops = flops_of(lambda: (learner.update(batch), learner.update(batch))) / 2
    worker = DCMPCAgent(spec, cfg, device, seed=0)
    worker.load_inference_weights(learner.inference_weights())
    obs = rng.normal(size=(1, OBS_DIM)).astype(np.float32)
    state = worker.initial_state(1)
    act_s = best_seconds(lambda: worker.act(obs, state), device, 10)
    act_flops = flops_of(lambda: worker.act(obs, state))
    p, c = cfg.planner, cfg.dcmpc
    lines = [
        f"DC-MPC at {preset} size on {device} ({args.threads} threads): d = {c.latent_dim} x "
        f"FSQ {c.fsq_levels}, hidden {c.hidden_size}, batch {c.batch_size}, MPPI "
        f"{p.population} (+{p.prior_samples} actor) x {p.iterations} iterations x horizon "
        f"{p.horizon}",
        f"float32 matmul peak (square {4096}) measured here: {peak:.1f} GFLOP/s",
        f"MPPI planning: {1000 * act_s:.1f} ms per action, {act_flops / 1e9:.2f} GFLOP, "
        f"{act_flops / act_s / 1e9:.1f} GFLOP/s = {act_flops / act_s / 1e9 / peak:.2f} of peak",
        f"learner update: {1 / update_s:.2f} updates/s ({1000 * update_s:.0f} ms), "
        f"{update_flops / 1e9:.2f} GFLOP, {update_flops / update_s / 1e9:.1f} GFLOP/s = "
        f"{update_flops / update_s / 1e9 / peak:.2f} of peak",
        f"one agent step (plan + one update): {1000 * (act_s + update_s):.0f} ms; the "
        f"authors' code on a GPU: about {ANCHOR_MS:.0f} ms "
        f"(ratio {(act_s + update_s) * 1000 / ANCHOR_MS:.1f}x)",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
