"""Deep PILCO (`agent.name=deep-pilco`; Gal, McAllister & Rasmussen 2016): PILCO's trials,
task and RBF policy (agents/pilco.py), with

- dynamics: a dropout network on state differences (world_models/dropout_net.py), trained on
  every transition after each trial, warm started;
- policy evaluation: `deep_pilco.particles` particles, a dropout mask each held for the whole
  rollout, moment-matched and resampled every step (planners/particle_rollout.py);
- policy improvement: Adam on the pathwise gradient of the particles' mean cost (the paper's
  method), fresh masks and noise at every step or held for `deep_pilco.resample_every` steps
  (common random numbers), the gradient clipped to `deep_pilco.policy_clip`; or with
  `deep_pilco.policy_gradient=reinforce` on the likelihood-ratio gradient of Gaussian
  exploration actions (the lecture's label)."""
from __future__ import annotations

import numpy as np
import torch

from mbrl_ray import seeding
from mbrl_ray.agents.pilco import F64, PILCOAgent, PILCOLearner
from mbrl_ray.config.schema import Config
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.planners.particle_rollout import particle_costs, reinforce_surrogate
from mbrl_ray.world_models.dropout_net import DropoutDynamics

REPORT_PARTICLES, REPORT_SEED = 200, 0  # the logged prediction: many particles, fixed draws


class DeepPILCOAgent(PILCOAgent):
    """Acts as PILCO does, with the policy alone (module docstring)."""

    size_keys = ("pilco.basis", "deep_pilco.hidden_size", "deep_pilco.num_layers")


class DeepPILCOLearner(DeepPILCOAgent, PILCOLearner):
    """The dropout network's training and the particle policy search after each trial."""

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        c = cfg.deep_pilco
        self.optimiser = None  # PILCO's L-BFGS: not used here
        self.dynamics = seeding.init_weights(
            DropoutDynamics(len(self.task.policy_inputs) + spec.act_dim, spec.obs_dim,
                            c.hidden_size, c.num_layers, c.dropout),
            seeding.init_generator(seeding.derive(seed, seeding.MODEL))).double()
        self.model_opt = torch.optim.Adam(self.dynamics.parameters(), lr=c.model_lr,
                                          weight_decay=c.weight_decay)
        self.policy_opt = torch.optim.Adam(self.policy.parameters(), lr=c.policy_lr)
        self.generator = torch.Generator().manual_seed(seeding.derive(seed, seeding.NOISE))

    def fit(self, data: dict[str, np.ndarray], env_steps: int) -> dict[str, float]:
        """Train the dynamics on all data, then the policy on the particles' predicted cost."""
        logs = self.trial_logs(data, env_steps)
        logs["deep_pilco_model_loss"] = self.fit_dynamics(data)
        before = self.predicted_cost()
        cost = self.search_policy()
        self.trained, self.predicted = True, self.predicted_cost()
        return logs | {"deep_pilco_search_cost": float(cost),
                       "pilco_predicted_cost_before": before,
                       "pilco_predicted_cost": self.predicted,
                       "pilco_transitions": float(len(data["obs"]))}

    def search_policy(self) -> torch.Tensor:
        """deep_pilco.policy_steps Adam steps on the policy; -> the last step's cost. With
        `resample_every` = k > 0 each k steps share their draws (common random numbers: the
        objective is one fixed function between redraws, not a new sample at every step)."""
        c = self.cfg.deep_pilco
        for step in range(c.policy_steps):
            if c.resample_every and step % c.resample_every == 0:
                seed = int(torch.randint(1 << 62, (1,), generator=self.generator))
            draws = torch.Generator().manual_seed(seed) if c.resample_every else self.generator
            loss, cost = self.policy_objective(draws)
            self.policy_opt.zero_grad(set_to_none=True)
            loss.backward()
            if c.policy_clip:
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), c.policy_clip)
            self.policy_opt.step()
        return cost

    def policy_objective(self, draws: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to step on, the cost it estimates): pathwise, the moment-matched particles'
        cost; reinforce, the likelihood-ratio surrogate and the cost of its exploring
        particles (noisy actions, no resampling: not the cost the deterministic policy is
        predicted, pilco_predicted_cost)."""
        c = self.cfg.deep_pilco
        if c.policy_gradient == "reinforce":
            return reinforce_surrogate(self.task, self.policy, self.dynamics, self.steps,
                                       c.particles, c.reinforce_std, draws)
        cost = particle_costs(self.task, self.policy, self.dynamics, self.steps, c.particles,
                              draws).sum()
        return cost, cost.detach()

    def fit_dynamics(self, data: dict[str, np.ndarray]) -> float:
        obs, nxt, act = (torch.as_tensor(data[k], dtype=F64)
                         for k in ("obs", "next_obs", "action"))
        x, y = self.task.model_inputs(obs, act), nxt - obs
        self.dynamics.inp_norm.fit(x)
        self.dynamics.out_norm.fit(y)
        c = self.cfg.deep_pilco
        for _ in range(c.model_steps):
            idx = torch.randint(len(x), (c.model_batch,), generator=self.generator)
            masks = self.dynamics.sample_masks(len(idx), self.generator)
            loss = self.dynamics.loss(x[idx], y[idx], masks)
            self.model_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.model_opt.step()
        return float(loss.detach())

    @torch.no_grad()
    def predicted_cost(self) -> float:
        """The predicted cost of a trial with many particles and fixed draws (for the log)."""
        return float(particle_costs(self.task, self.policy, self.dynamics, self.steps,
                                    REPORT_PARTICLES,
                                    torch.Generator().manual_seed(REPORT_SEED)).sum())

    def state_dict(self) -> dict:
        return {**super().state_dict(), "dynamics": self.dynamics.state_dict(),
                "model_opt": self.model_opt.state_dict(),
                "policy_opt": self.policy_opt.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.dynamics.load_state_dict(state["dynamics"])
        self.model_opt.load_state_dict(state["model_opt"])
        self.policy_opt.load_state_dict(state["policy_opt"])
        seeding.load_torch_generator(self.generator, state["generator"])
