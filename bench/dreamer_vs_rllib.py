"""Our Dreamer through our topology against RLlib's DreamerV3 (torch, the one in our Ray), side by
side on this machine: the same DeepMind Control task through our env adapter (registered for
RLlib), the same env-step budget, the same replayed rows per env step (RLlib's training_ratio =
our samples_per_insert) and B x T, and comparable model sizes (parameters printed for both).

Reported per run: env steps per second of training (evaluation excluded where the framework
lets us), learner updates per second, and the evaluation return (mean of --eval-episodes
episodes, deterministic actions) at each --eval-every env steps; one table in --out.

Usage: .venv/bin/python bench/dreamer_vs_rllib.py [--steps 10000] [--eval-every 2500]
           [--eval-episodes 5] [--ratio 64] [--seed 0] [--size XS|mini] [--only ours|rllib]
           [--task dmc:cartpole-swingup] [--action-repeat 2] [--device auto|cpu|cuda]
           [--out bench/results/dreamer-vs-rllib] [--runs bench/out/dreamer-vs-rllib]

--device cuda puts both learners on the GPU (ours: learner.device; RLlib: one GPU for its
local learner); run it there at V3's train ratio (--ratio 512).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

TASK, REPEAT = "dmc:cartpole-swingup", 2  # the defaults of --task and --action-repeat
SIZES = {  # --size: RLlib's model_size and ours at the same widths, sequences and rates
    # XS: DreamerV3's smallest published size, its sequences (16 x 64), horizon and rates
    "XS": {"B": 16, "T": 64, "H": 15, "width": 256, "stoch": 32, "classes": 32,
           "world_model_lr": 1e-4, "actor_lr": 3e-5, "critic_lr": 3e-5},
    # mini: RLlib's debug size (GRU and dense 64, 16 x 16 categoricals) = our dreamer-pendulum
    # preset's widths, with its sequences (16 x 32), horizon 10 and rates (10x V3's): the CPU
    # size at which our V3 heads balance InvertedPendulum (docs/results.md)
    "mini": {"B": 16, "T": 32, "H": 10, "width": 64, "stoch": 16, "classes": 16,
             "world_model_lr": 1e-3, "actor_lr": 3e-4, "critic_lr": 3e-4},
}


def rows_per_update(size: str) -> int:
    """B x T: RLlib fills its buffer with one batch's steps before training; ours as many."""
    return SIZES[size]["B"] * SIZES[size]["T"]


def rows_per_step_after_warmup(updates: int, env_steps: int, size: str = "XS") -> float:
    """Replayed rows per env step after the warm-up, from an update count (issue 44: matched
    within 2% across the two sides)."""
    rows = rows_per_update(size)
    return updates * rows / max(env_steps - rows, 1)


def our_overrides(args) -> list[str]:
    """Our Dreamer with DreamerV3's heads (dreamer.version=v3) at RLlib's --size (XS: GRU 256,
    32 x 32 categorical latent, 256-wide MLPs), the size's learning rates, with our
    samples-per-insert = RLlib's training_ratio."""
    z = SIZES[args.size]
    return [
        f"env.id={args.task}", f"env.action_repeat={args.action_repeat}", "env.obs=state",
        "dreamer.version=v3",
        "rssm.latent=categorical", f"rssm.stoch={z['stoch']}", f"rssm.classes={z['classes']}",
        f"rssm.deter={z['width']}", f"rssm.hidden={z['width']}",
        f"rssm.mlp_hidden={z['width']}", "rssm.mlp_layers=2", f"rssm.batch_size={z['B']}",
        f"rssm.seq_len={z['T']}", f"rssm.lr={z['world_model_lr']}", "rssm.eps=1e-8",
        "rssm.free_nats=1.0", "rssm.kl_balance=0.0", "rssm.kl_scale=1.0", "rssm.grad_clip=1000",
        "rssm.explore_noise=0.0",
        "model.termination=false", f"dreamer.horizon={z['H']}", f"dreamer.hidden={z['width']}",
        "dreamer.layers=2", f"dreamer.actor_lr={z['actor_lr']}",
        f"dreamer.critic_lr={z['critic_lr']}",
        "dreamer.gamma=0.997", f"train.steps={args.steps}", f"train.seed={args.seed}",
        f"train.samples_per_insert={args.ratio}",
        f"train.random_steps={rows_per_update(args.size)}",
        # No updates owed for the warm-up: RLlib keeps its ratio per train() call and does not
        # catch up on its warm-up steps (1 update at 512 env steps at mini; 437 = (8,000 -
        # 1,024) x 64 / 1,024 + 1 at XS), so both replay the ratio after the warm-up.
        "train.pretrain_updates=0",
        # Collect chunks of 25 steps: a worker runs up to two chunks ahead of the limiter's
        # backpressure and the final evaluation does not wait, so 250-step chunks left the
        # learner 264 updates (7%) short at the end (pilot, mini); 25 keep it within ~1%.
        "train.steps_per_round=25",
        "train.updates_per_round=20", f"train.spi_error_buffer={20 * rows_per_update(args.size)}",
        "train.eval_max_lag=0",  # each evaluation waits for the updates due at its step
        f"train.eval_every={args.eval_every}", f"train.eval_episodes={args.eval_episodes}",
        "workers.num=1", "workers.num_cpus=1", "learner.num_cpus=1",
        f"learner.device={args.device}",
    ]


