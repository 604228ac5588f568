"""PETS (Chua et al. 2018): a probabilistic ensemble planned through with trajectory sampling
and a sampling-based planner (CEM as in the paper; RS, iCEM, MPPI or SMCP by `planner.name`;
CEM-LST and SMCP-LST by `planner.posterior=lst`). Reward and termination both come from the
learned model."""
from __future__ import annotations

import numpy as np
import torch

from mbrl_ray import seeding
from mbrl_ray.agents.base import AgentLearner, cpu
from mbrl_ray.agents.mpc import PlanningAgent, Problem
from mbrl_ray.config.schema import Config
from mbrl_ray.critics import SoftActorCritic
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.replay.selectors import BatchSpec
from mbrl_ray.world_models.density import log_mixture_density
from mbrl_ray.world_models.ensemble import ProbabilisticEnsemble, planning_flops
from mbrl_ray.world_models.ensemble_training import (ensemble_from_config, fit_from_config,
                                                      fit_normalizers, to_tensors)
from mbrl_ray.world_models.planning_ensemble import PlanningEnsemble
from mbrl_ray.world_models.propagation import expected_returns, flat_step, policy_sequences

EMA = 0.05  # smoothing of per-member batch errors that pick elites in the async schedule
NORMALIZER_ROWS = 20_000  # async: rows of the replay sample that refresh the statistics


