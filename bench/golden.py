"""Golden outputs for a behaviour-preserving redesign (issue 40): record them before the first
move, check them after.

    .venv/bin/python bench/golden.py --write bench/results/golden    # before
    .venv/bin/python bench/golden.py --check bench/results/golden    # after: per entry, equal or
                                                                     # the largest difference

What is recorded: every agent of tests/test_agent_contract.py (the same cases, replay rows and
seeds) trained two rounds -> its logged losses, a worker's actions from those weights (exploring
and not) and an untrained worker's first actions; the planning-cost line of every preset; with
--curves, the `debug` preset's evaluation curve (sync schedule) for seeds 0 and 1 through the
whole topology. Floats are compared exactly: run both sides on the same machine."""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_agent_contract import CASES, _act, _replay, _setup, _train  # noqa: E402

from mbrl_ray.agents import make_actor, make_learner  # noqa: E402
from mbrl_ray.config import list_presets, load_preset  # noqa: E402


def agent_outputs() -> dict:
    out = {}
    for case in CASES:
        cfg, spec = _setup(case)
        store = _replay(cfg, spec)
        learner = make_learner(spec, cfg, seed=0)
        logs = _train(learner, store)
        obs = np.stack([store.data["obs"][i] for i in range(3)])
        acted = {}
        for explore in (True, False):
            worker = make_actor(spec, cfg, seed=3)
            worker.load_inference_weights(copy.deepcopy(learner.inference_weights()))
            acted[f"explore={explore}"] = _act(worker, obs, explore).tolist()
        untrained = make_actor(spec, cfg, seed=3)
        out[case] = {"logs": logs, "actions": acted,
                     "untrained_actions": _act(untrained, obs, steps=1).tolist()}
        print(f"{case}: {len(logs)} rounds, first action {acted['explore=True'][0]}")
    return out


def planning_lines() -> dict:
    from mbrl_ray.distributed.preflight import describe_planning
    from mbrl_ray.envs import env_kwargs, env_spec

    lines = {}
    for preset in list_presets():
        cfg = load_preset(preset)
        lines[preset] = describe_planning(cfg, env_spec(cfg.env.id, **env_kwargs(cfg.env)))
    return lines


def debug_curves() -> dict:
    import ray
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mbrl_ray.config import apply_overrides
    from mbrl_ray.distributed.driver import Driver

    curves = {}
    for seed in (0, 1):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = apply_overrides(load_preset("debug"), [f"train.seed={seed}"])
            Driver(cfg, Path(tmp) / "run", printer=lambda *a, **k: None).run()
            acc = EventAccumulator(str(Path(tmp) / "run" / "tb"))
            acc.Reload()
            curves[f"seed={seed}"] = [[e.step, e.value]
                                      for e in acc.Scalars("eval/episodic_return")]
    ray.shutdown()
    return curves


def compare(old, new, path: str = "") -> list[str]:
    """Every leaf that differs, with the largest absolute difference of its numbers."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = [f"{path}: keys {sorted(set(old) ^ set(new))}"] if set(old) != set(new) else []
        return found + [d for k in old.keys() & new.keys()
                        for d in compare(old[k], new[k], f"{path}/{k}")]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in compare(a, b, f"{path}[{i}]")]
    if isinstance(old, float) and isinstance(new, float):
        same = old == new or (math.isnan(old) and math.isnan(new))
        return [] if same else [f"{path}: {old!r} -> {new!r} ({abs(old - new):.3g})"]
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path, help="folder to write golden.json into (new)")
    mode.add_argument("--check", type=Path, help="folder holding golden.json to compare with")
    parser.add_argument("--curves", action="store_true", help="also the debug curves (Ray)")
    args = parser.parse_args()
    if args.write and (args.write / "golden.json").exists():
        parser.error(f"{args.write / 'golden.json'} exists: keep it, write elsewhere")
    now = {"agents": agent_outputs(), "planning_lines": planning_lines()}
    if args.curves:
        now["debug_curves"] = debug_curves()
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        (args.write / "golden.json").write_text(json.dumps(now, indent=1) + "\n")
        print(f"wrote {args.write / 'golden.json'}")
        return 0
    old = json.loads((args.check / "golden.json").read_text())
    differences = compare({k: old[k] for k in now if k in old}, now)
    print("\n".join(differences) or "identical: every recorded output")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
