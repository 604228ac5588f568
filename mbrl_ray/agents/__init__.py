"""Agents: a world model, a planner or policy, and an update rule behind one contract
(`agents/base.py`), each in two parts: the acting part a rollout worker builds (`make_actor`)
and the training part the learner builds (`make_learner`). `agent.name` picks the class;
nothing else in the system names an agent."""
import torch

from mbrl_ray.agents.base import Agent, AgentLearner
from mbrl_ray.agents.dcmpc import DCMPCAgent, DCMPCLearner
from mbrl_ray.agents.deep_pilco import DeepPILCOAgent, DeepPILCOLearner
from mbrl_ray.agents.dreamer import DreamerAgent, DreamerLearner
from mbrl_ray.agents.gps import GPSAgent, GPSLearner
from mbrl_ray.agents.mb_mpc import MBMPCAgent, MBMPCLearner
from mbrl_ray.agents.mbmf import MBMFAgent, MBMFLearner
from mbrl_ray.agents.mbpo import MBPOAgent, MBPOLearner
from mbrl_ray.agents.pets import PETSAgent, PETSLearner
from mbrl_ray.agents.pilco import PILCOAgent, PILCOLearner
from mbrl_ray.agents.planet import PlaNetAgent, PlaNetLearner
from mbrl_ray.agents.sac import SACAgent, SACLearner
from mbrl_ray.config.schema import Config
from mbrl_ray.envs.spec import EnvSpec

AGENTS: dict[str, type[AgentLearner]] = {
    "pets": PETSLearner, "sac": SACLearner, "mbpo": MBPOLearner, "dcmpc": DCMPCLearner,
    "planet": PlaNetLearner, "dreamer": DreamerLearner, "mb-mpc": MBMPCLearner,
    "mbmf": MBMFLearner, "gps": GPSLearner, "pilco": PILCOLearner,
    "deep-pilco": DeepPILCOLearner}


def agent_class(cfg: Config) -> type[AgentLearner]:
    """The training part `agent.name` names (its class methods check and size the config)."""
    return AGENTS[cfg.agent.name]


def make_learner(spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
                 seed: int = 0) -> AgentLearner:
    """The training part of the agent `agent.name` names (the learner's); its generators and
    initial weights all come from `seed` (mbrl_ray/seeding.py), so the same seed gives the
    same agent in any process."""
    return agent_class(cfg)(spec, cfg, device, seed=seed)


def make_actor(spec: EnvSpec, cfg: Config, device: str | torch.device = "cpu",
               seed: int = 0) -> Agent:
    """The acting part of the agent `agent.name` names (a rollout worker's or an evaluator's):
    uniformly random actions until `load_inference_weights` hands it the learner's."""
    return agent_class(cfg).acting_class()(spec, cfg, device, seed=seed)


__all__ = ["AGENTS", "Agent", "AgentLearner", "DCMPCAgent", "DCMPCLearner", "DeepPILCOAgent",
           "DeepPILCOLearner", "DreamerAgent", "DreamerLearner", "GPSAgent", "GPSLearner",
           "MBMFAgent", "MBMFLearner", "MBMPCAgent", "MBMPCLearner", "MBPOAgent", "MBPOLearner",
           "PETSAgent", "PETSLearner", "PILCOAgent", "PILCOLearner", "PlaNetAgent",
           "PlaNetLearner", "SACAgent", "SACLearner", "agent_class", "make_actor",
           "make_learner"]
