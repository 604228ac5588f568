"""Planners: optimisers over an objective of action sequences (no world-model imports)."""
from mbrl_ray.planners.cem import CEMPlanner, Objective

__all__ = ["CEMPlanner", "Objective"]