def run_ours(args) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mbrl_ray.agents import make_learner
    from mbrl_ray.config import apply_overrides, load_preset
    from mbrl_ray.distributed.driver import Driver
    from mbrl_ray.envs import env_kwargs, env_spec

    cfg = apply_overrides(load_preset("dreamer-pendulum"), our_overrides(args))
    t0 = time.perf_counter()
    run_dir = args.runs / f"ours-seed{args.seed}"
    result = Driver(cfg, run_dir, printer=lambda *a, **k: None).run()
    wall = time.perf_counter() - t0
    acc = EventAccumulator(str(result.run_dir / "tb"))
    acc.Reload()
    evals = [(e.step, e.value) for e in acc.Scalars("eval/episodic_return")]
    behind = [(e.step, e.value) for e in acc.Scalars("eval/updates_behind")]
    updates = learner_updates(result.run_dir, result.env_steps)
    train_s = sum(e.value for e in acc.Scalars("perf/train_s"))
    agent = make_learner(env_spec(cfg.env.id, **env_kwargs(cfg.env)), cfg)
    params = sum(p.numel() for m in (agent.model, agent.behaviour.actor, agent.behaviour.critic)
                 for p in m.parameters())
    return {"name": "ours", **setting(args), "params": params, "env_steps": result.env_steps,
            "wall_s": wall,
            "env_steps_per_s": result.env_steps / wall, "updates": updates,
            "updates_per_s": updates / max(train_s, 1e-9), "evals": evals,
            "rows_per_step_after_warmup": rows_per_step_after_warmup(updates, result.env_steps,
                                                                     args.size),
            "updates_behind_at_evals": behind}


def learner_updates(run_dir: Path, env_steps: int) -> int:
    """The updates our learner took, counted by the learner itself: the agent's update count
    in the run's last checkpoint, which must be the end of the run. (An estimate from the
    limiter's logged ratio, samples_per_insert x env steps / (B T), counts the warm-up rows,
    which the ratio does not, and the ratio's last logged value is stale: it gave 466 where
    the learner took about 392-410; issue 44.)"""
    import torch

    from mbrl_ray.distributed import checkpoint

    last = checkpoint.latest(run_dir)
    if last is None or checkpoint.read_counters(last)["env_steps"] != env_steps:
        raise RuntimeError(f"{run_dir}: no checkpoint at the run's end ({env_steps} env steps)")
    state = torch.load(last / "learner.pt", map_location="cpu", weights_only=True)
    return int(state["agent"]["updates"])


def run_rllib(args) -> dict:
    from ray.rllib.algorithms.dreamerv3 import DreamerV3Config
    from ray.tune.registry import register_env

    from mbrl_ray.envs import make_env

    z = SIZES[args.size]
    register_env("mbrl_dmc", lambda c: make_env(args.task, seed=c.get("seed", 0),
                                                action_repeat=args.action_repeat))
    config = (DreamerV3Config()
              .environment("mbrl_dmc", env_config={"seed": args.seed})
              # RLlib trains until replayed / last-sampled >= ratio: with its default
              # fragment of 1 step that is one B x T update per env step whatever the ratio
              # (measured: 130 updates in 130 steps at ratio 64), so sample B x T / ratio.
              .env_runners(num_env_runners=0, num_envs_per_env_runner=1,
                           rollout_fragment_length=max(1, round(z["B"] * z["T"] / args.ratio)))
              .learners(num_learners=0,
                        num_gpus_per_learner=1 if args.device == "cuda" else 0)
              .training(model_size=args.size, training_ratio=args.ratio,
                        batch_size_B=z["B"], batch_length_T=z["T"], horizon_H=z["H"],
                        world_model_lr=z["world_model_lr"], actor_lr=z["actor_lr"],
                        critic_lr=z["critic_lr"])
              .debugging(seed=args.seed))
    t_start = time.perf_counter()  # the whole run, as ours: build, training, evaluations
    algo = config.build_algo()
    module = algo.get_module()
    # trained parameters: not the critic's EMA copy (requires_grad off); its continue head is
    # trained (ours runs without one: model.termination=false), so counted apart
    params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    continue_params = sum(p.numel() for p in
                          module.dreamer_model.world_model.continue_predictor.parameters())
    steps, evals, train_s, updates = 0, [], 0.0, 0
    next_eval = args.eval_every
    while steps < args.steps:
        t0 = time.perf_counter()
        result = algo.train()
        train_s += time.perf_counter() - t0
        steps = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
        updates = int(result.get("num_grad_updates_lifetime", 0))
        print(f"rllib: {steps} env steps, {updates} updates, {train_s:.0f} s", flush=True)
        if steps >= next_eval:
            evals.append((steps, rllib_eval(module, args)))
            next_eval += args.eval_every
    algo.stop()
    wall = time.perf_counter() - t_start
    return {"name": f"rllib DreamerV3 ({args.size})", **setting(args), "params": params,
            "continue_params": continue_params,
            "env_steps": steps, "wall_s": wall, "train_s": train_s,
            "env_steps_per_s": steps / wall, "updates": updates,
            "updates_per_s": updates / train_s, "evals": evals,
            "rows_per_step_after_warmup": rows_per_step_after_warmup(updates, steps, args.size),
            # evaluated between train() calls: its newest weights, no updates outstanding
            "updates_behind_at_evals": [(s, 0.0) for s, _ in evals]}