class PETSAgent(PlanningAgent):
    """Plans for every env of a batch in one call on the elite members it was sent. Until the
    first fit it acts uniformly at random (PETS's random first trial)."""

    size_keys = ("model.ensemble_size", "model.hidden_size", "model.num_layers",
                 "sac.hidden_size", "sac.num_layers")

    @classmethod
    def planning_cost(cls, cfg: Config, spec: EnvSpec) -> str:
        p, m = cfg.planner, cfg.model
        rollouts = p.population * m.particles * p.iterations
        gflop = planning_flops(cfg, spec.obs_dim, spec.act_dim) / 1e9
        return (f"planning: {p.name}, {rollouts:,} rollouts of {p.horizon} steps per action "
                f"(population x particles x iterations), about {gflop:.3g} GFLOP per action "
                f"per env")

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        self.plan_model: ProbabilisticEnsemble | None = None  # the elites, once fitted
        self._planning: PlanningEnsemble | None = None  # built from plan_model when acting
        # A SAC actor-critic trained on the same replay, for the planner's terminal value
        # (planner.value_weight), action prior (planner.prior_samples) and SMCP's proposal and
        # soft value; workers hold its networks too.
        uses_sac = (cfg.planner.value_weight > 0 or cfg.planner.prior_samples > 0
                    or self.policy.needs_proposal or cfg.planner.prior_weight > 0)
        self.sac = SoftActorCritic(spec.obs_dim, spec.act_dim, cfg.sac, self.device,
                                   seeding.derive(seed, seeding.SAC), self.trains) \
            if uses_sac else None

    # ---- acting -----------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Fitted, and for SMCP its proposal trained too. (PETS acts on its plan whether
        exploring or evaluating.)"""
        self._refresh_plan_model()
        return self.plan_model is not None and (not self.policy.needs_proposal
                                                or self.sac.fitted)

    def problem(self, obs: torch.Tensor, explore: bool) -> Problem:
        if self._planning is None or self._planning.source is not self.plan_model:
            self._planning = PlanningEnsemble(self.plan_model)
        return self._problem(self._planning, obs)

    def _problem(self, model: PlanningEnsemble, obs: torch.Tensor) -> Problem:
        """Trajectory sampling through the elites for the sequence planners, one sampled step
        per particle for SMCP; the critic's terms where their weights ask for them."""
        p, m = self.cfg.planner, self.cfg.model
        density = value = log_prior = prior = None
        if p.posterior == "lst":
            def density(actions: torch.Tensor, next_states: torch.Tensor) -> torch.Tensor:
                return log_mixture_density(model, obs, actions, next_states)
        if self.sac is not None and self.sac.fitted:
            if p.prior_weight > 0:
                def log_prior(states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
                    return p.prior_weight * self.sac.actor.log_prob(states, actions)
            if p.value_weight > 0:
                def value(states: torch.Tensor) -> torch.Tensor:
                    return p.value_weight * self.sac.value(states)
            if p.prior_samples > 0:
                def prior() -> torch.Tensor:
                    return policy_sequences(
                        model, obs, lambda s: self.sac.actor(s, generator=self.generator)[0],
                        p.prior_samples, p.horizon, self.generator)

        def objective(actions: torch.Tensor):
            return expected_returns(model, obs, actions, particles=m.particles,
                                    propagation=m.propagation, discount=p.discount,
                                    info_weight=p.info_weight, info_term=p.info_term,
                                    terminal_value=value, log_prior=log_prior,
                                    generator=self.generator, first_states=density is not None)

        smcp = {} if self.sac is None else {
            "proposal": self.sac.proposal, "temperature": self.sac.alpha,
            "step": lambda s, a: flat_step(model, s, a, self.generator)}
        return Problem(objective, prior, density, obs, **smcp)

    def _refresh_plan_model(self) -> None:
        """A worker plans on the members it was sent (the learner's copy refreshes them)."""

    def load_inference_weights(self, weights: dict | None) -> None:
        if weights is None:
            self.plan_model = None
            return
        if self.sac is not None:
            self.sac.load_weights(weights["sac"])
        m = self.cfg.model
        # A new module per version (not an in-place load), so that the planning view built
        # from the old one is recognised as stale.
        model = ProbabilisticEnsemble(self.spec.obs_dim, self.spec.act_dim,
                                      weights["model"]["head.weight"].shape[0], m.hidden_size,
                                      m.num_layers, m.termination)
        model.load_state_dict(weights["model"])
        self.plan_model = model.to(self.device)


class PETSLearner(PETSAgent, AgentLearner):
    """The ensemble's training: fit(all data) to convergence (sync) or update(batch) (async),
    elites picked after each; the SAC actor-critic trained beside it when the planner uses it."""

    refresh_rows = NORMALIZER_ROWS

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        m = cfg.model
        self.model, self.optimizer = ensemble_from_config(m, spec.obs_dim, spec.act_dim,
                                                          self.device, True, seed)
        self._plan_stale = False  # async updates moved the weights since plan_model was made
        self.elites = list(range(m.num_elites))
        self.member_error = torch.zeros(m.ensemble_size)

    @classmethod
    def batch_spec_for(cls, cfg: Config) -> BatchSpec:
        """One minibatch per member (its slice of the rows)."""
        m = cfg.model
        return BatchSpec("transitions", m.ensemble_size * m.batch_size,
                         keys="model.ensemble_size x model.batch_size")

    # ---- learning ---------------------------------------------------------------------------
    def fit(self, data: dict[str, np.ndarray], env_steps: int) -> dict[str, float]:
        """Sync schedule: train on all data to convergence (early stopping), pick elites."""
        res = fit_from_config(self.cfg.model, self.model, self.optimizer, data, self.generator)
        self.elites = res.elites
        self.plan_model = self.model.select(self.elites)
        sac = self.sac.fit(data) if self.sac is not None else {}
        return {"model_nll": res.train_nll, "model_val_mse": res.val_mse,
                "model_epochs": float(res.epochs), **sac}

    def refresh(self, data: dict[str, np.ndarray]) -> None:
        """Async schedule: refresh input/target statistics from a sample of the buffer."""
        fit_normalizers(self.model, to_tensors(data, self.device))

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """Async schedule: one gradient step; `batch` holds E x batch_size rows, one slice each."""
        e = self.model.members
        d = {k: v.reshape(e, -1, *v.shape[1:]) for k, v in to_tensors(batch, self.device).items()}
        args = (d["obs"], d["action"], d["reward"], d["next_obs"], d["terminated"])
        with torch.no_grad():  # error on rows not yet trained on in this step picks elites
            mean, _ = self.model(d["obs"], d["action"])
            err = ((mean - self.model.targets(d["obs"], d["reward"], d["next_obs"])) ** 2)
            self.member_error.lerp_(err.mean(dim=(1, 2)).cpu(), EMA)
        loss, nll, _ = self.model.loss(*args)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.elites = sorted(torch.argsort(self.member_error)[:self.cfg.model.num_elites].tolist())
        self._plan_stale = True  # copying the elites waits until someone needs them
        n = self.cfg.sac.batch_size
        sac = {} if self.sac is None else self.sac.update({k: v[:n] for k, v in batch.items()})
        return {"model_nll": float(nll.detach()), "model_val_mse": float(err.mean()), **sac}

    def _refresh_plan_model(self) -> None:
        if self._plan_stale:
            self.plan_model = self.model.select(self.elites)
            self._plan_stale = False

    # ---- weights and checkpoints ------------------------------------------------------------
    def inference_weights(self) -> dict | None:
        """What a rollout worker needs to plan: the elite members only, on CPU, and the SAC
        actor-critic's networks where the planner uses them."""
        self._refresh_plan_model()
        if self.plan_model is None:
            return None
        return {"model": cpu(self.plan_model),
                "sac": self.sac.weights() if self.sac is not None else None}

    def state_dict(self) -> dict:
        self._refresh_plan_model()
        return {"model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "elites": self.elites, "member_error": self.member_error,
                "fitted": self.plan_model is not None,
                "sac": self.sac.state_dict() if self.sac is not None else None,
                **seeding.generator_state(self.generator, self.rng)}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.elites, self.member_error = state["elites"], state["member_error"]
        self.plan_model = self.model.select(self.elites) if state["fitted"] else None
        if self.sac is not None and state.get("sac") is not None:
            self.sac.load_state_dict(state["sac"])
        seeding.load_generator_state(self.generator, self.rng, state)
