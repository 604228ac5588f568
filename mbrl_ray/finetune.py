"""`mbrl-ray finetune RUN_DIR`: MBMF's third phase on an mbmf run whose imitation policy has
taken over acting: RLlib's PPO fine-tunes that policy (agents/mbmf_ppo.py) for
`mbmf.finetune_steps` (or --steps) env steps. `mbrl-ray train` runs it after training when the
config asks for fine-tuning steps.

The run's files stay as they are; fine-tuning adds TensorBoard points under tb/finetune-<k>/
(TensorBoard shows it as a run of its own; steps continue from the checkpoint's env steps, so
the phase reads on the step axis) and finetune-<k>/ with result.json and policy.pt, k the first
number not taken. Evaluations follow the run's protocol (`train.eval_episodes` episodes of the
policy's mean on fresh envs), first of the policy handed over, then every `train.eval_every` env
steps and at the end, on an episode stream the run's evaluator never plays."""
from __future__ import annotations

import json
from pathlib import Path

from mbrl_ray.config import Config, ConfigError, apply_overrides, validate
from mbrl_ray.run_dir import RunDirLock, check_writable, load_run_config

RESULT, POLICY = "result.json", "policy.pt"
EVAL_STREAM = 1_000_000  # evaluation index of the first fine-tuning evaluation (see docstring)


def checked_config(run_dir: Path, steps: int | None) -> Config:
    """The run's config set for fine-tuning on CPU; every check that needs neither torch nor
    Ray, nothing written."""
    cfg = load_run_config(run_dir)
    if cfg.agent.name != "mbmf":
        raise ConfigError(f"run dir {str(run_dir)!r} trained agent.name={cfg.agent.name!r}; "
                          "finetune continues an mbmf run (MBMF's model-free phase)")
    steps = cfg.mbmf.finetune_steps if steps is None else steps
    if steps < 1:
        raise ConfigError(f"--steps {steps}: give a positive number of env steps to fine-tune "
                          f"for (the run's mbmf.finetune_steps is {cfg.mbmf.finetune_steps})")
    check_writable(run_dir)
    return validate(apply_overrides(cfg, [f"mbmf.finetune_steps={steps}", "learner.device=cpu",
                                          "workers.device=cpu"]))


def free_name(run_dir: Path) -> str:
    """finetune-<k> with k the first number taken neither under run_dir nor under its tb/."""
    k = 1
    while (run_dir / f"finetune-{k}").exists() or (run_dir / "tb" / f"finetune-{k}").exists():
        k += 1
    return f"finetune-{k}"


def run(run_dir: Path, cfg: Config, printer=print) -> dict:
    """Fine-tune (see the module docstring); return and write the summary."""
    lock = RunDirLock(run_dir)
    try:
        return _finetune(run_dir, cfg, printer)
    finally:
        lock.release()


def _finetune(run_dir: Path, cfg: Config, printer) -> dict:
    from mbrl_ray import seeding
    from mbrl_ray.agents.mbmf_ppo import policy_weights, train_ppo
    from mbrl_ray.distributed.preflight import init_ray
    from mbrl_ray.telemetry.tensorboard import TBLogger

    agent, checkpoint, start = _handed_over(run_dir, cfg, printer)
    name, steps = free_name(run_dir), cfg.mbmf.finetune_steps
    init_ray(cfg)
    tb = TBLogger(run_dir / "tb" / name)
    evaluate = policy_evaluator(agent, cfg, tb)
    evals = [evaluate(start)]  # the policy handed over, before any PPO step
    due = [cfg.train.eval_every]

    def on_iteration(done: int, module, result: dict) -> None:
        tb.scalars({"finetune/episode_return_mean": result.get("episode_return_mean"),
                    "finetune/std": float(module.log_std.detach().exp().mean())}, start + done)
        if done >= steps or (due[0] and done >= due[0]):
            agent.actor.load_state_dict(policy_weights(module.pi))
            evals.append(evaluate(start + done))
            printer(f"[finetune {done:>8}/{steps}] eval {evals[-1][1]:8.1f}")
            while due[0] and due[0] <= done:
                due[0] += cfg.train.eval_every

    try:
        final = train_ppo(cfg, policy_weights(agent.actor),
                          steps, seeding.derive(cfg.train.seed, seeding.SAC), on_iteration)
    finally:
        tb.writer.close()
    return _write(run_dir / name, checkpoint, start, evals[-1][0] - start, evals, final)


def _handed_over(run_dir: Path, cfg: Config, printer):
    """(the run's agent on CPU loaded from its newest usable checkpoint, that checkpoint's
    name, its env steps); refused when its imitation policy has not acted yet."""
    import torch

    from mbrl_ray.agents import make_learner
    from mbrl_ray.distributed.checkpoint import read_counters
    from mbrl_ray.envs import env_kwargs, env_spec
    from mbrl_ray.evaluate import Request, choose_checkpoint

    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    agent = make_learner(spec, cfg, torch.device("cpu"), seed=cfg.train.seed)
    path = choose_checkpoint(Request(run_dir), agent, printer)
    if not agent.imitating:
        raise ConfigError(f"checkpoint {path.name}: the imitation policy has not taken over "
                          f"yet (mbmf.imitate_from={cfg.mbmf.imitate_from}); train the run "
                          "further first")
    return agent, path.name, read_counters(path)["env_steps"]


def policy_evaluator(agent, cfg: Config, tb=None):
    """step -> (step, mean return of the agent acting without exploration), each call on the
    next episode stream from EVAL_STREAM; logged as eval/episodic_return when tb is given."""
    import numpy as np

    from mbrl_ray import seeding
    from mbrl_ray.distributed.rollout_worker import evaluation_episodes

    evaluator = seeding.evaluator_seed(cfg.train.seed)
    count = [0]

    def evaluate(step: int) -> tuple[int, float]:
        seed = seeding.evaluation_env_seed(evaluator, EVAL_STREAM + count[0])
        count[0] += 1
        ret = float(np.mean(evaluation_episodes(agent, cfg, seed,
                                                cfg.train.eval_episodes)["returns"]))
        if tb is not None:
            tb.scalars({"eval/episodic_return": ret}, step)
        return step, ret

    return evaluate


def _write(folder: Path, checkpoint: str, start: int, done: int, evals: list,
           policy: dict) -> dict:
    import torch

    folder.mkdir(parents=True, exist_ok=False)
    summary = {"checkpoint": checkpoint, "start_env_steps": start, "finetune_env_steps": done,
               "evals": evals, "handed_over_return": evals[0][1],
               "final_eval_return": evals[-1][1]}
    torch.save(policy, folder / POLICY)
    (folder / RESULT).write_text(json.dumps(summary, indent=1))
    return summary
