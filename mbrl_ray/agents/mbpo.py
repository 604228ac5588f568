"""MBPO (Janner et al. 2019, Dyna): SAC trained mostly on short model rollouts branched from
real states. All model and SAC work happens in the learner (sync schedule); rollout workers act
with the SAC actor alone, so what travels to them is the actor's weights."""
from __future__ import annotations

import numpy as np
import torch

from mbrl_ray import seeding
from mbrl_ray.agents.sac import SACAgent, SACLearner
from mbrl_ray.config.schema import Config
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.replay import TransitionBuffer, empty_transitions
from mbrl_ray.world_models.ensemble_training import ensemble_from_config, fit_from_config
from mbrl_ray.world_models.planning_ensemble import PlanningEnsemble
from mbrl_ray.world_models.propagation import flat_step


def rollout_length(cfg, env_steps: int) -> int:
    """MBPO's schedule: start length until schedule_start_steps, end length from
    schedule_end_steps, linear in between (rounded down)."""
    b = cfg.mbpo
    span = max(b.schedule_end_steps - b.schedule_start_steps, 1)
    frac = min(max((env_steps - b.schedule_start_steps) / span, 0.0), 1.0)
    return int(b.rollout_length_start + frac * (b.rollout_length_end - b.rollout_length_start))


class MBPOAgent(SACAgent):
    """Acts like SAC, from the actor's weights alone: all model and SAC work is the learner's.
    Sync schedule only: its rounds are defined by new env steps."""

    size_keys = ("model.ensemble_size", "model.hidden_size", "model.num_layers",
                 "sac.hidden_size", "sac.num_layers")
    schedules = ("sync",)


class MBPOLearner(MBPOAgent, SACLearner):
    """fit(all real data) = fit the ensemble, branch rollouts for the new steps, then
    mbpo.updates_per_step SAC steps per new step on real_ratio real / rest model data."""

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        obs_dim, act_dim, b = spec.obs_dim, spec.act_dim, cfg.mbpo
        model_seed = seeding.derive(seed, seeding.MODEL)
        self.generator = seeding.device_generator(self.device, model_seed)
        self.rng = np.random.default_rng(model_seed)
        self.seen = 0  # real steps already branched from
        self.sac_updates = 0  # SAC steps taken, logged as counted (benches compare the work)
        self.model, self.optimizer = ensemble_from_config(cfg.model, obs_dim, act_dim, self.device,
                                                          seed=model_seed)
        longest = max(b.rollout_length_start, b.rollout_length_end)
        self.model_data = TransitionBuffer(b.rollouts_per_step * b.retain_steps * longest,
                                           obs_dim, act_dim)

    def update(self, batch: dict) -> dict[str, float]:
        """Not used: MBPO trains in its sync rounds (`fit`); `schedules` says so to preflight."""
        raise NotImplementedError("MBPO trains in sync rounds (fit), not on single batches")

    # ---- learning ---------------------------------------------------------------------------
    def fit(self, data: dict[str, np.ndarray], env_steps: int) -> dict[str, float]:
        """env_steps: env steps the replay ever took (its rows stop growing once it wraps)."""
        b = self.cfg.mbpo
        res = fit_from_config(self.cfg.model, self.model, self.optimizer, data, self.generator)
        new = int(env_steps) - self.seen
        self.seen = int(env_steps)
        length = rollout_length(self.cfg, self.seen)
        self._branch(data, PlanningEnsemble(self.model.select(res.elites)),
                     b.rollouts_per_step * new, length)
        total: dict[str, float] = {}
        updates = b.updates_per_step * new
        for _ in range(updates):
            for k, v in self.sac.update(self._mixed_batch(data)).items():
                total[k] = total.get(k, 0.0) + v / updates
        self.sac_updates += updates
        return {"model_nll": res.train_nll, "model_val_mse": res.val_mse,
                "model_epochs": float(res.epochs), "mbpo_rollout_length": float(length),
                "mbpo_model_rows": float(self.model_data.size),
                "mbpo_sac_updates": float(self.sac_updates), **total}

    @torch.no_grad()
    def _branch(self, data: dict[str, np.ndarray], model: PlanningEnsemble, count: int,
                length: int) -> None:
        """`count` rollouts of the SAC policy through the model from random real states, each
        row on one member; a rollout stops where the model samples a termination."""
        start = self.rng.integers(0, len(data["obs"]), count)
        state = torch.as_tensor(data["obs"][start], device=self.device)
        for _ in range(length):
            action, _ = self.sac.actor(state, generator=self.generator)
            nxt, reward, p_term = flat_step(model, state, action, self.generator)
            done = torch.rand(p_term.shape, device=self.device, generator=self.generator) < p_term
            chunk = empty_transitions(model.obs_dim, model.act_dim, len(state))
            for key, value in (("obs", state), ("action", action), ("reward", reward),
                               ("next_obs", nxt), ("terminated", done)):
                chunk[key][:] = value.cpu().numpy()
            self.model_data.add(chunk)
            state = nxt[~done]
            if not len(state):
                break

    def _mixed_batch(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = self.cfg.sac.batch_size
        real = int(round(self.cfg.mbpo.real_ratio * n)) if self.model_data.size else n
        idx = self.rng.integers(0, len(data["obs"]), real)
        parts = [{k: data[k][idx] for k in ("obs", "action", "reward", "next_obs", "terminated")}]
        if n > real:
            parts.append(self.model_data.sample(n - real, self.rng))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    # ---- checkpoints (inference weights: the actor's, as SAC's) --------------------------------
    def state_dict(self) -> dict:
        """SAC, model and counters; the model rollouts are not saved (they are regenerated
        from the next fit on)."""
        return {"sac": self.sac.state_dict(), "seen": self.seen, "sac_updates": self.sac_updates,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                **seeding.generator_state(self.generator, self.rng)}

    def load_state_dict(self, state: dict) -> None:
        self.sac.load_state_dict(state["sac"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.seen = state["seen"]
        self.sac_updates = state.get("sac_updates", 0)  # absent in checkpoints before it was kept
        seeding.load_generator_state(self.generator, self.rng, state)
