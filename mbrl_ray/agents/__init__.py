"""Agents: a world model, a planner or policy, and an update rule behind one contract
(`agents/base.py`). `agent.name` picks the class; nothing else in the system names an agent."""
import torch

from mbrl_ray.agents.base import Agent
from mbrl_ray.agents.dcmpc import DCMPCAgent
from mbrl_ray.agents.deep_pilco import DeepPILCOAgent
from mbrl_ray.agents.dreamer import DreamerAgent
from mbrl_ray.agents.gps import GPSAgent
from mbrl_ray.agents.mb_mpc import MBMPCAgent
from mbrl_ray.agents.mbmf import MBMFAgent
from mbrl_ray.agents.mbpo import MBPOAgent
from mbrl_ray.agents.pets import PETSAgent
from mbrl_ray.agents.pilco import PILCOAgent
from mbrl_ray.agents.planet import PlaNetAgent
from mbrl_ray.agents.sac import SACAgent
from mbrl_ray.config.schema import Config
from mbrl_ray.envs.spec import EnvSpec

AGENTS: dict[str, type[Agent]] = {"pets": PETSAgent, "sac": SACAgent, "mbpo": MBPOAgent,
                                   "dcmpc": DCMPCAgent, "planet": PlaNetAgent,
                                   "dreamer": DreamerAgent, "mb-mpc": MBMPCAgent,
                                   "mbmf": MBMFAgent, "gps": GPSAgent, "pilco": PILCOAgent,
                                   "deep-pilco": DeepPILCOAgent}


def agent_class(cfg: Config) -> type[Agent]:
    """The class `agent.name` names."""
    return AGENTS[cfg.agent.name]


def make_agent(spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu", seed: int = 0,
               trainable: bool = True) -> Agent:
    """The agent named by `agent.name`; its generators and initial weights all come from
    `seed` (mbrl_ray/seeding.py), so the same seed gives the same agent in any process."""
    return agent_class(cfg)(spec, cfg, device, seed=seed, trainable=trainable)


__all__ = ["AGENTS", "Agent", "DCMPCAgent", "DeepPILCOAgent", "DreamerAgent", "GPSAgent",
           "MBMFAgent", "MBMPCAgent", "MBPOAgent", "PETSAgent", "PILCOAgent", "PlaNetAgent",
           "SACAgent", "agent_class", "make_agent"]
