"""Guided policy search (`agent.name=gps`), the trajectory-centric GPS under unknown dynamics
(Levine & Abbeel 2014) with the neural policy of Levine & Koltun 2013:

- episodes start from `env.conditions` fixed states; each condition has a local controller,
  time-varying linear-Gaussian (planners/lqg.py), that draws the training samples on the
  rollout workers, every env playing every condition in turn;
- after each round the learner fits time-varying linear-Gaussian dynamics to each condition's
  samples, with one Gaussian over all steps of the condition's samples as prior
  (world_models/linear_gaussian.py), expands the task's known cost (task_costs.py) to
  second order at the samples, and takes the KL-bounded LQR step from the controller that
  sampled;
- a neural policy (obs -> action, tanh MLP) learns from the samples (agents/gps_policy.py): the
  2013 paper's importance-sampled objective over the last `gps.importance_rounds` rounds
  (`gps.policy_step=importance`) or regression onto the new controllers
  (`supervised`). It is what evaluation acts with (explore=False) and what the run delivers.

The first round acts uniformly at random, as every agent before its first fit; the first KL
step is measured against that uniform distribution's Gaussian (zero mean, variance 1/3). Sync
schedule only: a round is whole episodes of every condition.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from mbrl_ray import seeding
from mbrl_ray.agents.base import Agent, AgentLearner, cpu
from mbrl_ray.agents.gps_model import ModelPlans
from mbrl_ray.agents.gps_policy import (Samples, importance_objective, mixture_log_density,
                                        policy_log_density, supervised_loss)
from mbrl_ray.agents.mbmf import GaussianPolicy
from mbrl_ray.config.schema import Config
from mbrl_ray.envs.conditions import condition_episodes, initial_observations
from mbrl_ray.task_costs import task_cost
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.planners.lqg import (Controller, Dynamics, Limits, QuadraticCost,
                                   adjusted_multiplier, expand_cost, expected_cost, kl_step)
from mbrl_ray.replay.selectors import BatchSpec
from mbrl_ray.world_models.linear_gaussian import JointGaussian, fit_dynamics, transitions

F64 = torch.float64
UNIFORM_VAR = 1.0 / 3.0  # variance of U(-1, 1): the first round's actions


class GPSAgent(Agent):
    """See the module docstring. Acting state: each env's step in its episode and condition."""

    schedules = ("sync",)
    size_keys = ("gps.hidden_size", "gps.num_layers")

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        c = cfg.gps
        self.horizon = cfg.env.max_episode_steps // cfg.env.action_repeat
        self.starts = torch.as_tensor(initial_observations(cfg.env), dtype=F64)
        self.policy = seeding.init_weights(
            GaussianPolicy(spec.obs_dim, spec.act_dim, c.hidden_size, c.num_layers),
            seeding.init_generator(seeding.derive(seed, seeding.SAC))).to(self.device)
        self.rng = np.random.default_rng(seed)  # random acting, as every agent
        self.noise = np.random.default_rng(seeding.derive(seed, seeding.NOISE))  # controllers'
        self.controllers: list[Controller] | None = None  # per condition, after the first fit

    # ---- acting -----------------------------------------------------------------------------
    def initial_state(self, batch: int) -> dict:
        return {"t": torch.zeros(batch, dtype=torch.long),
                "condition": torch.zeros(batch, dtype=torch.long)}

    def condition_of(self, obs: torch.Tensor) -> torch.Tensor:
        """The condition whose first observation is nearest to each of obs (N, n)."""
        return torch.cdist(obs, self.starts).argmin(1)

    @torch.no_grad()
    def act(self, obs: np.ndarray, state: dict, explore: bool = True):
        """Exploring (training rounds): a sample of the env's condition's controller at its
        step; else the neural policy's mean. Uniform at random before the first fit."""
        first = state["t"] == 0
        x = torch.as_tensor(obs, dtype=F64)
        if first.any():
            state["condition"][first] = self.condition_of(x[first])
        t = state["t"].clamp(max=self.horizon - 1)
        state["t"] = state["t"] + 1
        if self.controllers is None:
            return self.random_actions(len(obs)), state
        if not explore:
            mean = self.policy(torch.as_tensor(obs, dtype=torch.float32, device=self.device))
            return mean.clamp(-1, 1).cpu().numpy(), state
        cond = state["condition"]
        K, k, chol = self._stacked("K")[cond, t], self._stacked("k")[cond, t], \
            self._stacked("chol")[cond, t]
        noise = torch.as_tensor(self.noise.standard_normal((len(obs), self.spec.act_dim)))
        action = (K @ x.unsqueeze(-1)).squeeze(-1) + k + (chol @ noise.unsqueeze(-1)).squeeze(-1)
        return action.clamp(-1, 1).float().numpy(), state

    def _stacked(self, key: str) -> torch.Tensor:
        if self._stack is None:
            self._stack = {"K": torch.stack([c.K for c in self.controllers]),
                           "k": torch.stack([c.k for c in self.controllers]),
                           "chol": torch.linalg.cholesky(
                               torch.stack([c.cov for c in self.controllers]))}
        return self._stack[key]

    _stack: dict | None = None

    def _load_controllers(self, tensors: dict | None) -> None:
        self._stack = None
        self.controllers = None if tensors is None else [
            Controller(K, k, cov) for K, k, cov in zip(tensors["K"], tensors["k"],
                                                       tensors["cov"])]

    def load_inference_weights(self, weights: dict | None) -> None:
        self._load_controllers(weights)
        if weights is not None:
            self.policy.load_state_dict(weights["policy"])


