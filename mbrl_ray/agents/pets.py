"""PETS (Chua et al. 2018): a probabilistic ensemble planned through with trajectory sampling
and a sampling-based planner (CEM as in the paper; RS, iCEM, MPPI or SMCP by `planner.name`;
CEM-LST and SMCP-LST by `planner.posterior=lst`). Reward and termination both come from the
learned model."""
from __future__ import annotations

import numpy as np
import torch

from mbrl_ray.config.schema import Config
from mbrl_ray.agents.sac import SACAgent
from mbrl_ray.planners import make_planner
from mbrl_ray.world_models.ensemble import ProbabilisticEnsemble
from mbrl_ray.world_models.ensemble_training import (ensemble_from_config, fit_from_config,
                                                      fit_normalizers, to_tensors)
from mbrl_ray.world_models.planning_ensemble import PlanningEnsemble
from mbrl_ray.world_models.density import log_mixture_density
from mbrl_ray.world_models.propagation import expected_returns, flat_step, policy_sequences

VALUE = "value/"  # prefix of the terminal value's weights among the inference weights
EMA = 0.05  # smoothing of per-member batch errors that pick elites in the async schedule


class PETSAgent:
    """act(obs_batch, state) -> (actions, state); fit(all data) (sync) or update(batch) (async).

    Until the first fit the agent acts uniformly at random (PETS's random first trial).
    """

    uses_normalizers = True  # the async learner refreshes input/target statistics

    def __init__(self, obs_dim: int, act_dim: int, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0, trainable: bool = True) -> None:
        self.cfg, self.device = cfg, torch.device(device)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        m = cfg.model
        self.model, self.optimizer = ensemble_from_config(m, obs_dim, act_dim, self.device,
                                                          trainable)
        self.plan_model: ProbabilisticEnsemble | None = None
        self._planning: PlanningEnsemble | None = None  # built from plan_model when acting
        self._plan_stale = False  # async updates moved the weights since plan_model was made
        self.elites = list(range(m.num_elites))
        self.member_error = torch.zeros(m.ensemble_size)
        self.planner = make_planner(cfg.planner, act_dim)
        # A SAC actor-critic trained on the same replay, for the planner's terminal value
        # (planner.value_weight), action prior (planner.prior_samples) and SMCP's proposal and
        # soft value; workers hold both.
        uses_critic = (cfg.planner.value_weight > 0 or cfg.planner.prior_samples > 0
                       or cfg.planner.name == "smcp")
        self.critic = SACAgent(obs_dim, act_dim, cfg, device, seed, trainable) \
            if uses_critic else None
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)

    # ---- acting -----------------------------------------------------------------------------
    def initial_state(self, batch: int) -> torch.Tensor:
        """The planner's warm start, one row per env."""
        return self.planner.initial_state(batch, self.device)

    def reset_state(self, state: torch.Tensor, done: np.ndarray) -> torch.Tensor:
        """Forget the warm start of envs whose episode just ended."""
        if done.any():
            state[torch.as_tensor(done, device=state.device)] = 0.0
        return state

    @property
    def batch_rows(self) -> int:
        """Rows per async gradient step: one minibatch per member."""
        return self.cfg.model.ensemble_size * self.cfg.model.batch_size

    def act(self, obs: np.ndarray, state: torch.Tensor,
            explore: bool = True) -> tuple[np.ndarray, torch.Tensor]:
        """Plan for every env of the batch in one call; returns actions in [-1, 1]. (PETS acts
        on its plan whether exploring or evaluating.)"""
        self._refresh_plan_model()
        if self.plan_model is None or (self.smcp and not self.critic.fitted):
            return self.rng.uniform(-1, 1, (len(obs), self.act_dim)).astype(np.float32), state
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if self._planning is None or self._planning.source is not self.plan_model:
            self._planning = PlanningEnsemble(self.plan_model)
        model = self._planning
        density = None
        if self.cfg.planner.posterior == "lst":
            def density(actions: torch.Tensor, next_states: torch.Tensor) -> torch.Tensor:
                return log_mixture_density(model, obs_t, actions, next_states)
        if self.smcp:
            action, state = self.planner.plan(
                lambda s, a: flat_step(model, s, a, self.generator), self.critic.proposal,
                obs_t, state, self.critic.alpha, self.generator, density)
            return action.cpu().numpy(), state
        sequence, state = self._plan_sequences(model, obs_t, state, density)
        return sequence[:, 0].cpu().numpy(), state

    @property
    def smcp(self) -> bool:
        return self.cfg.planner.name == "smcp"

    def _plan_sequences(self, model: PlanningEnsemble, obs: torch.Tensor, state: torch.Tensor,
                        density) -> tuple[torch.Tensor, torch.Tensor]:
        """The sequence planners (CEM, CEM-LST, iCEM, MPPI, RS) on trajectory sampling."""
        p, m = self.cfg.planner, self.cfg.model
        value = prior = None
        if self.critic is not None and self.critic.fitted:
            if p.value_weight > 0:
                def value(states: torch.Tensor) -> torch.Tensor:
                    return p.value_weight * self.critic.value(states)
            if p.prior_samples > 0:
                prior = policy_sequences(
                    model, obs, lambda s: self.critic.actor(s, generator=self.generator)[0],
                    p.prior_samples, p.horizon, self.generator)

        def objective(actions: torch.Tensor):
            return expected_returns(model, obs, actions, particles=m.particles,
                                    propagation=m.propagation, discount=p.discount,
                                    info_weight=p.info_weight, terminal_value=value,
                                    generator=self.generator, first_states=density is not None)

        if density is None:
            return self.planner.plan(objective, state, self.generator, prior)
        return self.planner.plan(objective, state, self.generator, prior, density)

    # ---- learning ---------------------------------------------------------------------------
    def fit(self, data: dict[str, np.ndarray], total_inserted: int | None = None
            ) -> dict[str, float]:
        """Sync schedule: train on all data to convergence (early stopping), pick elites
        (total_inserted, the replay's lifetime count, is not needed here)."""
        res = fit_from_config(self.cfg.model, self.model, self.optimizer, data, self.generator)
        self.elites = res.elites
        self.plan_model = self.model.select(self.elites)
        critic = self.critic.fit(data) if self.critic is not None else {}
        return {"model_nll": res.train_nll, "model_val_mse": res.val_mse,
                "model_epochs": float(res.epochs), **critic}

    def set_normalizers(self, data: dict[str, np.ndarray]) -> None:
        """Async schedule: refresh input/target statistics from (a sample of) the buffer."""
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
        critic = ({} if self.critic is None else
                  self.critic.update({k: v[:self.critic.batch_rows] for k, v in batch.items()}))
        return {"model_nll": float(nll), "model_val_mse": float(err.mean()), **critic}

    def _refresh_plan_model(self) -> None:
        if self._plan_stale:
            self.plan_model = self.model.select(self.elites)
            self._plan_stale = False

    # ---- weights and checkpoints ------------------------------------------------------------
    def inference_weights(self) -> dict | None:
        """What a rollout worker needs to plan: the elite members only, on CPU (and the
        terminal value's actor and critic under 'value/' keys)."""
        self._refresh_plan_model()
        if self.plan_model is None:
            return None
        weights = {k: v.detach().cpu() for k, v in self.plan_model.state_dict().items()}
        value = self.critic.value_weights() if self.critic is not None else None
        return weights | {VALUE + k: v for k, v in (value or {}).items()}

    def load_inference_weights(self, weights: dict | None) -> None:
        if weights is None:
            self.plan_model = None
            return
        if self.critic is not None:
            value = {k[len(VALUE):]: v for k, v in weights.items() if k.startswith(VALUE)}
            self.critic.load_value_weights(value or None)
        weights = {k: v for k, v in weights.items() if not k.startswith(VALUE)}
        m = self.cfg.model
        # A new module per version (not an in-place load), so that the planning view built
        # from the old one is recognised as stale.
        model = ProbabilisticEnsemble(self.obs_dim, self.act_dim, weights["head.weight"].shape[0],
                                      m.hidden_size, m.num_layers, m.termination)
        model.load_state_dict(weights)
        self.plan_model = model.to(self.device)

    def state_dict(self) -> dict:
        self._refresh_plan_model()
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "elites": self.elites, "member_error": self.member_error,
                "fitted": self.plan_model is not None,
                "critic": self.critic.state_dict() if self.critic is not None else None,
                "generator": self.generator.get_state(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.elites, self.member_error = state["elites"], state["member_error"]
        self.plan_model = self.model.select(self.elites) if state["fitted"] else None
        if self.critic is not None and state.get("critic") is not None:
            self.critic.load_state_dict(state["critic"])
        self.generator.set_state(state["generator"])
        self.rng.bit_generator.state = state["rng"]