def setting(args) -> dict:
    """What a run's JSON records of the bench's settings (the summary reads them)."""
    return {"task": args.task, "action_repeat": args.action_repeat, "size": args.size,
            "ratio": args.ratio,
            "device": args.device, "eval_episodes": args.eval_episodes}


def rllib_eval(module, args) -> float:
    """Mean return of deterministic episodes (the actor's mode) with the RL module's dreamer
    model, its recurrent state carried and reset per episode (fresh env seeds)."""
    import numpy as np
    import torch

    from mbrl_ray.envs import make_env

    env = make_env(args.task, seed=10_000 + args.seed, action_repeat=args.action_repeat)
    returns = []
    for _ in range(args.eval_episodes):
        obs, _ = env.reset()
        state = {k: v[None] for k, v in module.get_initial_state().items()}
        is_first, done, ret = 1.0, False, 0.0
        while not done:
            with torch.no_grad():  # the model's own step: states (B, ...); observations
                # (B, T=1, ...), as its env runner passes them (the encoder folds B x T)
                action, state = module.dreamer_model.forward_inference(
                    observations=torch.as_tensor(obs, dtype=torch.float32)[None, None],
                    previous_states=state, is_first=torch.tensor([is_first]))
            action = np.clip(action.reshape(-1).numpy(), -1.0, 1.0).astype(np.float32)
            obs, reward, term, trunc, _ = env.step(action)
            ret += reward
            is_first, done = 0.0, term or trunc
        returns.append(ret)
    env.close()
    return float(np.mean(returns))


def table(rows: list[dict]) -> str:
    lines = ["| run | trained params | env steps | env steps/s | learner updates | updates/s | "
             "rows replayed per env step after warm-up | most updates behind at an evaluation "
             "| eval return (env steps: return) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        evals = ", ".join(f"{s}: {v:.1f}" for s, v in r["evals"])
        behind = max((v for _, v in r.get("updates_behind_at_evals", [])), default=float("nan"))
        lines.append(f"| {r['name']} | {r['params']:,} | {r['env_steps']:,} | "
                     f"{r['env_steps_per_s']:.1f} | {r['updates']:.0f} | "
                     f"{r['updates_per_s']:.2f} | "
                     f"{r.get('rows_per_step_after_warmup', float('nan')):.1f} | {behind:.1f} | "
                     f"{evals} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--eval-every", type=int, default=2500)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--ratio", type=float, default=64.0,
                        help="replayed rows per env step (RLlib training_ratio)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task", default=TASK, help="an env id our adapter makes (both sides)")
    parser.add_argument("--action-repeat", type=int, default=REPEAT)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="both learners' device (auto: ours picks a GPU when present, "
                        "RLlib stays on CPU)")
    parser.add_argument("--size", choices=sorted(SIZES), default="XS",
                        help="both sides' widths, sequences, horizon and rates (SIZES)")
    parser.add_argument("--only", choices=("ours", "rllib"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/dreamer-vs-rllib"),
                        help="the table and per-run summaries")
    parser.add_argument("--runs", type=Path, default=Path("bench/out/dreamer-vs-rllib"),
                        help="our run directory (checkpoints, TensorBoard log; not committed)")
    args = parser.parse_args()
    sides = [(args.out / f"{name}-seed{args.seed}.json", fn)
             for name, fn in (("ours", run_ours), ("rllib", run_rllib))
             if args.only in (None, name)]
    held = [str(path) for path, _ in sides if path.exists()]
    if held:  # a measured run is not replaced by a re-run
        raise SystemExit(f"--seed {args.seed}: {', '.join(held)} already measured; choose "
                         "another --seed or --out")
    args.out.mkdir(parents=True, exist_ok=True)
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    for path, fn in sides:
        rows.append(fn(args))
        path.write_text(json.dumps(rows[-1]))
    text = (f"{args.task} (state), action repeat {args.action_repeat}, {args.steps:,} env "
            f"steps, size {args.size}, B x T = {SIZES[args.size]['B']} x "
            f"{SIZES[args.size]['T']}, {args.ratio:g} replayed rows per env step, seed "
            f"{args.seed}, device {args.device}, "
            f"{args.eval_episodes} evaluation episodes per point\n\n{table(rows)}\n")
    (args.out / f"table-seed{args.seed}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
