"""`mbrl-ray eval RUN_DIR`: a run's checkpoint evaluated for N episodes on Ray actors in parallel,
reading the run directory only.

The checkpoint (the newest usable one, or --checkpoint STEP) is verified as a resume verifies
it, against an agent built on CPU from the run's config with the overrides given (another env
variant, say): a checkpoint that does not fit is refused with one line. Actors act on
workers.device, or on CPU where this machine lacks the run's GPU. Episode e is seeded like the
run's evaluations: by default the stream of the checkpoint's last evaluation (so the final
checkpoint repeats the run's final evaluation; exactly so for agents that act without noise),
with --seed S the first evaluation stream of a run seeded S."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from mbrl_ray.config import Config, ConfigError, apply_overrides, check_machine, validate
from mbrl_ray.config.machine import local_gpu_count
from mbrl_ray.run_dir import check_writable, load_run_config

SUMMARY = "eval.json"
VIDEO = "video.gif"


@dataclass
class Request:
    run_dir: Path
    checkpoint: int | None = None
    episodes: int = 10
    seed: int | None = None
    video: bool = False
    out: Path | None = None
    overrides: tuple[str, ...] = ()


def checked_config(req: Request) -> Config:
    """The run's config with the overrides, on devices this machine has; every check that needs
    neither torch nor Ray, nothing written."""
    cfg = load_run_config(req.run_dir)
    cfg = apply_overrides(cfg, list(req.overrides))
    if req.episodes < 1:
        raise ConfigError(f"--episodes {req.episodes}: must be a positive count")
    if req.seed is not None:
        cfg = apply_overrides(cfg, [f"train.seed={req.seed}"])
    if local_gpu_count() == 0 and cfg.workers.device.startswith("cuda"):
        cfg = apply_overrides(cfg, ["workers.device=cpu"])
    cfg = apply_overrides(cfg, ["learner.device=cpu", "learner.num_gpus=0"])
    if req.out is not None:
        if req.out.resolve().is_relative_to(req.run_dir.resolve()):
            raise ConfigError(f"--out {str(req.out)!r} lies inside the run dir; eval writes "
                              "nothing into a run: choose a folder outside it")
        if req.out.exists() and not req.out.is_dir():
            raise ConfigError(f"--out {str(req.out)!r} is a file, not a folder")
        check_writable(req.out, "--out", "choose another --out")
    return check_machine(validate(cfg))


def choose_checkpoint(req: Request, agent, warn) -> Path:
    """The checkpoint asked for (or the newest usable), verified and loaded into `agent`."""
    from mbrl_ray.distributed import checkpoint

    def step(path: Path) -> int:
        return int(checkpoint.NAME.fullmatch(path.name).group(1))

    done = checkpoint.committed(req.run_dir)
    if req.checkpoint is not None:
        done = [p for p in done if step(p) == req.checkpoint]
        if not done:
            steps = [step(p) for p in checkpoint.committed(req.run_dir)]
            raise ConfigError(f"--checkpoint {req.checkpoint}: no such checkpoint in "
                              f"{req.run_dir}; it has {', '.join(map(str, steps)) or 'none'}")
    skipped = []
    for path in reversed(done):
        found = checkpoint.problem(path, agent.load_state_dict)
        if found is None:
            for name, why in skipped:
                warn(f"warning: checkpoint {name} is unusable ({why}); evaluating {path.name}")
            return path
        skipped.append((path.name, found))
    if not skipped:
        raise ConfigError(f"run dir {str(req.run_dir)!r} holds no checkpoint")
    name, why = skipped[0]
    raise ConfigError(f"checkpoint {name} cannot be evaluated: {why}"
                      + (f" (nor the {len(skipped) - 1} before it)" if len(skipped) > 1 else ""))


def episode_stream(cfg: Config, req: Request, counters: dict) -> tuple[int, int]:
    """(evaluator seed, evaluation index k): with --seed S the first evaluation of a run seeded
    S, else the checkpoint's last evaluation (its counters' resumes and evals; for a checkpoint
    taken after a resume but before that resume's first evaluation, a stream the run never
    played)."""
    from mbrl_ray import seeding
    if req.seed is not None:
        return seeding.evaluator_seed(req.seed), 1
    return (seeding.evaluator_seed(cfg.train.seed, counters["resumes"]),
            max(1, counters["evals"]))


def run(req: Request, printer=print, cfg: Config | None = None) -> dict:
    """Evaluate; print and return the summary (written under req.out when given). cfg:
    checked_config(req) when the caller already has it."""
    import torch

    from mbrl_ray.agents import agent_class, make_learner
    from mbrl_ray.distributed import checkpoint
    from mbrl_ray.envs import check_env_spec, env_kwargs, env_spec

    cfg = cfg or checked_config(req)
    check_env_spec(cfg.env.id, cfg.env.max_episode_steps)
    spec = env_spec(cfg.env.id, **env_kwargs(cfg.env))
    agent_class(cfg).check_config(cfg, spec)
    agent = make_learner(spec, cfg, torch.device("cpu"), seed=cfg.train.seed)
    path = choose_checkpoint(req, agent, printer)
    weights = agent.inference_weights()
    if weights is None:
        printer(f"warning: checkpoint {path.name} was taken before the first update: the "
                "agent acts at random")
    counters = checkpoint.read_counters(path)
    stream = episode_stream(cfg, req, counters)
    results = _play(cfg, spec, weights, stream, req)
    summary = _summary(req, path, counters, stream, results)
    printer(_describe(summary))
    _write(req, summary, results[0].get("video"))
    return summary


def _play(cfg: Config, spec, weights, stream: tuple[int, int], req: Request) -> list[dict]:
    """req.episodes split over one actor per CPU of the Ray this process joins or starts;
    episode e on env seed evaluation_env_seed(*stream) + e; share i's agent seeded apart."""
    import numpy as np
    import ray

    from mbrl_ray import seeding
    from mbrl_ray.distributed.preflight import init_ray
    from mbrl_ray.distributed.rollout_worker import EvalActor

    evaluator, k = stream
    base = seeding.evaluation_env_seed(evaluator, k)
    agent_seed = seeding.derive(evaluator, seeding.AGENT)
    init_ray(cfg)
    shared = ray.put(weights)
    cpus = max(1, int(ray.available_resources().get("CPU", 1)))
    parts = np.array_split(np.arange(req.episodes), min(cpus, req.episodes))
    actors = [EvalActor.options(num_cpus=1).remote(
        cfg, spec, agent_seed if i == 0 else seeding.derive(agent_seed, i))
        for i in range(len(parts))]
    try:
        return ray.get([a.episodes.remote(shared, base + int(p[0]), len(p),
                                          cfg.train.video_size if req.video and i == 0 else 0)
                        for i, (a, p) in enumerate(zip(actors, parts))])
    finally:
        for actor in actors:
            ray.kill(actor)


