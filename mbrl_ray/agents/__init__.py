"""Agents: a world model, a planner and an update rule behind one small interface
(initial_state, reset_state, act, fit, update, inference weights, state dict)."""
import torch

from mbrl_ray.agents.mbpo import MBPOAgent
from mbrl_ray.agents.pets import PETSAgent
from mbrl_ray.agents.sac import SACAgent
from mbrl_ray.config.schema import Config


def make_agent(obs_dim: int, act_dim: int, cfg: Config, device: str | torch.device = "cpu",
               seed: int = 0, trainable: bool = True) -> PETSAgent | SACAgent | MBPOAgent:
    """The agent named by `agent.name`."""
    agent = {"pets": PETSAgent, "sac": SACAgent, "mbpo": MBPOAgent}[cfg.agent.name]
    return agent(obs_dim, act_dim, cfg, device, seed=seed, trainable=trainable)


__all__ = ["MBPOAgent", "PETSAgent", "SACAgent", "make_agent"]
