"""The DC-MPC authors' own training loop (`train.py` of a checkout of aidanscannell/dcmpc) at
the overrides bench/vs_dcmpc_authors.py gives: runs inside the authors' venv with the checkout
on its path (never imported by mbrl_ray; nothing of theirs is copied here). Writes one JSON:
each evaluation (agent steps, its episodes' returns, unix time at its end, its seconds), the
updates made and the seconds they took, the overrides.

What this driver changes around their code, and why:
- Meta-World v2 (theirs: a git commit, not on the registry) and MyoSuite (fetches assets at
  import) are imported at the top of their `envs` package; a DMC run uses neither, so both are
  stand-ins that fail if used.
- torchrl's W&B logger (offline W&B starts a service process beside the 2 cores' work) is a
  recorder of what train.py logs; with no W&B run their update loop skips `wandb.log`.
- Their `evaluate` and `DCMPC.update` are wrapped to read the episodes' returns and count
  updates; both run unchanged.

    VENV/bin/python bench/reference/dcmpc_authors.py --reference-dir CHECKOUT --out FILE \
        -- OVERRIDE...
"""
from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import tempfile
import time
import types

RECORD: dict = {"evals": [], "updates": 0, "update_s": 0.0}


STAND_INS = {  # module -> its source: importable, and failing where used
    "metaworld/__init__.py": "",
    "metaworld/envs/__init__.py": "ALL_V2_ENVIRONMENTS_GOAL_OBSERVABLE = {}  # no task: a KeyError\n",
    "myosuite/__init__.py": "",
    "myosuite/utils/__init__.py": "gym = None  # no suite: an AttributeError\n",
}


def stub_unused_suites() -> None:
    """Files, not entries of sys.modules: their evaluation envs run in spawned processes, which
    import the `envs` package again with the parent's sys.path."""
    folder = tempfile.mkdtemp(prefix="dcmpc-stand-ins-")
    for name, source in STAND_INS.items():
        os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
        with open(os.path.join(folder, name), "w") as f:
            f.write(source)
    sys.path.insert(0, folder)


class RecordingLogger:
    """Stands in for torchrl's WandbLogger: keeps each `eval/` record train.py logs."""

    def __init__(self, *args, **kwargs):
        self.experiment = types.SimpleNamespace(save=lambda *a, **k: None)

    def log_hparams(self, *args, **kwargs) -> None:
        pass

    def log_scalar(self, name: str, value, step=None) -> None:
        if name == "eval/":
            last = RECORD["evals"][-1]
            last["step"] = int(value["step"])
            last["mean"] = float(value["episodic_return"])
            last["end_unix"] = time.time()


def wrap_evaluate(utils) -> None:
    """Their evaluate returns the episodes' mean; the returns of each come from its rollout."""
    inner = utils.evaluate

    def evaluate(env, *args, **kwargs):
        rollout, seen = env.rollout, {}

        def recording_rollout(*a, **k):
            seen["data"] = rollout(*a, **k)
            return seen["data"]

        env.rollout = recording_rollout
        started = time.time()
        try:
            metrics = inner(env, *args, **kwargs)
        finally:
            env.rollout = rollout
        returns = seen["data"]["next"]["episode_reward"][:, -1, 0]
        RECORD["evals"].append({"returns": [float(r) for r in returns],
                                "eval_s": time.time() - started})
        return metrics

    utils.evaluate = evaluate


def wrap_update(dcmpc) -> None:
    inner = dcmpc.DCMPC.update

    def update(self, replay_buffer, num_new_transitions: int):
        started = time.time()
        info = inner(self, replay_buffer, num_new_transitions)
        RECORD["updates"] += int(num_new_transitions * self.cfg.utd_ratio)
        RECORD["update_s"] += time.time() - started
        return info

    dcmpc.DCMPC.update = update


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference-dir", required=True, help="a checkout of aidanscannell/dcmpc")
    ap.add_argument("--out", required=True)
    ap.add_argument("overrides", nargs="*", help="Hydra overrides for their train.py")
    args = ap.parse_args()
    out = os.path.abspath(args.out)  # Hydra moves the working directory into its run dir
    sys.path.insert(0, os.path.abspath(args.reference_dir))
    stub_unused_suites()
    import torchrl.record.loggers.wandb as wandb_logger

    import dcmpc
    import utils
    wandb_logger.WandbLogger = RecordingLogger
    wrap_evaluate(utils)
    wrap_update(dcmpc)
    launched = time.time()
    script = os.path.join(os.path.abspath(args.reference_dir), "train.py")
    sys.argv = [script, *args.overrides]
    try:  # as their script (Hydra finds cfgs/ beside the file it is run as)
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:  # Hydra exits after the run; keep what was recorded
        if stop.code not in (None, 0):
            raise
    RECORD.update(launched_unix=launched, wall_s=time.time() - launched,
                  overrides=args.overrides)
    with open(out, "w") as f:
        json.dump(RECORD, f, indent=1)


if __name__ == "__main__":
    main()
