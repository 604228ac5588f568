"""mbrl-ray train | resume | eval | compare | finetune | presets."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mbrl_ray.config import (Config, ConfigError, apply_overrides, iter_fields, list_presets,
                             load_preset, validate, check_machine)
from mbrl_ray.run_dir import check_new_run_dir, check_writable, load_run_config

EXIT_FAILED = 1  # the run started and stopped on a fault (a non-finite value, ...)
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def _keys_help() -> str:
    lines = ["config keys (key=value overrides; defaults before any preset):"]
    for key, value, help_text, choices in iter_fields(Config()):
        if key == "preset":
            continue
        allowed = f" [{'|'.join(choices)}]" if choices else ""
        lines.append(f"  {key}={value!r}{allowed}\n      {help_text}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mbrl-ray", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a preset", epilog=_keys_help(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("preset", help="preset name (see `mbrl-ray presets`)")
    train.add_argument("overrides", nargs="*", metavar="key.sub=value")
    train.add_argument("--run-dir", type=Path, help="default: runs/<preset>-<time>")
    train.add_argument("--steps", type=int, help="env step budget (train.steps)")
    train.add_argument("--seed", type=int, help="seed (train.seed)")
    resume = sub.add_parser("resume", help="continue a run from its newest checkpoint")
    resume.add_argument("run_dir", type=Path)
    resume.add_argument("--steps", type=int, help="raise the step budget (train.steps)")
    evaluate = sub.add_parser("eval", help="evaluate a run's checkpoint for N episodes (reads "
                              "the run dir only)")
    evaluate.add_argument("run_dir", type=Path)
    evaluate.add_argument("overrides", nargs="*", metavar="key.sub=value",
                          help="e.g. env.max_episode_steps=500 (the checkpoint must fit)")
    evaluate.add_argument("--checkpoint", type=int, metavar="STEP",
                          help="env step of the checkpoint (default: the newest usable)")
    evaluate.add_argument("--episodes", type=int, default=10)
    evaluate.add_argument("--seed", type=int, help="another episode stream (default: the "
                          "checkpoint's last evaluation's)")
    evaluate.add_argument("--video", action="store_true", help="film the first episode "
                          "(needs --out)")
    evaluate.add_argument("--out", type=Path, help="folder for eval.json and video.gif")
    compare = sub.add_parser("compare", help="curves of runs side by side: mean and 95%% "
                             "interval per group, a table with paired differences, a figure")
    compare.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    compare.add_argument("--tag", default="eval/episodic_return",
                         help="TensorBoard scalar (default: eval/episodic_return)")
    compare.add_argument("--by", default="preset",
                         help="group runs by preset (default), seed, or a config key such as "
                              "planner.name")
    compare.add_argument("--out", type=Path, help="figure file (.png, .pdf or .svg)")
    finetune = sub.add_parser("finetune", help="MBMF's third phase on an mbmf run: RLlib's PPO "
                              "from its imitation policy (adds tb/finetune-<k>, finetune-<k>)")
    finetune.add_argument("run_dir", type=Path)
    finetune.add_argument("--steps", type=int, help="env steps (default: mbmf.finetune_steps)")
    sub.add_parser("presets", help="list presets")
    return parser


def build_config(args: argparse.Namespace) -> Config:
    cfg = apply_overrides(load_preset(args.preset), args.overrides)
    if args.steps is not None:
        cfg = apply_overrides(cfg, [f"train.steps={args.steps}"])
    if args.seed is not None:
        cfg = apply_overrides(cfg, [f"train.seed={args.seed}"])
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    # Overrides may come after options too (`train P --run-dir D a.b=1`), which plain
    # argparse cannot split across a subcommand's positionals.
    args, extra = parser.parse_known_args(argv)
    stray = [x for x in extra if x.startswith("-") or "=" not in x]
    if stray or (extra and args.command not in ("train", "eval")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides += extra
    if args.command == "presets":
        for name, description in list_presets().items():
            print(f"{name:20s} {description}")
        return 0
    if args.command == "compare":
        return _compare(args)
    if args.command == "eval":
        return _evaluate(args)
    if args.command == "finetune":
        return _finetune(args)
    return _train(args)


def _train(args: argparse.Namespace) -> int:
    """train or resume: the run, then the agent's after-training step (MBMF's fine-tuning)."""
    try:
        cfg, run_dir = _checked_input(args)
        # Imported only now: bad input is answered before Ray and torch load.
        from mbrl_ray.distributed.driver import Driver, RunInterrupted
        from mbrl_ray.distributed.faults import RunStopped
        try:
            result = Driver(cfg, run_dir, resume=args.command == "resume",
                            printer=_printer).run()
        except RunStopped as err:
            print(f"mbrl-ray: {err}", file=sys.stderr)
            return EXIT_FAILED
        except RunInterrupted as err:
            print(f"mbrl-ray: {err.message}", file=sys.stderr)
            return err.exit_code
    except ConfigError as err:
        print(f"mbrl-ray: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # before the run's actors started: nothing to save yet
        print("mbrl-ray: interrupted before training started; nothing was trained",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"done: {result.env_steps} env steps, final evaluation return "
          f"{result.final_eval_return:.1f}")
    print(f"TensorBoard logs: {result.run_dir / 'tb'}  (tensorboard --logdir {result.run_dir / 'tb'})")
    from mbrl_ray.agents import agent_class
    try:
        agent_class(cfg).after_training(cfg, run_dir, _printer)
    except ConfigError as err:
        print(f"mbrl-ray: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from mbrl_ray import finetune
    try:
        cfg = finetune.checked_config(args.run_dir, args.steps)  # before torch and Ray load
        summary = finetune.run(args.run_dir, cfg, _printer)
    except ConfigError as err:
        print(f"mbrl-ray: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("mbrl-ray: fine-tuning interrupted; the run's own files are untouched",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"fine-tuned {summary['finetune_env_steps']} env steps from "
          f"{summary['checkpoint']}: evaluation {summary['handed_over_return']:.1f} -> "
          f"{summary['final_eval_return']:.1f}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from mbrl_ray import compare
    try:
        compare.check_figure_path(args.out, args.run_dirs)
        groups = compare.load_groups(args.run_dirs, args.tag, args.by)
    except ConfigError as err:
        print(f"mbrl-ray: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(compare.table(groups, args.tag))
    if args.out:
        try:
            compare.figure(groups, args.tag, args.out)
        except OSError as err:
            print(f"mbrl-ray: the figure could not be written: {err}", file=sys.stderr)
            return EXIT_FAILED
        print(f"figure: {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from mbrl_ray import evaluate
    req = evaluate.Request(args.run_dir, args.checkpoint, args.episodes, args.seed, args.video,
                           args.out, tuple(args.overrides))
    try:
        if req.video and req.out is None:
            raise ConfigError("--video needs --out FOLDER: eval writes nothing into the run")
        cfg = evaluate.checked_config(req)  # before torch and Ray load
    except ConfigError as err:
        print(f"mbrl-ray: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        evaluate.run(req, printer=_printer, cfg=cfg)
    except ConfigError as err:
        print(f"mbrl-ray: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("mbrl-ray: evaluation interrupted; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - an actor's or the disk's failure: one line
        cause = " ".join(str(err).split())[-300:]
        print(f"mbrl-ray: evaluation failed: {type(err).__name__}: {cause}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _checked_input(args: argparse.Namespace) -> tuple[Config, Path]:
    """The run's config and directory, every check that needs neither torch nor Ray done."""
    if args.command == "train":
        cfg = check_machine(validate(build_config(args)))
        run_dir = args.run_dir or Path("runs") / f"{cfg.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
        check_new_run_dir(run_dir)
        check_writable(run_dir)
    else:
        cfg, run_dir = load_run_config(args.run_dir), args.run_dir
        if args.steps is not None:
            cfg = apply_overrides(cfg, [f"train.steps={args.steps}"])
        check_writable(run_dir)
        cfg = check_machine(validate(cfg))
    # Last: the registries load Gymnasium (a fraction of a second), no simulator suite.
    from mbrl_ray.envs.specs import check_env_spec
    check_env_spec(cfg.env.id, cfg.env.max_episode_steps)
    return cfg, run_dir


def _printer(*parts, **kwargs) -> None:
    """Warnings go to stderr, the rest to stdout."""
    text = " ".join(map(str, parts))
    print(text, file=sys.stderr if text.startswith("warning:") else sys.stdout, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
