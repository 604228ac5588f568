"""mbrl-lib's own MBPO (mbrl.algorithms.mbpo.train) at the settings bench/vs_mbrl_lib.py gives:
runs inside mbrl-lib's venv (never imported by mbrl_ray). Writes one JSON: every evaluation as
(env steps so far counting the random ones, mean return, unix time at its end), the SAC updates
made, and the settings used.

    VENV/bin/python bench/reference/mbrl_lib_mbpo.py --settings JSON --seed N --out FILE
"""
from __future__ import annotations

import json
import os
import tempfile
import time

import gymnasium as gym
import numpy as np
import omegaconf

import mbrl.algorithms.mbpo as mbpo
import mbrl.util.env
from driver_args import parse_and_seed  # bench/reference/ is sys.path[0]


def action_box(low: list, high: list, shape: list) -> gym.spaces.Box:
    """The SAC's action space. Their YAML names `gym.env.Box` (a package their pins replaced by
    gymnasium, whose Box wants arrays where mbrl-lib fills in lists)."""
    return gym.spaces.Box(np.asarray(low, np.float32), np.asarray(high, np.float32),
                          tuple(shape), np.float32)


def sac_config(s: dict) -> dict:
    """mbrl-lib's algorithm/mbpo.yaml agent block with the bench's SAC settings."""
    return {
        "_target_": "mbrl.third_party.pytorch_sac_pranz24.sac.SAC", "num_inputs": "???",
        "action_space": {"_target_": "__main__.action_box", "_convert_": "all",
                         "low": "???", "high": "???", "shape": "???"},
        "args": {"gamma": s["sac_gamma"], "tau": s["sac_tau"], "alpha": 0.2,
                 "policy": "Gaussian", "target_update_interval": 1,
                 "automatic_entropy_tuning": True, "target_entropy": s["target_entropy"],
                 "hidden_size": s["sac_hidden"], "device": "cpu", "lr": s["sac_lr"]}}


def config(s: dict, seed: int) -> omegaconf.DictConfig:
    """mbrl-lib's example config (main.yaml, algorithm/mbpo.yaml, gaussian_mlp_ensemble.yaml,
    overrides/mbpo_inv_pendulum.yaml) with the bench's settings in place of theirs."""
    return omegaconf.OmegaConf.create({
        "seed": seed, "device": "cpu", "debug_mode": False, "log_frequency_agent": 10**9,
        "save_video": False,
        "algorithm": {
            "name": "mbpo", "normalize": True, "normalize_double_precision": True,
            "target_is_delta": True, "learned_rewards": True,
            "freq_train_model": s["steps_per_round"], "real_data_ratio": s["real_ratio"],
            "sac_samples_action": True, "initial_exploration_steps": s["random_steps"],
            "random_initial_explore": True, "num_eval_episodes": s["eval_episodes"],
            "agent": sac_config(s)},
        "dynamics_model": {
            # Hydra 1.3 would build nested configs before mbrl-lib does (as in the PETS driver)
            "_target_": "mbrl.models.GaussianMLP", "_recursive_": False, "device": "cpu",
            "num_layers": s["num_layers"], "ensemble_size": s["ensemble_size"],
            "hid_size": s["hidden_size"], "in_size": "???", "out_size": "???",
            "deterministic": False, "propagation_method": "random_model",
            "learn_logvar_bounds": False, "activation_fn_cfg": {"_target_": "torch.nn.SiLU"}},
        "overrides": {
            "env": f"gym___{s['reference_env']}", "term_fn": s["term_fn"],
            "trial_length": 1000, "num_steps": s["steps"] - s["random_steps"],
            "epoch_length": s["eval_every"], "num_elites": s["num_elites"],
            "patience": s["patience"], "num_epochs_train_model": s["max_epochs"],
            "model_lr": s["lr"], "model_wd": s["weight_decay"],
            "model_batch_size": s["batch_size"], "validation_ratio": s["holdout"],
            "freq_train_model": s["steps_per_round"],
            "effective_model_rollouts_per_step": s["rollouts_per_step"],
            "rollout_schedule": [1, 15, s["rollout_length"], s["rollout_length"]],
            "num_sac_updates_per_step": s["updates_per_step"], "sac_updates_every_steps": 1,
            "num_epochs_to_retain_sac_buffer": s["retain_steps"] // s["steps_per_round"],
            "sac_batch_size": s["sac_batch"]}})


def main() -> None:
    args, settings = parse_and_seed()
    cfg = config(settings, args.seed)
    env, term_fn, _ = mbrl.util.env.EnvHandler.make_env(cfg)
    test_env, *_ = mbrl.util.env.EnvHandler.make_env(cfg)
    env.reset(seed=args.seed)
    env.action_space.seed(args.seed)
    test_env.reset(seed=10_000 + args.seed)
    evals, updates = [], [0]
    evaluate, update = mbpo.evaluate, mbpo.pytorch_sac_pranz24.SAC.update_parameters

    def logged_evaluate(*a, **kw):  # called every epoch_length env steps after the random ones
        ret = evaluate(*a, **kw)
        evals.append((settings["random_steps"] + settings["eval_every"] * (len(evals) + 1),
                      float(ret), time.time()))
        return ret

    def counted_update(self, *a, **kw):
        updates[0] += 1
        return update(self, *a, **kw)

    mbpo.evaluate = logged_evaluate
    mbpo.pytorch_sac_pranz24.SAC.update_parameters = counted_update
    with tempfile.TemporaryDirectory() as work_dir:
        mbpo.train(env, test_env, term_fn, cfg, silent=True, work_dir=work_dir)
    with open(args.out, "w") as f:
        json.dump({"evals": evals, "sac_updates": updates[0], "settings": settings,
                   "seed": args.seed, "pid": os.getpid()}, f)


if __name__ == "__main__":
    main()
