"""The contract every agent keeps, so that the learner and the rollout workers hold no
algorithm-specific code and a new agent needs no edit in the driver.

An agent comes in two parts, as RLlib's RLModule and Learner:

- `Agent`, the acting part, is what a rollout worker builds: `initial_state`, `act` and
  `load_inference_weights`; it acts uniformly at random while it holds no weights. It holds no
  optimiser, no target network and no training data.
- `AgentLearner`, the training part, is what the learner actor builds: a subclass of the
  agent's acting part (so it can act, for evaluation) that adds `batch_spec`, `update` / `fit`,
  `inference_weights` and `state_dict`.

Both are built from the env's spec and the config. The class says what it accepts (state
vectors, pixels), which schedules it runs on, and what batches it trains on; `check_config`
refuses a config it cannot run, before any actor starts. Acting state is a dict of tensors
whose first dim is the env, reset per env by one generic rule. Inference weights (what a worker
needs to act) are a nested dict of tensors; `state_dict` is everything needed to continue
training. Components shared by both parts (critics, ensembles) are built with
`trainable=self.trains`: optimisers and targets on the learner's side only.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import torch

from mbrl_ray.config.loading import ConfigError
from mbrl_ray.config.schema import Config
from mbrl_ray.envs.spec import EnvSpec
from mbrl_ray.replay.selectors import BatchSpec

State = dict[str, torch.Tensor]
Weights = dict  # nested dict of tensors


def reset_rows(state: State, done: np.ndarray) -> State:
    """Zero every state tensor's rows of envs whose episode just ended (the generic reset)."""
    if done.any():
        for value in state.values():
            value[torch.as_tensor(done, device=value.device)] = 0
    return state


class Agent(ABC):
    """The acting part of every agent; see the module docstring for the contract."""

    accepts: ClassVar[tuple[str, ...]] = ("state",)            # EnvSpec.kind values
    schedules: ClassVar[tuple[str, ...]] = ("sync", "async")   # train.schedule values
    # The config keys that size its networks: a config too large for the machine names them.
    size_keys: ClassVar[tuple[str, ...]] = ()
    trains: ClassVar[bool] = False  # the training part (AgentLearner) sets it

    def __init__(self, spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        self.spec, self.cfg, self.device = spec, cfg, torch.device(device)

    # ---- what the agent needs, asked before any actor starts ----------------------------------
    @classmethod
    def check_config(cls, cfg: Config, spec: EnvSpec) -> None:
        """Raise ConfigError for a config or env this agent cannot run."""
        name = cfg.agent.name
        if spec.kind not in cls.accepts:
            raise ConfigError(f"agent.name={name!r} acts on {' or '.join(cls.accepts)} "
                              f"observations, but env.id={cfg.env.id!r} with "
                              f"env.obs={cfg.env.obs!r} gives {spec.kind} {spec.obs_shape}")
        if cfg.train.schedule not in cls.schedules:
            raise ConfigError(f"agent.name={name!r} runs on train.schedule "
                              f"{' or '.join(cls.schedules)}, not {cfg.train.schedule!r}")

    @classmethod
    def planning_cost(cls, cfg: Config, spec: EnvSpec) -> str | None:
        """One line on what each action costs its planner, printed before the first step (a
        value that cannot finish shows there); None for an agent that does not plan."""
        return None

    @classmethod
    def after_training(cls, cfg: Config, run_dir, printer=print) -> None:
        """What `mbrl-ray train` runs once the step budget is trained (a phase that does not
        run on the actor topology: MBMF's PPO fine-tuning); nothing by default."""

    def random_actions(self, count: int) -> np.ndarray:
        """Uniform actions in [-1, 1], (count, act_dim), from the agent's numpy generator
        `self.rng`: how an agent acts while it holds no trained weights."""
        return self.rng.uniform(-1, 1, (count, self.spec.act_dim)).astype(np.float32)

    # ---- acting (rollout workers) -------------------------------------------------------------
    def initial_state(self, batch: int) -> State:
        """Acting state of `batch` envs (empty for a memoryless policy)."""
        return {}

    def reset_state(self, state: State, done: np.ndarray) -> State:
        return reset_rows(state, done)

    @abstractmethod
    def act(self, obs: np.ndarray, state: State, explore: bool = True
            ) -> tuple[np.ndarray, State]:
        """Actions in [-1, 1] for a batch of observations, and the next state."""

    open_loop_rows: ClassVar[int] = 0  # an evaluation's first rows given to open_loop_video

    def open_loop_video(self, obs: np.ndarray, actions: np.ndarray
                        ) -> tuple[np.ndarray, float] | None:
        """An episode's first `open_loop_rows` rows (obs, the actions that led to them) ->
        frames of the world model's open-loop prediction beside the real ones (T, H, W, 3) uint8
        and its error; None for agents whose model cannot draw observations."""
        return None

    @abstractmethod
    def load_inference_weights(self, weights: Weights | None) -> None:
        """Act from the learner's `inference_weights` (None: act at random again)."""


class AgentLearner(Agent):
    """The training part of every agent (the learner's): its acting part plus training."""

    trains = True

    @classmethod
    def acting_class(cls) -> type[Agent]:
        """The acting part a rollout worker builds: the first class of the MRO that is not
        a training part."""
        return next(c for c in cls.__mro__ if not issubclass(c, AgentLearner))

    @classmethod
    @abstractmethod
    def batch_spec_for(cls, cfg: Config) -> BatchSpec:
        """The batch one `update` takes (kind, size, n-step or sequence length)."""

    @property
    def batch_spec(self) -> BatchSpec:
        return self.batch_spec_for(self.cfg)

    # ---- learning ------------------------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One training step on a batch of `batch_spec` (async schedule): tensors on the
        agent's device (frames still uint8), as the learner actor hands them."""
        raise NotImplementedError(f"agent.name={self.cfg.agent.name!r} trains on the sync "
                                  f"schedule only (fit)")

    def fit(self, data: dict[str, np.ndarray], env_steps: int) -> dict[str, float]:
        """Sync schedule: one round of training on every transition held (env_steps: env steps
        the replay ever took, which keeps growing after it wraps)."""
        raise NotImplementedError(f"{type(self).__name__} has no full-data fit")

    refresh_rows: int = 0  # async: rows of an uncounted replay sample given to `refresh`

    def refresh(self, data: dict[str, np.ndarray]) -> None:
        """Async schedule, before each round of updates: statistics from a replay sample."""

    # ---- weights and checkpoints --------------------------------------------------------------
    @abstractmethod
    def inference_weights(self) -> Weights | None:
        """What a rollout worker needs to act, on CPU; None while it should act at random."""

    @abstractmethod
    def state_dict(self) -> dict: ...

    @abstractmethod
    def load_state_dict(self, state: dict) -> None: ...


def cpu(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's state dict, detached, on CPU (for inference weights)."""
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}
