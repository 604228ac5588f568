"""PILCO (`agent.name=pilco`; Deisenroth & Rasmussen 2011, Deisenroth, Fox & Rasmussen 2015):

- one trial (episode) per round on the sync schedule, played by the current policy (the first
  at random, `train.random_steps`); every transition the run has taken is the model's data;
- dynamics: one exact GP per state dimension on differences x' - x, inputs the policy's inputs
  (angles as sin and cos) and the action (world_models/gp.py); once the transitions outnumber
  `pilco.inducing`, the sparse FITC approximation with that many learned inducing inputs
  (world_models/sparse_gp.py);
- policy evaluation: the start distribution's moments rolled through policy and GP for the
  trial's steps, the predicted cost sum_t E[c(x_t)] in closed form (planners/pilco_rollout.py);
- policy improvement: L-BFGS on that cost through the rollout's analytic gradients, warm
  started from the last policy; the policy is deterministic, acting and evaluation alike.

The task's state layout and cost come from moment_tasks.py."""
from __future__ import annotations

import numpy as np
import torch

from mbrl_ray import seeding
from mbrl_ray.agents.base import Agent, AgentLearner
from mbrl_ray.moment_tasks import moment_task
from mbrl_ray.config.schema import Config
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.planners.pilco_rollout import RBFPolicy, optimise_policy, policy_optimiser
from mbrl_ray.replay.selectors import BatchSpec
from mbrl_ray.world_models.gp import ExactGP
from mbrl_ray.world_models.sparse_gp import SparseGP

F64 = torch.float64
END_STEPS = 5  # a trial's last steps over which its end distance is measured


class PILCOAgent(Agent):
    """See the module docstring. Memoryless acting: the policy of the newest fit."""

    schedules = ("sync",)
    size_keys = ("pilco.basis",)

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, "cpu", seed)  # float64 moments: CPU always
        self.task = moment_task(cfg.env.id)
        c = cfg.pilco
        self.trial_steps = cfg.env.max_episode_steps // cfg.env.action_repeat
        self.steps = c.horizon or self.trial_steps  # the predicted cost's horizon
        mean, cov = self.task.start()
        centre_mean = self.task.augment(torch.as_tensor(mean, dtype=F64))[
            list(self.task.policy_inputs)]
        # the authors' start: centres drawn from the start distribution's augmented moments,
        # here from its per-input spread
        centre_std = torch.full_like(centre_mean, self.task.start_std)
        # the authors' initial widths: 1 for positions and speeds, 0.7 for sin and cos
        widths = torch.tensor([1.0 if i < len(mean) else 0.7 for i in self.task.policy_inputs],
                              dtype=F64)
        self.policy = RBFPolicy(len(centre_mean), spec.act_dim, c.basis,
                                seeding.init_generator(seed), centre_mean, centre_std, widths)
        self.trained = False
        self.rng = np.random.default_rng(seed)

    @torch.no_grad()
    def act(self, obs: np.ndarray, state: dict, explore: bool = True):
        if not self.trained:
            return self.random_actions(len(obs)), state
        x = self.task.augment(torch.as_tensor(obs, dtype=F64))[:, list(self.task.policy_inputs)]
        return self.policy(x).float().numpy(), state

    def load_inference_weights(self, weights: dict | None) -> None:
        self.trained = weights is not None
        if weights is not None:
            self.policy.load_state_dict(weights)


