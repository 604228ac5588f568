"""DC-MPC side by side with the authors' own code (aidanscannell/dcmpc, ICLR 2025) at identical
settings, on this machine: dmc cartpole-swingup, one seed after another, each side as its own
command.

- The authors' `train.py` runs from a checkout given with --reference-dir (bring it with the
  search tool's `fetch` or `git clone`; nothing of theirs is committed here) in its own venv,
  made here on first use from the registry (VENV_RECIPE: their environment.yml's pins where
  they install on Python 3.11, what changed said there). bench/reference/dcmpc_authors.py
  drives it and records its evaluations and updates.
- Ours runs `mbrl-ray train` on the size's preset with the same settings as overrides
  (`our_overrides`) through the real topology (a rollout worker, the learner, replay), the
  authors' quirks switched on to match: 1-step targets without gamma, one noise draw shared by
  the policy's sequences in MPPI, noise decay from the end of pre-training, the reward head
  bounded to [0, action repeat].

Shared (SIZES; `cpu` is our dcmpc-cartpole-swingup-quick preset, `paper` the paper's numbers):
latent slots and FSQ levels, encoder and MLP widths, batch, MPPI samples (theirs count the
policy's sequences among num_samples), elites, iterations, horizon 3, the exploration noise
1.0 -> 0.1 over the same updates (theirs steps once per 500-step episode, ours per update),
random episodes and as many pre-training updates, one update per agent step, action repeat 2,
evaluations every --eval-every agent steps of --eval-episodes episodes on which training waits.

Usage: .venv/bin/python bench/vs_dcmpc_authors.py --reference-dir CHECKOUT [--seeds 0 1 2]
           [--steps 6000] [--size cpu|paper] [--eval-every 1000] [--eval-episodes 4]
           [--sides authors ours] [--device cpu|cuda] [--venv bench/out/venvs/dcmpc-authors]
           [--out bench/results/vs-dcmpc-authors] [--runs bench/out/vs-dcmpc-authors]
then bench/vs_dcmpc_authors_summary.py pools the per-run JSON into summary.md and curves.png.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from vs_mbrl_lib import ensure_venv  # bench/ is the script's sys.path[0]

ROOT = Path(__file__).resolve().parents[1]
EPISODE = 500  # agent steps per episode: 1,000 simulator steps at action repeat 2
SIZES = {
    "cpu": {"preset": "dcmpc-cartpole-swingup-quick", "latent": 16, "encoder": 128,
            "hidden": 128, "batch": 128, "population": 128, "prior": 8, "elites": 16,
            "iterations": 3, "decay_episodes": 6, "random_episodes": 2},
    "paper": {"preset": "dcmpc-cartpole-swingup", "latent": 512, "encoder": 256,
              "hidden": 512, "batch": 512, "population": 488, "prior": 24, "elites": 64,
              "iterations": 6, "decay_episodes": 50, "random_episodes": 10},
}
VENV_RECIPE = [  # environment.yml's pins, on Python 3.11 from the registry. Changed: torch
    # 2.4.1 (theirs: 2.4, overridden per machine); torchrl's C++ part, built for torch 2.3,
    # does not load (only prioritized replay needs it: they sample slices); Meta-World v2 (a
    # git commit) and MyoSuite are not installed (the driver's stand-ins); no W&B service.
    ["pip", "install", "torch==2.4.1"],
    ["pip", "install", "tensordict==0.4.0", "torchrl==0.4.0", "numpy==1.26.4",
     "hydra-core==1.3.2", "hydra-submitit-launcher==1.2.0", "hydra-colorlog==1.2.0",
     "wandb==0.16.6", "termcolor", "jaxtyping", "einops", "vector_quantize_pytorch==1.20.11",
     "dm_control==1.0.16", "mujoco==3.1.2", "gymnasium", "torch==2.4.1"],
]
# The paper's cartpole-swingup curve, the authors' results/data/dmc-dcmpc.csv (5 seeds, paper
# size, GPU): simulator steps -> the seeds' evaluation returns. An anchor, not like for like.
PUBLISHED = {0: [117, 80, 180, 72, 174], 25_000: [292, 547, 300, 297, 368],
             50_000: [583, 673, 534, 693, 369]}


def authors_overrides(s: dict, a: argparse.Namespace, seed: int, run_dir: Path) -> list[str]:
    return [
        "env=cartpole-swingup", f"device={a.device}", f"seed={seed}", "action_repeat=2",
        f"num_episodes={a.steps // EPISODE}", f"random_episodes={s['random_episodes']}",
        f"eval_every_episodes={a.eval_every // EPISODE}", f"num_eval_episodes={a.eval_episodes}",
        f"agent.latent_dim={s['latent']}", f"agent.enc_mlp_dims=[{s['encoder']}]",
        f"agent.mlp_dims=[{s['hidden']},{s['hidden']}]", f"agent.batch_size={s['batch']}",
        f"agent.num_samples={s['population'] + s['prior']}", f"agent.num_pi_trajs={s['prior']}",
        f"agent.num_elites={s['elites']}", f"agent.iterations={s['iterations']}",
        f"agent.exploration_noise_num_steps={s['decay_episodes']}", f"hydra.run.dir={run_dir}",
    ]


def our_overrides(s: dict, a: argparse.Namespace, seed: int) -> list[str]:
    random_steps = s["random_episodes"] * EPISODE
    return [
        f"dcmpc.latent_dim={s['latent']}", f"dcmpc.encoder_hidden={s['encoder']}",
        f"dcmpc.hidden_size={s['hidden']}", f"dcmpc.batch_size={s['batch']}",
        f"dcmpc.explore_decay_updates={s['decay_episodes'] * EPISODE}",
        "dcmpc.explore_decay_from=pretrain_end", "dcmpc.one_step_discount=one",
        "dcmpc.prior_noise=shared", "dcmpc.reward_range=[0,2]", "dcmpc.nstep=1",
        f"planner.population={s['population']}", f"planner.prior_samples={s['prior']}",
        f"planner.num_elites={s['elites']}", f"planner.iterations={s['iterations']}",
        f"train.steps={a.steps}", f"train.seed={seed}", f"train.random_steps={random_steps}",
        f"train.pretrain_updates={random_steps}",
        f"train.samples_per_insert={s['batch'] * 6}",  # one update per step: B x (horizon + 1)
        f"train.eval_every={a.eval_every}", f"train.eval_episodes={a.eval_episodes}",
        "train.eval_wait=true", f"learner.device={a.device}", f"workers.device={a.device}",
        # Theirs evaluate after all of an episode's updates. Ours: each evaluation waits for
        # the updates due at its step, and the worker runs at most 25-step chunks and 20
        # updates ahead of the learner (the final evaluation does not wait): the preset's
        # 250-step chunks and 260-update slack left ours 750 updates short at 6,000 (pilot).
        "train.eval_max_lag=0", "train.steps_per_round=25", "train.updates_per_round=20",
        f"train.spi_error_buffer={20 * s['batch'] * 6}",
    ]


def run_authors(python: Path, s: dict, a: argparse.Namespace, seed: int) -> dict:
    run_dir = a.runs / f"authors-seed{seed}-{int(time.time())}"
    raw_path = run_dir.with_suffix(".raw.json")
    launched = time.time()
    subprocess.run([str(python), str(ROOT / "bench/reference/dcmpc_authors.py"),
                    "--reference-dir", str(a.reference_dir), "--out", str(raw_path), "--",
                    *authors_overrides(s, a, seed, run_dir)], check=True)
    return authors_record(json.loads(raw_path.read_text()), seed, launched,
                          time.time() - launched, a.steps)


def authors_record(raw: dict, seed: int, launched: float, wall: float, steps: int) -> dict:
    """The driver's record as a run: evaluations (agent steps, mean return, seconds from
    launch to its end, the episodes' returns, its own seconds)."""
    return {"side": "authors", "seed": seed, "wall_s": wall, "agent_steps": steps,
            "updates": raw["updates"], "update_s": raw["update_s"],
            "eval_s": sum(e["eval_s"] for e in raw["evals"]),
            "evals": [(e["step"], e["mean"], e["end_unix"] - launched, e["returns"],
                       e["eval_s"]) for e in raw["evals"]]}


