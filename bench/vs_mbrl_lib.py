"""PETS side by side with mbrl-lib's (the field's reference library) at identical settings, on
this machine: InvertedPendulum, one seed after another, each side as its own command.

- mbrl-lib 0.2.0 runs its own `mbrl.algorithms.pets.train` in its own venv (made here on first
  use, the recipe in VENV_RECIPE; bench/reference/mbrl_lib_pets.py drives it), on
  InvertedPendulum-v4 (its gymnasium 0.26.3), termination from its known function.
- Ours runs `mbrl-ray train pets-pendulum` with the same settings as overrides (SETTINGS,
  `our_overrides`) through the real topology (a rollout worker, the learner, replay), on
  InvertedPendulum-v5, termination learned; once more with 2 rollout workers (`--workers 2`).

Shared: the ensemble (members, widths, depth, lr, weight decay, batch, holdout, patience, epochs,
bootstrap), CEM (population, elites, iterations, momentum, initial std 0.5 of the action range,
the best sequence executed as mbrl-lib does), particles and TS-inf propagation, horizon, no
discount, 250 random steps, a refit every 250 env steps. Both sides' training episodes are the
curve (PETS acts on its plan when training): the mean return of the episodes that end in each
round of 250 env steps, and the wall-clock of that round's end from the command's launch.

Usage: .venv/bin/python bench/vs_mbrl_lib.py [--seeds 0 1 2 3 4] [--steps 5000]
           [--sides mbrl-lib ours ours-2w] [--venv bench/out/venvs/mbrl-lib]
           [--out bench/results/vs-mbrl-lib] [--runs bench/out/vs-mbrl-lib]
then bench/vs_mbrl_lib_summary.py pools the per-run JSON into summary.md and curves.png.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {  # the pets-pendulum preset's sizes, paper PETS's objective (no critic, no discount)
    "ensemble_size": 5, "num_elites": 5, "hidden_size": 64, "num_layers": 3, "lr": 1e-3,
    "weight_decay": 5e-5, "batch_size": 32, "holdout": 0.2, "patience": 5, "max_epochs": 30,
    "particles": 2, "propagation": "ts_inf", "horizon": 10, "population": 100,
    "planner_elites": 10, "iterations": 5, "alpha": 0.1, "execute": "best",
    "random_steps": 250, "steps_per_round": 250, "threads": 2,
    "env": "InvertedPendulum-v5", "reference_env": "InvertedPendulum-v4",
    "term_fn": "inverted_pendulum",
}
MBPO_SETTINGS = {  # the mbpo-pendulum preset's sizes; mbrl-lib's MBPO InvertedPendulum override
    # for the SAC (256 x 2, lr 3e-4, batch 256, target entropy -1 = -|A|, target update each
    # step) and its real-data ratio 0 (every SAC batch from model rollouts)
    **{k: SETTINGS[k] for k in ("ensemble_size", "num_elites", "hidden_size", "num_layers", "lr",
                                "weight_decay", "batch_size", "holdout", "patience",
                                "max_epochs", "random_steps", "steps_per_round", "threads",
                                "env", "reference_env", "term_fn")},
    "rollouts_per_step": 100, "rollout_length": 1, "updates_per_step": 10, "real_ratio": 0.0,
    "retain_steps": 250, "sac_hidden": 256, "sac_lr": 3e-4, "sac_batch": 256, "sac_gamma": 0.99,
    "sac_tau": 0.005, "target_entropy": -1.0, "eval_every": 250, "eval_episodes": 5,
}
UPDATES_TAG = "losses/mbpo_sac_updates"  # our MBPO learner's own count of SAC steps taken
ALGOS = {  # --algo -> (settings, our preset, mbrl-lib driver)
    "pets": (SETTINGS, "pets-pendulum", "bench/reference/mbrl_lib_pets.py"),
    "mbpo": (MBPO_SETTINGS, "mbpo-pendulum", "bench/reference/mbrl_lib_mbpo.py"),
}
VENV_RECIPE = [  # mbrl-lib's own pins conflict with each other; this set runs its code
    ["pip", "install", "-q", "torch==2.13.0"],
    ["pip", "install", "-q", "--no-deps", "mbrl==0.2.0"],
    ["pip", "install", "-q", "hydra-core==1.3.2", "omegaconf==2.3.0", "mujoco<4", "numpy<2",
     "gymnasium==0.26.3", "termcolor", "tqdm", "imageio", "matplotlib"],
]


def ensemble_overrides(s: dict) -> list[str]:
    """The env and the ensemble and its fit, shared by PETS and MBPO."""
    return [
        f"env.id={s['env']}", f"model.ensemble_size={s['ensemble_size']}",
        f"model.num_elites={s['num_elites']}", f"model.hidden_size={s['hidden_size']}",
        f"model.num_layers={s['num_layers']}", f"model.lr={s['lr']}",
        f"model.weight_decay={s['weight_decay']}", f"model.batch_size={s['batch_size']}",
        f"model.holdout={s['holdout']}", f"model.patience={s['patience']}",
        f"model.max_epochs={s['max_epochs']}", "model.bootstrap=true",
    ]


def schedule_overrides(s: dict, steps: int, seed: int, workers: int) -> list[str]:
    """Budget, seed, random steps, rounds and workers, shared by PETS and MBPO."""
    return [
        f"train.steps={steps}", f"train.seed={seed}", f"train.random_steps={s['random_steps']}",
        f"train.steps_per_round={s['steps_per_round']}", "train.schedule=sync",
        f"workers.num={workers}", "workers.envs_per_worker=1",
        f"workers.num_cpus={1 / workers:g}",  # the learner's core and one shared by the workers
    ]


def our_overrides(s: dict, steps: int, seed: int, workers: int) -> list[str]:
    return [
        *ensemble_overrides(s), f"model.particles={s['particles']}",
        f"model.propagation={s['propagation']}", "planner.name=cem",
        f"planner.horizon={s['horizon']}", f"planner.population={s['population']}",
        f"planner.num_elites={s['planner_elites']}", f"planner.iterations={s['iterations']}",
        f"planner.alpha={s['alpha']}", "planner.init_std=0.5", f"planner.execute={s['execute']}",
        "planner.discount=1.0", "planner.value_weight=0", "planner.prior_samples=0",
        "planner.prior_weight=0", *schedule_overrides(s, steps, seed, workers),
        "train.eval_every=0", "train.eval_episodes=1",
    ]


def our_mbpo_overrides(s: dict, steps: int, seed: int, workers: int) -> list[str]:
    """MBPO at the shared settings; training waits for each evaluation, as mbrl-lib's does."""
    return [
        *ensemble_overrides(s), f"mbpo.rollouts_per_step={s['rollouts_per_step']}",
        f"mbpo.rollout_length_start={s['rollout_length']}",
        f"mbpo.rollout_length_end={s['rollout_length']}",
        f"mbpo.updates_per_step={s['updates_per_step']}", f"mbpo.real_ratio={s['real_ratio']}",
        f"mbpo.retain_steps={s['retain_steps']}", f"sac.hidden_size={s['sac_hidden']}",
        "sac.num_layers=2", f"sac.lr={s['sac_lr']}", f"sac.batch_size={s['sac_batch']}",
        f"sac.gamma={s['sac_gamma']}", f"sac.tau={s['sac_tau']}", "sac.init_alpha=1.0",
        *schedule_overrides(s, steps, seed, workers), f"train.eval_every={s['eval_every']}",
        f"train.eval_episodes={s['eval_episodes']}", "train.eval_wait=true",
    ]


