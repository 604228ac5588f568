"""mbrl-lib's own PETS (mbrl.algorithms.pets.train) at the settings bench/vs_mbrl_lib.py gives:
runs inside mbrl-lib's venv (never imported by mbrl_ray). Writes one JSON: every episode as
(env steps so far counting the random ones, return, unix time at its end), the seconds of each
planned action, and the settings used.

    VENV/bin/python bench/reference/mbrl_lib_pets.py --settings JSON --seed N --out FILE
"""
from __future__ import annotations

import json
import os
import tempfile
import time

import gymnasium as gym
import omegaconf

import mbrl.algorithms.pets as pets
import mbrl.planning
import mbrl.util.env
from driver_args import parse_and_seed  # bench/reference/ is sys.path[0]


class EpisodeLog(gym.Wrapper):
    """Every finished episode: (env steps so far, return, unix time)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.steps, self.ret, self.episodes = 0, 0.0, []

    def reset(self, **kwargs):
        self.ret = 0.0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        self.ret += float(reward)
        if terminated or truncated:
            self.episodes.append((self.steps, self.ret, time.time()))
        return obs, reward, terminated, truncated, info


def config(s: dict, seed: int) -> omegaconf.DictConfig:
    """mbrl-lib's example config (main.yaml, algorithm/pets.yaml, gaussian_mlp_ensemble.yaml,
    action_optimizer/cem.yaml) with the bench's settings in place of theirs."""
    return omegaconf.OmegaConf.create({
        "seed": seed, "device": "cpu", "debug_mode": False,
        "algorithm": {
            "name": "pets", "normalize": True, "normalize_double_precision": True,
            "target_is_delta": True, "initial_exploration_steps": s["random_steps"],
            "freq_train_model": s["steps_per_round"], "learned_rewards": True,
            "num_particles": s["particles"],
            # Hydra 1.3 (which installs beside mbrl-lib 0.2.0) would build nested configs
            # before mbrl-lib does: _recursive_=False keeps the 1.0 behaviour it was written for.
            "agent": {"_target_": "mbrl.planning.TrajectoryOptimizerAgent", "_recursive_": False,
                      "action_lb": "???", "action_ub": "???",
                      "planning_horizon": s["horizon"], "replan_freq": 1, "verbose": False,
                      "optimizer_cfg": {
                          "_target_": "mbrl.planning.CEMOptimizer",
                          "num_iterations": s["iterations"],
                          "elite_ratio": s["planner_elites"] / s["population"],
                          "population_size": s["population"], "alpha": s["alpha"],
                          "lower_bound": "???", "upper_bound": "???",
                          "return_mean_elites": s["execute"] == "mean", "device": "cpu",
                          "clipped_normal": False}}},
        "dynamics_model": {
            "_target_": "mbrl.models.GaussianMLP", "_recursive_": False, "device": "cpu",
            "num_layers": s["num_layers"], "ensemble_size": s["ensemble_size"],
            "hid_size": s["hidden_size"], "deterministic": False,
            "propagation_method": {"ts_inf": "fixed_model", "ts1": "random_model"}[
                s["propagation"]],
            "learn_logvar_bounds": False,
            "activation_fn_cfg": {"_target_": "torch.nn.SiLU"}},
        "overrides": {
            "env": f"gym___{s['reference_env']}", "term_fn": s["term_fn"],
            "learned_rewards": True, "trial_length": 1000,
            "num_steps": s["steps"] - s["random_steps"], "num_elites": s["num_elites"],
            "model_lr": s["lr"], "model_wd": s["weight_decay"],
            "model_batch_size": s["batch_size"], "validation_ratio": s["holdout"],
            "freq_train_model": s["steps_per_round"], "patience": s["patience"],
            "num_epochs_train_model": s["max_epochs"], "planning_horizon": s["horizon"]}})


def main() -> None:
    args, settings = parse_and_seed()
    cfg = config(settings, args.seed)
    env, term_fn, reward_fn = mbrl.util.env.EnvHandler.make_env(cfg)
    env = EpisodeLog(env)
    env.reset(seed=args.seed)
    env.action_space.seed(args.seed)
    plan_s = []
    act = mbrl.planning.TrajectoryOptimizerAgent.act

    def timed_act(self, obs, **kwargs):
        t0 = time.perf_counter()
        out = act(self, obs, **kwargs)
        plan_s.append(time.perf_counter() - t0)
        return out

    mbrl.planning.TrajectoryOptimizerAgent.act = timed_act
    with tempfile.TemporaryDirectory() as work_dir:
        pets.train(env, term_fn, reward_fn, cfg, silent=True, work_dir=work_dir)
    with open(args.out, "w") as f:
        json.dump({"episodes": env.episodes, "plan_s": plan_s, "settings": settings,
                   "seed": args.seed, "pid": os.getpid()}, f)


if __name__ == "__main__":
    main()