def run_ours(s: dict, a: argparse.Namespace, seed: int) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from dreamer_vs_rllib import learner_updates  # bench/ is the script's sys.path[0]

    run_dir = a.runs / f"ours-seed{seed}-{int(time.time())}"
    launched = time.time()
    subprocess.run([sys.executable, "-m", "mbrl_ray.cli", "train", s["preset"],
                    "--run-dir", str(run_dir), *our_overrides(s, a, seed)], check=True)
    wall = time.time() - launched
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    seconds = {e.step: e.value for e in acc.Scalars("eval/seconds")}
    return {"side": "ours", "seed": seed, "wall_s": wall, "agent_steps": a.steps,
            "updates": learner_updates(run_dir, a.steps), "eval_s": sum(seconds.values()),
            "run_dir": str(run_dir),
            "evals": [(e.step, e.value, e.wall_time - launched, None, seconds.get(e.step))
                      for e in acc.Scalars("eval/episodic_return")]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference-dir", type=Path, help="a checkout of aidanscannell/dcmpc")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=6000, help="agent steps (x2 simulator steps)")
    ap.add_argument("--size", choices=sorted(SIZES), default="cpu")
    ap.add_argument("--eval-every", type=int, default=1000, help="agent steps, a multiple of "
                    f"{EPISODE} (their evaluations fall between episodes)")
    ap.add_argument("--eval-episodes", type=int, default=4)
    ap.add_argument("--sides", nargs="+", default=["authors", "ours"],
                    choices=["authors", "ours"])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--venv", type=Path, default=ROOT / "bench/out/venvs/dcmpc-authors")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/vs-dcmpc-authors")
    ap.add_argument("--runs", type=Path, default=ROOT / "bench/out/vs-dcmpc-authors")
    a = ap.parse_args()
    if a.steps % EPISODE or a.eval_every % EPISODE:
        ap.error(f"--steps={a.steps} and --eval-every={a.eval_every} must be multiples of "
                 f"{EPISODE} agent steps (one episode)")
    if "authors" in a.sides and not (a.reference_dir and (a.reference_dir / "train.py").exists()):
        ap.error(f"--reference-dir={a.reference_dir}: give a checkout of aidanscannell/dcmpc "
                 "(the folder holding its train.py)")
    a.reference_dir = a.reference_dir and a.reference_dir.resolve()
    s = SIZES[a.size]
    settings = {**s, "size": a.size, "steps": a.steps, "eval_every": a.eval_every,
                "eval_episodes": a.eval_episodes, "device": a.device}
    held = [str(a.out / f"{side}-seed{seed}.json") for seed in a.seeds for side in a.sides
            if (a.out / f"{side}-seed{seed}.json").exists()]
    if held:  # a measured run is not replaced by a re-run
        raise SystemExit(f"{', '.join(held)} already measured; choose other --seeds or --out")
    a.out.mkdir(parents=True, exist_ok=True)
    a.runs.mkdir(parents=True, exist_ok=True)
    python = ensure_venv(a.venv, VENV_RECIPE) if "authors" in a.sides else None
    for seed in a.seeds:  # sides alternate within a seed: machine drift hits both alike
        for side in a.sides:
            result = (run_authors(python, s, a, seed) if side == "authors"
                      else run_ours(s, a, seed))
            result["settings"] = settings
            path = a.out / f"{side}-seed{seed}.json"
            path.write_text(json.dumps(result, indent=1) + "\n")
            print(f"{side} seed {seed}: {result['wall_s']:.0f} s, {result['updates']} updates, "
                  f"evaluations {[round(e[1]) for e in result['evals']]} -> {path}", flush=True)


if __name__ == "__main__":
    main()