def ensure_venv(venv: Path, recipe: list[list[str]] = VENV_RECIPE) -> Path:
    """A reference's venv (default mbrl-lib's), made by `recipe` (pip steps) on first use;
    its python."""
    python = venv / "bin" / "python"
    if not (venv / ".recipe-done").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        for step in recipe:
            subprocess.run([str(python), "-m", *step], check=True)
        (venv / ".recipe-done").write_text(json.dumps(recipe) + "\n")
    return python


def rounds(episodes: list[tuple[int, float, float]], launched: float, every: int
           ) -> list[tuple[int, float, float]]:
    """Episodes (env steps at its end, return, unix time) -> per round of `every` env steps
    in which one ended: (round's last step, mean return, seconds since launch of the last)."""
    out: dict[int, list] = {}
    for step, ret, t in episodes:
        out.setdefault(-(-step // every) * every, []).append((ret, t))
    return [(end, sum(r for r, _ in v) / len(v), max(t for _, t in v) - launched)
            for end, v in sorted(out.items())]


def run_reference(python: Path, algo: str, seed: int, steps: int, runs: Path) -> dict:
    settings, _, driver = ALGOS[algo]
    out = runs / f"{algo}-mbrl-lib-seed{seed}.raw.json"
    launched = time.time()
    subprocess.run([str(python), str(ROOT / driver),
                    "--settings", json.dumps({**settings, "steps": steps}),
                    "--seed", str(seed), "--out", str(out)], check=True)
    run = {"side": "mbrl-lib", "seed": seed, "wall_s": time.time() - launched}
    raw = json.loads(out.read_text())
    if algo == "mbpo":
        return {**run, "env_steps": steps, "sac_updates": raw["sac_updates"],
                "rounds": [(step, ret, t - launched) for step, ret, t in raw["evals"]]}
    planned = raw["plan_s"]
    return {**run, "env_steps": raw["episodes"][-1][0],
            "rounds": rounds(raw["episodes"], launched, settings["steps_per_round"]),
            "plan_ms": 1000 * sum(planned) / len(planned)}


def run_ours(algo: str, seed: int, steps: int, runs: Path, workers: int) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    settings, preset, _ = ALGOS[algo]
    overrides = (our_mbpo_overrides if algo == "mbpo" else our_overrides)(
        settings, steps, seed, workers)
    run_dir = runs / f"{algo}-ours-{workers}w-seed{seed}-{int(time.time())}"
    launched = time.time()
    subprocess.run([sys.executable, "-m", "mbrl_ray.cli", "train", preset,
                    "--run-dir", str(run_dir), *overrides], check=True)
    run = {"side": "ours" if workers == 1 else f"ours-{workers}w", "seed": seed,
           "wall_s": time.time() - launched, "env_steps": steps, "run_dir": str(run_dir)}
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    if algo == "mbpo":
        return {**run, "sac_updates": int(acc.Scalars(UPDATES_TAG)[-1].value),
                "rounds": [(e.step, e.value, e.wall_time - launched)
                           for e in acc.Scalars("eval/episodic_return")]}
    planned = [e.value for e in acc.Scalars("perf/plan_ms")
               if e.step > settings["random_steps"]]
    return {**run, "plan_ms": sum(planned) / len(planned),
            "rounds": [(e.step, e.value, e.wall_time - launched)
                       for e in acc.Scalars("charts/episodic_return")]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--algo", choices=sorted(ALGOS), default="pets")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--sides", nargs="+", default=["mbrl-lib", "ours", "ours-2w"],
                    choices=["mbrl-lib", "ours", "ours-2w"])
    ap.add_argument("--venv", type=Path, default=ROOT / "bench/out/venvs/mbrl-lib")
    ap.add_argument("--out", type=Path, help="default bench/results/vs-mbrl-lib[-mbpo]")
    ap.add_argument("--runs", type=Path, default=ROOT / "bench/out/vs-mbrl-lib")
    args = ap.parse_args()
    args.out = args.out or ROOT / ("bench/results/vs-mbrl-lib" + (
        "-mbpo" if args.algo == "mbpo" else ""))
    settings = {**ALGOS[args.algo][0], "steps": args.steps, "algo": args.algo}
    held = [str(args.out / f"{side}-seed{seed}.json") for seed in args.seeds
            for side in args.sides if (args.out / f"{side}-seed{seed}.json").exists()]
    if held:  # a measured run is not replaced by a re-run
        raise SystemExit(f"{', '.join(held)} already measured; choose other --seeds or --out")
    args.out.mkdir(parents=True, exist_ok=True)
    args.runs.mkdir(parents=True, exist_ok=True)
    python = ensure_venv(args.venv) if "mbrl-lib" in args.sides else None
    for seed in args.seeds:  # sides alternate within a seed: machine drift hits all alike
        for side in args.sides:
            if side == "mbrl-lib":
                result = run_reference(python, args.algo, seed, args.steps, args.runs)
            else:
                result = run_ours(args.algo, seed, args.steps, args.runs,
                                  2 if side == "ours-2w" else 1)
            result["settings"] = settings
            path = args.out / f"{side}-seed{seed}.json"
            path.write_text(json.dumps(result, indent=1) + "\n")
            print(f"{args.algo} {side} seed {seed}: {result['wall_s']:.0f} s, last points "
                  f"{[round(r[1]) for r in result['rounds'][-3:]]} -> {path}", flush=True)


if __name__ == "__main__":
    main()
