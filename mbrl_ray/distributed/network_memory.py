"""How much memory a run's networks take, counted on PyTorch's meta device (shapes only: nothing
is allocated, so a config asking for terabytes is measured in milliseconds), and the preflight
check that refuses a local run whose networks and replay cannot fit this machine."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from mbrl_ray.agents import Agent, make_actor, make_learner
from mbrl_ray.config import Config, ConfigError
from mbrl_ray.config.machine import is_local_run, local_memory_bytes
from mbrl_ray.envs import EnvSpec

ADAM_COPIES = 3  # per stepped parameter: its gradient and Adam's two moments
META = torch.device("meta")


@dataclass(frozen=True)
class NetworkBytes:
    """held: every parameter and buffer the agent keeps (weights, target copies, fixed
    tables); stepped: the parameters its optimisers update."""
    held: int
    stepped: int

    @property
    def training(self) -> int:
        """A learner's need: what it holds plus a gradient and two Adam moments per stepped
        parameter (activations, which scale with the batch, come on top)."""
        return self.held + ADAM_COPIES * self.stepped


def network_bytes(agent: Agent) -> NetworkBytes:
    """The bytes of the tensors an agent holds and its optimisers step, found by walking its
    attributes (its components, their modules and optimisers)."""
    tensors, optimizers = _reachable(agent)
    stepped = {id(p): p for o in optimizers for g in o.param_groups for p in g["params"]}
    return NetworkBytes(sum(t.nbytes for t in tensors), sum(p.nbytes for p in stepped.values()))


def agent_network_bytes(cfg: Config, spec: EnvSpec, learner: bool) -> NetworkBytes:
    """network_bytes of the agent this config builds (its training part, the learner's, if
    `learner`, else its acting part, a rollout worker's), built on the meta device."""
    make = make_learner if learner else make_actor
    with torch.device(META):
        return network_bytes(make(spec, cfg, META, seed=0))


def _reachable(root: object) -> tuple[list[torch.Tensor], list[torch.optim.Optimizer]]:
    """The tensors and optimisers reachable from root through the attributes of this package's
    objects and of torch modules, and through lists, tuples and dicts (each object once)."""
    tensors, optimizers, seen, stack = [], [], set(), [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            tensors.append(obj)
        elif isinstance(obj, torch.optim.Optimizer):
            optimizers.append(obj)
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, torch.nn.Module) or type(obj).__module__.startswith("mbrl_ray."):
            stack.extend(vars(obj).values())
    return tensors, optimizers
