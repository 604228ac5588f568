"""PlaNet and Dreamer costs at the paper's size, against this machine's float32 matmul peak
measured in the same run.

1. Learner updates per second on 50 x 50 sequences of 64x64 frames: the world model alone
   (PlaNet) and world model + imagination (Dreamer, horizon 15 from all 2,500 posterior states).
2. Latent CEM (1000 candidates x 10 iterations x horizon 12, one imagined trajectory each):
   ms per action for one env, FLOPs (torch's FlopCounterMode) and fraction of the peak.
3. Memory per stored frame in the replay (a 3 x 64 x 64 uint8 frame and its row's fields,
   from the replay's own arrays) against the same frame as float32.
Weights are a fresh initialisation (costs do not depend on training); the env is
dmc:cheetah-run's shape (6-D actions).

Usage: .venv/bin/python bench/rssm_bench.py [--device cuda] [--threads N] [--quick]
    --quick: 16 x 16 sequences and CEM 100 x 3 (a minute on 2 CPU cores)
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch

from dcmpc_bench import best_seconds, flops_of, peak_gflops  # bench/ is sys.path[0]
from mbrl_ray.agents import make_actor, make_learner
from mbrl_ray.config import apply_overrides, load_preset
from mbrl_ray.envs import EnvSpec
from mbrl_ray.replay.storage import StreamStorage

ACT_DIM = 6
QUICK = ["rssm.batch_size=16", "rssm.seq_len=16", "planner.population=100",
         "planner.num_elites=10", "planner.iterations=3"]


def frame_batch(spec: EnvSpec, b: int, length: int, device) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(0)
    first = np.zeros((b, length), bool)
    first[:, 0] = True
    batch = {"obs": rng.integers(0, 256, (b, length, *spec.obs_shape), dtype=np.uint8),
             "action": rng.uniform(-1, 1, (b, length, spec.act_dim)).astype(np.float32),
             "reward": rng.normal(size=(b, length)).astype(np.float32), "is_first": first,
             "is_last": np.zeros_like(first), "is_terminal": np.zeros_like(first)}
    return {k: torch.as_tensor(v, device=device) for k, v in batch.items()}


def bytes_per_frame(spec: EnvSpec, rows: int = 10_000) -> float:
    return StreamStorage(rows, spec).nbytes / rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    spec = EnvSpec((3, 64, 64), "uint8", ACT_DIM)
    extra = QUICK if args.quick else []
    peak = peak_gflops(device)
    lines = [f"RSSM agents at {'quick' if args.quick else 'paper'} size on {device} "
             f"({args.threads} threads); float32 matmul peak measured here: {peak:.1f} GFLOP/s"]
    # Dreamer with the 2020 paper's heads at its size (50 x 50 sequences): the figures in
    # docs/results.md; the frames are synthetic, so the preset's task does not matter.
    for preset in ("planet-cheetah-run", "dreamer-v1-cartpole-swingup"):
        cfg = apply_overrides(load_preset(preset), extra)
        learner = make_learner(spec, cfg, device, seed=0)
        r = cfg.rssm
        batch = frame_batch(spec, r.batch_size, r.seq_len, device)
        update_s = best_seconds(lambda: learner.update(batch), device, 3)
        gflop = flops_of(lambda: learner.update(batch)) / 1e9
        lines.append(f"{cfg.agent.name} update on {r.batch_size} x {r.seq_len} frames: "
                     f"{1 / update_s:.2f} updates/s ({1000 * update_s:.0f} ms), {gflop:.1f} "
                     f"GFLOP = {gflop / update_s / peak:.2f} of peak")
        if cfg.agent.name == "planet":
            lines.append(plan_line(spec, cfg, learner, device, peak))
    frame = bytes_per_frame(spec)
    float_frame = 4 * int(np.prod(spec.obs_shape))
    lines.append(f"replay: {frame:,.0f} bytes per stored 3x64x64 frame row (uint8 frame "
                 f"{np.prod(spec.obs_shape):,} B + the row's fields); as float32 it would be "
                 f"{float_frame:,} B ({float_frame / frame:.1f}x); 1M rows: "
                 f"{frame * 1e6 / 2**30:.1f} GiB")
    print("\n".join(lines))


def plan_line(spec, cfg, learner, device, peak: float) -> str:
    worker = make_actor(spec, cfg, device, seed=0)
    worker.load_inference_weights(learner.inference_weights())
    obs = np.random.default_rng(1).integers(0, 256, (1, *spec.obs_shape), dtype=np.uint8)
    state = worker.initial_state(1)
    act_s = best_seconds(lambda: worker.act(obs, state), device, 3)
    gflop = flops_of(lambda: worker.act(obs, state)) / 1e9
    p = cfg.planner
    return (f"latent CEM {p.population} x {p.iterations} iterations x horizon {p.horizon}: "
            f"{1000 * act_s:.0f} ms per action, {gflop:.2f} GFLOP = "
            f"{gflop / act_s / peak:.2f} of peak")


if __name__ == "__main__":
    main()