class GPSLearner(GPSAgent, AgentLearner):
    """The GPS iterations: controllers' KL-bounded steps and the policy's (module docstring)."""

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        c = cfg.gps
        self.cost = task_cost(cfg.env.id)
        self.log_std = nn.Parameter(torch.full((spec.act_dim,), math.log(c.policy_std),
                                               device=self.device))
        self.optimizer = torch.optim.Adam([*self.policy.parameters(), self.log_std], lr=c.lr)
        self.generator = seeding.device_generator(self.device, seed)
        self.policy_trained = False
        self.seen = 0  # env steps whose episodes the learner has used
        # step size per condition: the multiplier of gps.kl_step, the controller before the
        # last step and the dynamics that step was taken on
        self.multiplier = [1.0] * cfg.env.conditions
        self.before: list[Controller | None] = [None] * cfg.env.conditions
        self.last_dynamics: list[Dynamics | None] = [None] * cfg.env.conditions
        # importance: each condition's last rounds of samples and the controllers that drew them
        self.rounds: list[list[dict]] = [[] for _ in range(cfg.env.conditions)]
        self.plans = ModelPlans(spec, cfg, self.device, seed) if c.dynamics == "model" \
            else None

    @classmethod
    def batch_spec_for(cls, cfg: Config) -> BatchSpec:
        return BatchSpec("transitions", cfg.gps.batch_size, keys="gps.batch_size")

    # ---- learning ---------------------------------------------------------------------------
    def fit(self, data: dict[str, np.ndarray], env_steps: int) -> dict[str, float]:
        """One GPS iteration on the episodes of the round since the last fit: a KL-bounded
        LQR step per condition on dynamics fitted to its samples, then the policy's step."""
        new = min(env_steps - self.seen, len(data["obs"]))
        self.seen = env_steps
        episodes = self.episodes(data, new)
        sampled = self.controllers or [None] * len(episodes)
        found = [ep for ep in episodes if ep is not None]
        if not found:
            return {"gps_episodes": 0.0}
        logs, steps = {}, []
        guides = None if self.plans is None else self.model_guides(data, episodes, logs)
        for cond, episode in enumerate(episodes):
            if episode is None:
                steps.append(sampled[cond] or self._uniform())
                continue
            x, u = episode
            steps.append(self.local_step(cond, x, u, sampled[cond] or self._uniform(), logs)
                         if guides is None else guides[cond])
            costs = self.episode_costs(x, u)
            self._remember(cond, x, u, costs, sampled[cond])
            logs[f"gps_sample_cost_{cond}"] = float(costs.sum(1).mean())
        self.controllers, self._stack = steps, None
        logs["gps_policy_loss"] = self.train_policy(episodes)
        logs["gps_episodes"] = float(sum(len(ep[0]) for ep in found))
        return logs

    def model_guides(self, data: dict[str, np.ndarray], episodes: list,
                     logs: dict) -> list[Controller]:
        """gps.dynamics=model: the delta network refitted to every transition held, then the
        new controllers of the conditions with episodes this round (agents/gps_model.py)."""
        logs["gps_model_mse"] = self.plans.fit(data, self.generator)
        found = [cond for cond, ep in enumerate(episodes) if ep is not None]
        planned = self.plans.controllers(found, self.starts[found], self.cost)
        guides: list = [None] * len(episodes)
        for cond, (ctrl, cost) in zip(found, planned):
            guides[cond], logs[f"gps_plan_cost_{cond}"] = ctrl, cost
        return guides

    def local_step(self, cond: int, x: torch.Tensor, u: torch.Tensor, current: Controller,
                   logs: dict) -> Controller:
        """gps.dynamics=local: the KL-bounded LQR step from the controller that sampled the
        condition's round (x (N, T+1, n), u (N, T, m)) on dynamics fitted to it."""
        c = self.cfg.gps
        prior = JointGaussian.of(transitions(x, u).flatten(0, 1))  # all its steps
        dyn, cost = fit_dynamics(x, u, prior, c.prior_strength), self.quadratic_cost(x, u)
        self.adjust_step(cond, current, dyn, cost)
        step = kl_step(dyn, cost, current, c.kl_step * self.multiplier[cond] * self.horizon,
                       limits=self.limits(x))
        self.before[cond], self.last_dynamics[cond] = current, dyn
        logs[f"gps_step_multiplier_{cond}"] = self.multiplier[cond]
        logs[f"gps_kl_{cond}"], logs[f"gps_log_eta_{cond}"] = step.kl, math.log(step.eta)
        return step.controller

    def limits(self, x: torch.Tensor) -> Limits | None:
        """gps.action_limits: actions in [-1, 1] at the samples' mean states x (N, T+1, n)."""
        if not self.cfg.gps.action_limits:
            return None
        ones = torch.ones(self.spec.act_dim, dtype=F64)
        return Limits(-ones, ones, x[:, :-1].mean(0))

    def adjust_step(self, cond: int, current: Controller, dyn: Dynamics,
                    cost: QuadraticCost) -> None:
        """The step-size rule (lqg.adjusted_multiplier) on the expected costs, under this
        round's cost expansion, of the controller before the last step on the new dynamics,
        and of the controller it gave on the old dynamics (predicted) and the new (actual)."""
        if self.last_dynamics[cond] is None or not self.cfg.gps.adapt_step:
            return
        self.multiplier[cond] = adjusted_multiplier(
            self.multiplier[cond], expected_cost(self.before[cond], dyn, cost),
            expected_cost(current, self.last_dynamics[cond], cost),
            expected_cost(current, dyn, cost))

    def _uniform(self) -> Controller:
        return Controller.initial(self.horizon, self.spec.obs_dim, self.spec.act_dim,
                                  math.sqrt(UNIFORM_VAR))

    def episodes(self, data: dict[str, np.ndarray], new: int) -> list:
        """Per condition, its whole episodes among the last `new` transitions
        (envs/conditions.py: condition_episodes)."""
        return condition_episodes(data, new, self.starts, self.horizon)

    def episode_costs(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Each step's cost (N, T), the last step's including the final state's."""
        cost = self.cost.step(x[:, :-1], u)
        cost[:, -1] = cost[:, -1] + self.cost.final(x[:, -1])
        return cost

    def quadratic_cost(self, x: torch.Tensor, u: torch.Tensor) -> QuadraticCost:
        """The task cost's second-order expansion at the samples (lqg.expand_cost)."""
        return expand_cost(self.cost.step, self.cost.final, x, u)

    def _remember(self, cond: int, x: torch.Tensor, u: torch.Tensor, costs: torch.Tensor,
                  sampler: Controller | None) -> None:
        """Importance: keep the round's samples and the controller that drew them, for the
        last gps.importance_rounds rounds."""
        if self.cfg.gps.policy_step != "importance":
            return
        self.rounds[cond].append({"x": x, "u": u, "cost": costs, "sampler": sampler})
        del self.rounds[cond][:-self.cfg.gps.importance_rounds]

    def samples(self, cond: int) -> Samples:
        """The condition's kept samples, with their log-density under the mixture of the
        controllers that drew them."""
        held = self.rounds[cond]
        x, u = torch.cat([r["x"] for r in held]), torch.cat([r["u"] for r in held])
        log_q = mixture_log_density(x, u, [r["sampler"] for r in held],
                                    [len(r["x"]) for r in held])
        return Samples(x, u, torch.cat([r["cost"] for r in held]), log_q)

    def train_policy(self, episodes: list) -> float:
        """The policy's step; the first one (and every supervised one) regresses onto the new
        controllers, as the 2013 paper initialises by maximum likelihood on guiding samples."""
        self.policy.norm.fit(torch.cat([ep[0][:, :-1].flatten(0, 1) for ep in episodes
                                        if ep is not None]).float().to(self.device))
        if self.cfg.gps.policy_step == "supervised" or not self.policy_trained:
            loss = self._supervised(episodes)
        else:
            loss = self._importance()
        self.policy_trained = True
        return loss

    def supervision(self, episodes: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The supervised step's rows: every sampled state (N x T per condition, in order),
        its condition's new controller's mean action there (clipped to [-1, 1]) and that
        step's precision, all precisions divided by their mean diagonal (a learning rate that
        holds as the controllers narrow)."""
        states, targets, precisions = [], [], []
        for cond, episode in enumerate(episodes):
            if episode is None:
                continue
            ctrl, x = self.controllers[cond], episode[0]
            t = torch.arange(self.horizon).repeat(len(x))
            flat = x[:, :-1].flatten(0, 1)
            states.append(flat)
            targets.append(ctrl.mean(t, flat).clamp(-1, 1))
            precisions.append(torch.linalg.inv(ctrl.cov)[t])
        prec = torch.cat(precisions)
        return torch.cat(states), torch.cat(targets), prec / prec.diagonal(dim1=1, dim2=2).mean()

    def _supervised(self, episodes: list) -> float:
        rows = [v.float().to(self.device) for v in self.supervision(episodes)]
        c = self.cfg.gps
        for _ in range(c.policy_steps):
            idx = torch.randint(len(rows[0]), (c.batch_size,), device=self.device,
                                generator=self.generator)
            loss = supervised_loss(self.policy(rows[0][idx]), rows[1][idx], rows[2][idx])
            self._step(loss)
        return float(loss.detach())

    def _importance(self) -> float:
        c = self.cfg.gps
        held = [self.samples(cond) for cond, rounds in enumerate(self.rounds) if rounds]
        sets = [tuple(v.to(self.device, torch.float32) for v in (s.x[:, :-1], s.u, s.cost,
                                                                 s.log_q)) for s in held]
        for _ in range(c.policy_steps):
            loss = sum(importance_objective(
                policy_log_density(self.policy(x), self.log_std, u), log_q, cost,
                c.regularizer) for x, u, cost, log_q in sets)
            self._step(loss)
        return float(loss.detach())

    def _step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    # ---- weights and checkpoints ------------------------------------------------------------
    def _controller_tensors(self) -> dict | None:
        """The controllers stacked over conditions: K, k, cov; None before the first fit."""
        if self.controllers is None:
            return None
        return {"K": self._stacked("K"), "k": self._stacked("k"),
                "cov": torch.stack([c.cov for c in self.controllers])}

    def inference_weights(self) -> dict | None:
        tensors = self._controller_tensors()
        return None if tensors is None else {**tensors, "policy": cpu(self.policy)}

    def state_dict(self) -> dict:
        return {"controllers": self._controller_tensors(), "policy": self.policy.state_dict(),
                "log_std": self.log_std.detach().clone(),
                "optimizer": self.optimizer.state_dict(), "seen": self.seen,
                "policy_trained": self.policy_trained,
                "rounds": [[{**r, "sampler": r["sampler"] and vars(r["sampler"])}
                            for r in rounds] for rounds in self.rounds],
                "multiplier": list(self.multiplier),
                "before": [None if c is None else vars(c) for c in self.before],
                "last_dynamics": [None if d is None else vars(d) for d in self.last_dynamics],
                "plans": self.plans and self.plans.state_dict(),
                **seeding.generator_state(self.generator, self.rng)}

    def load_state_dict(self, state: dict) -> None:
        self._load_controllers(state["controllers"])
        self.policy.load_state_dict(state["policy"])
        with torch.no_grad():
            self.log_std.copy_(state["log_std"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.seen, self.policy_trained = state["seen"], state["policy_trained"]
        self.rounds = [[{**r, "sampler": r["sampler"] and Controller(**r["sampler"])}
                        for r in rounds] for rounds in state["rounds"]]
        self.multiplier = list(state["multiplier"])
        self.before = [None if c is None else Controller(**c) for c in state["before"]]
        self.last_dynamics = [None if d is None else Dynamics(**d)
                              for d in state["last_dynamics"]]
        if self.plans is not None:
            self.plans.load_state_dict(state["plans"])
        seeding.load_generator_state(self.generator, self.rng, state)
