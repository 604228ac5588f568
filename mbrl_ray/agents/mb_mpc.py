"""MBMF's model-based phase (Nagabandi et al. 2018): a deterministic delta network
(world_models/deterministic.py) fit to every transition held after each round, and MPC on it
with a sequence planner (random shooting as the paper). Unlike the paper, which plans on the
task's known reward function, the network also predicts the reward. The sync schedule is the
paper's (whole rounds of collection, then a fit on all data: its data aggregation); on the async
schedule the learner takes one minibatch step per update, its statistics refreshed from a replay
sample before each round."""
from __future__ import annotations

import numpy as np
import torch

from mbrl_ray import seeding
from mbrl_ray.agents.base import AgentLearner, cpu
from mbrl_ray.agents.mpc import PlanningAgent, Problem, rollouts_line
from mbrl_ray.config.schema import Config
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.replay.selectors import BatchSpec
from mbrl_ray.world_models import deterministic
from mbrl_ray.world_models.base import rollout_returns
from mbrl_ray.world_models.deterministic import DeltaMLP, DeltaRollout
from mbrl_ray.world_models.ensemble_training import to_tensors


class MBMPCAgent(PlanningAgent):
    """Acts uniformly at random until its first fit, then plans the first action of a plan,
    exploring or evaluating alike (as the paper); see the module docstring."""

    size_keys = ("delta.hidden_size", "delta.num_layers")

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        c = cfg.delta
        self.model = seeding.init_weights(
            DeltaMLP(spec.obs_dim, spec.act_dim, c.hidden_size, c.num_layers),
            seeding.init_generator(seed)).to(self.device)

    @classmethod
    def planning_cost(cls, cfg: Config, spec: EnvSpec) -> str:
        return rollouts_line(cfg.planner, "on the delta network")

    def problem(self, obs: torch.Tensor, explore: bool) -> Problem:
        def objective(actions: torch.Tensor) -> torch.Tensor:
            return rollout_returns(DeltaRollout(self.model, obs), actions,
                                   self.cfg.planner.discount)

        return Problem(objective)

    def load_inference_weights(self, weights: dict | None) -> None:
        self.fitted = weights is not None
        if weights is not None:
            self.model.load_state_dict(weights["model"])


class MBMPCLearner(MBMPCAgent, AgentLearner):
    """The delta network's fits (sync) or minibatch steps (async)."""

    refresh_rows = 20_000  # async: rows of the replay sample that refresh the statistics

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        super().__init__(spec, cfg, device, seed)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.delta.lr)

    @classmethod
    def batch_spec_for(cls, cfg: Config) -> BatchSpec:
        """Async: one minibatch of transitions (sync fits take every transition held)."""
        return BatchSpec("transitions", cfg.delta.batch_size, keys="delta.batch_size")

    # ---- learning ---------------------------------------------------------------------------
    def fit(self, data: dict[str, np.ndarray], env_steps: int) -> dict[str, float]:
        """Sync schedule: refit on every transition held (the paper's aggregated data)."""
        c = self.cfg.delta
        loss = deterministic.fit(self.model, self.optimizer, to_tensors(data, self.device),
                                 c.epochs, c.batch_size, self.generator)
        self.fitted = True
        return {"model_mse": loss}

    def refresh(self, data: dict[str, np.ndarray]) -> None:
        """Async schedule: the standardisation from a sample of the buffer."""
        self.model.fit_normalizers(to_tensors(data, self.device))

    def update(self, batch: dict) -> dict[str, float]:
        """Async schedule: one minibatch step (`delta.batch_size` rows)."""
        loss, logs = self.model.loss(to_tensors(batch, self.device))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.fitted = True
        return logs

    # ---- weights and checkpoints ------------------------------------------------------------
    def inference_weights(self) -> dict | None:
        return {"model": cpu(self.model)} if self.fitted else None

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "fitted": self.fitted, **seeding.generator_state(self.generator, self.rng)}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.fitted = state["fitted"]
        seeding.load_generator_state(self.generator, self.rng, state)
