"""Agents: a world model, a planner and an update rule behind one small interface."""
from mbrl_ray.agents.pets import PETSAgent

__all__ = ["PETSAgent"]