class PILCOLearner(PILCOAgent, AgentLearner):
    """The GP's fit and the policy's search after each trial (module docstring)."""

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        self.optimiser = policy_optimiser(self.policy, cfg.pilco.policy_iterations)
        self.hyper: dict[str, torch.Tensor] | None = None  # the GP's, after the first fit
        self.seen = 0  # env steps the learner has fitted on
        self.predicted = 0.0  # the predicted cost of the policy the workers play, once trained
        # the sparse GP's first inducing inputs: a random subset of the data
        self.gp_generator = torch.Generator().manual_seed(seeding.derive(seed, seeding.MODEL))

    @classmethod
    def batch_spec_for(cls, cfg: Config) -> BatchSpec:
        return BatchSpec("transitions", 1, keys="pilco")

    def model(self, data: dict[str, np.ndarray]) -> ExactGP:
        """The GP on every transition held: inputs (policy inputs, action), targets x' - x;
        sparse (FITC) once they outnumber `pilco.inducing`, from the last fit's inducing
        inputs when it had them."""
        obs, nxt, act = (torch.as_tensor(data[k], dtype=F64)
                         for k in ("obs", "next_obs", "action"))
        X, Y = self.task.model_inputs(obs, act), nxt - obs
        inducing = self.cfg.pilco.inducing
        if inducing and len(X) > inducing:
            return SparseGP(X, Y, inducing, self.hyper, self.gp_generator)
        if self.hyper is None:
            return ExactGP(X, Y)
        return ExactGP(X, Y, {k: v for k, v in self.hyper.items() if k != "inducing"})

    def fit(self, data: dict[str, np.ndarray], env_steps: int) -> dict[str, float]:
        """Refit the GP's hyperparameters on all data (from the last ones), then improve the
        policy on the predicted cost of a trial."""
        c = self.cfg.pilco
        logs = self.trial_logs(data, env_steps)
        gp = self.model(data)
        nll = gp.fit(c.gp_iterations)
        self.hyper = gp.hyper
        # a fresh L-BFGS each trial: the model changed, its curvature history does not carry
        self.optimiser = policy_optimiser(self.policy, c.policy_iterations)
        before, after = optimise_policy(self.task, self.policy, gp, self.steps,
                                        self.optimiser)
        self.trained, self.predicted = True, after
        logs |= {"pilco_gp_nll": nll, "pilco_predicted_cost_before": before,
                "pilco_predicted_cost": after, "pilco_transitions": float(len(gp.X)),
                "pilco_gp_inducing": float(len(gp.centres)) if isinstance(gp, SparseGP) else 0.0}
        for a in range(len(gp.Y[0])):
            logs[f"pilco_gp_log_noise_{a}"] = float(gp.hyper["log_sn"][a])
            logs[f"pilco_gp_log_signal_{a}"] = float(gp.hyper["log_sf"][a])
        return logs

    def trial_logs(self, data: dict[str, np.ndarray], env_steps: int) -> dict[str, float]:
        """The round's trials as played: their mean cost beside the cost predicted for the
        policy that played them, and the largest distance of the cost's y (the cart-pole's
        pole tip) from its target over each trial's last END_STEPS steps. Needs the round's
        rows as whole trials, each env's in order (one env per worker, or each env playing
        whole trials per round); else only the cost."""
        new = min(env_steps - self.seen, len(data["obs"]))
        self.seen = env_steps
        obs, nxt = (torch.as_tensor(data[k][len(data[k]) - new:], dtype=F64)
                    for k in ("obs", "next_obs"))
        distance = self.task.distance(nxt)
        trial_cost = float(self.task.cost(nxt).sum()) * self.trial_steps / max(new, 1)
        logs = {"pilco_trial_cost": trial_cost}
        if self.trained:  # the random trial has no prediction
            logs["pilco_trial_predicted_cost"] = self.predicted
        T = self.trial_steps
        if new and new % T == 0:
            trials = distance.reshape(-1, T)
            chained = torch.equal(obs.reshape(-1, T, obs.shape[-1])[:, 1:],
                                  nxt.reshape(-1, T, nxt.shape[-1])[:, :-1])
            if chained:
                logs["pilco_trial_end_distance"] = float(trials[:, -END_STEPS:].amax())
        return logs

    # ---- weights and checkpoints ------------------------------------------------------------
    def inference_weights(self) -> dict | None:
        return {k: v.detach().clone() for k, v in self.policy.state_dict().items()} \
            if self.trained else None

    def state_dict(self) -> dict:
        return {"policy": self.policy.state_dict(), "trained": self.trained,
                "hyper": self.hyper, "seen": self.seen, "predicted": self.predicted,
                "rng": self.rng.bit_generator.state,
                "gp_generator": self.gp_generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.trained, self.hyper = state["trained"], state["hyper"]
        self.seen, self.predicted = state["seen"], state["predicted"]
        self.rng.bit_generator.state = state["rng"]
        if "gp_generator" in state:  # checkpoints from before the sparse GP lack it
            seeding.load_torch_generator(self.gp_generator, state["gp_generator"])
