"""MBPO (Janner et al. 2019, Dyna): SAC trained mostly on short model rollouts branched from
real states. All model and SAC work happens in the learner (sync schedule); rollout workers act
with the SAC actor alone, so what travels to them is the actor's weights."""
from __future__ import annotations

import numpy as np
import torch

from mbrl_ray.agents.sac import SACAgent
from mbrl_ray.config.schema import Config
from mbrl_ray.replay import ReplayBuffer, empty_chunk
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


class MBPOAgent:
    """act like SAC; fit(all real data) = fit the ensemble, branch rollouts for the new steps,
    then mbpo.updates_per_step SAC steps per new step on real_ratio real / rest model data."""

    uses_normalizers = False

    def __init__(self, obs_dim: int, act_dim: int, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0, trainable: bool = True) -> None:
        self.cfg, self.device = cfg, torch.device(device)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.sac = SACAgent(obs_dim, act_dim, cfg, device, seed, trainable)
        self.batch_rows = self.sac.batch_rows
        if not trainable:
            return
        b = cfg.mbpo
        self.model, self.optimizer = ensemble_from_config(cfg.model, obs_dim, act_dim, self.device)
        longest = max(b.rollout_length_start, b.rollout_length_end)
        self.model_data = ReplayBuffer(b.rollouts_per_step * b.retain_steps * longest,
                                       obs_dim, act_dim)
        self.seen = 0  # real steps already branched from
        self.generator = torch.Generator(self.device).manual_seed(seed + 1)
        self.rng = np.random.default_rng(seed + 1)

    # ---- acting: the SAC actor ----------------------------------------------------------------
    def initial_state(self, batch: int) -> torch.Tensor:
        return self.sac.initial_state(batch)

    def reset_state(self, state: torch.Tensor, done: np.ndarray) -> torch.Tensor:
        return state

    def act(self, obs: np.ndarray, state: torch.Tensor, explore: bool = True):
        return self.sac.act(obs, state, explore)

    # ---- learning ---------------------------------------------------------------------------
    def fit(self, data: dict[str, np.ndarray], total_inserted: int | None = None
            ) -> dict[str, float]:
        """total_inserted: env steps the replay ever took (its rows stop growing once it wraps);
        None means every step is still in `data`."""
        b = self.cfg.mbpo
        res = fit_from_config(self.cfg.model, self.model, self.optimizer, data, self.generator)
        steps = len(data["obs"]) if total_inserted is None else int(total_inserted)
        new = steps - self.seen
        self.seen = steps
        length = rollout_length(self.cfg, self.seen)
        self._branch(data, PlanningEnsemble(self.model.select(res.elites)),
                     b.rollouts_per_step * new, length)
        total: dict[str, float] = {}
        updates = b.updates_per_step * new
        for _ in range(updates):
            for k, v in self.sac.update(self._mixed_batch(data)).items():
                total[k] = total.get(k, 0.0) + v / updates
        return {"model_nll": res.train_nll, "model_val_mse": res.val_mse,
                "model_epochs": float(res.epochs), "mbpo_rollout_length": float(length),
                "mbpo_model_rows": float(self.model_data.size), **total}

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
            chunk = empty_chunk(model.obs_dim, model.act_dim, len(state))
            for key, value in (("obs", state), ("action", action), ("reward", reward),
                               ("next_obs", nxt), ("terminated", done), ("episode_end", done)):
                chunk[key][:] = value.cpu().numpy()
            self.model_data.add(chunk)
            state = nxt[~done]
            if not len(state):
                break

    def _mixed_batch(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = self.batch_rows
        real = int(round(self.cfg.mbpo.real_ratio * n)) if self.model_data.size else n
        idx = self.rng.integers(0, len(data["obs"]), real)
        parts = [{k: data[k][idx] for k in ("obs", "action", "reward", "next_obs", "terminated")}]
        if n > real:
            parts.append(self.model_data.sample(n - real, self.rng))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    # ---- weights and checkpoints ------------------------------------------------------------
    def inference_weights(self) -> dict | None:
        return self.sac.inference_weights()

    def load_inference_weights(self, weights: dict | None) -> None:
        self.sac.load_inference_weights(weights)

    def state_dict(self) -> dict:
        """SAC, model and counters; the model rollouts are not saved (they are regenerated
        from the next fit on)."""
        return {"sac": self.sac.state_dict(), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "seen": self.seen,
                "generator": self.generator.get_state(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.sac.load_state_dict(state["sac"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.seen = state["seen"]
        self.generator.set_state(state["generator"])
        self.rng.bit_generator.state = state["rng"]