def _summary(req: Request, path: Path, counters: dict, stream: tuple[int, int],
             results: list[dict]) -> dict:
    from mbrl_ray.compare import mean_and_half_width

    returns = [r for res in results for r in res["returns"]]
    successes = [s for res in results for s in res["successes"]]
    mean, half = mean_and_half_width(returns)
    return {"run_dir": str(req.run_dir), "checkpoint": path.name,
            "env_steps": counters["env_steps"], "episodes": len(returns),
            "seed": req.seed, "overrides": list(req.overrides),
            "evaluator_seed": stream[0], "evaluation_index": stream[1],
            "mean_return": mean, "ci95_half_width": None if math.isnan(half) else half,
            "min_return": min(returns), "max_return": max(returns), "returns": returns,
            "success_rate": sum(successes) / len(successes) if successes else None}


def _write(req: Request, summary: dict, video) -> None:
    if req.out is None:
        return
    req.out.mkdir(parents=True, exist_ok=True)
    (req.out / SUMMARY).write_text(json.dumps(summary, indent=1))
    if video is not None:
        (req.out / VIDEO).write_bytes(video[0])


def _describe(s: dict) -> str:
    half = "" if s["ci95_half_width"] is None else f" ± {s['ci95_half_width']:.2f}"
    line = (f"{s['checkpoint']} ({s['env_steps']} env steps): return {s['mean_return']:.2f}"
            f"{half} (95% t interval) over {s['episodes']} episodes, min "
            f"{s['min_return']:.2f}, max {s['max_return']:.2f}")
    if s["success_rate"] is not None:
        line += f", success rate {s['success_rate']:.2f}"
    return line
