"""MBMF's third phase (Nagabandi et al. 2018): the imitation policy handed to a model-free
learner, RLlib's PPO here (the paper: TRPO), as an RLlib module around the same network.

The module's mean is `GaussianPolicy` (agents/mbmf.py) with the DAgger weights loaded, so the
hand-over starts from exactly the policy that acted; its std is one learned parameter per action
dimension, starting at `mbmf.std`; the value function is a separate tanh MLP of the policy's
size on the policy's standardised observations, trained from scratch. PPO without an initial
policy (the baseline "PPO alone") is the same module with fresh weights."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchDiagGaussian
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.tune.registry import register_env
from torch import nn

from mbrl_ray.agents.mbmf import GaussianPolicy
from mbrl_ray.config.schema import Config
from mbrl_ray.nn import mlp

ENV_NAME = "mbrl_ray_env"


class PolicyModule(TorchRLModule, ValueFunctionAPI):
    """model_config: hidden, layers, std, init (a GaussianPolicy state dict, or None)."""

    def setup(self) -> None:
        c = self.model_config
        obs_dim, act_dim = self.observation_space.shape[0], self.action_space.shape[0]
        self.pi = GaussianPolicy(obs_dim, act_dim, c["hidden"], c["layers"])
        if c.get("init") is not None:
            self.pi.load_state_dict({k: torch.as_tensor(v) for k, v in c["init"].items()})
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(c["std"])))
        self.vf = mlp(obs_dim, 1, c["hidden"], c["layers"], nn.Tanh)
        self.action_dist_cls = TorchDiagGaussian

    def _forward(self, batch: dict, **kwargs) -> dict:
        mean = self.pi(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: torch.cat([mean, self.log_std.expand_as(mean)], -1)}

    def compute_values(self, batch: dict, embeddings=None) -> torch.Tensor:
        return self.vf(self.pi.norm(batch[Columns.OBS])).squeeze(-1)


def _make_env(ctx):
    from mbrl_ray.envs.make import make_env
    return make_env(ctx["id"], seed=ctx["seed"] + ctx.worker_index,
                    max_episode_steps=ctx["max_episode_steps"],
                    action_repeat=ctx["action_repeat"])


def ppo_config(cfg: Config, init: dict | None, seed: int) -> PPOConfig:
    """PPO on the run's env (one env runner, the learner in the driver's process), the module
    starting from `init` (GaussianPolicy weights) or fresh."""
    register_env(ENV_NAME, _make_env)
    c, e = cfg.mbmf, cfg.env
    std = max(c.std, 1e-3)  # a log std must start finite
    return (PPOConfig()
            .environment(ENV_NAME, env_config={"id": e.id, "seed": seed,
                                               "max_episode_steps": e.max_episode_steps,
                                               "action_repeat": e.action_repeat})
            .env_runners(num_env_runners=1, num_envs_per_env_runner=1)
            .learners(num_learners=0)
            .training(train_batch_size_per_learner=c.ppo_batch, minibatch_size=c.ppo_minibatch,
                      num_epochs=c.ppo_epochs, lr=c.ppo_lr, gamma=c.ppo_gamma,
                      lambda_=c.ppo_lambda)
            .rl_module(rl_module_spec=RLModuleSpec(
                module_class=PolicyModule,
                model_config={"hidden": c.hidden_size, "layers": c.num_layers, "std": std,
                              "init": init}))
            .debugging(seed=seed))


def policy_weights(policy: GaussianPolicy) -> dict[str, torch.Tensor]:
    """A GaussianPolicy's weights, detached, on CPU (the module's is `module.pi`)."""
    return {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}


def train_ppo(cfg: Config, init: dict | None, steps: int, seed: int,
              on_iteration: Callable[[int, PolicyModule, dict], None]) -> dict:
    """PPO iterations until `steps` env steps are sampled; after each, on_iteration(env steps
    so far, the learner's module, RLlib's env-runner results). -> the final policy's weights
    and its log std."""
    algo = ppo_config(cfg, init, seed).build_algo()
    try:
        done = 0
        while done < steps:
            result = algo.train()["env_runners"]
            done = int(result["num_env_steps_sampled_lifetime"])
            on_iteration(done, algo.get_module(), result)
        module = algo.get_module()
        return {**policy_weights(module.pi), "log_std": module.log_std.detach().cpu().clone()}
    finally:
        algo.stop()
