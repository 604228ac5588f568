"""Planners: optimisers over an objective of action sequences (no world-model imports), chosen
by `planner.name`."""
from mbrl_ray.planners.base import Objective, Planner, shift
from mbrl_ray.planners.cem import CEMPlanner
from mbrl_ray.planners.icem import ICEMPlanner, colored_noise
from mbrl_ray.planners.mppi import MPPIPlanner
from mbrl_ray.planners.random_shooting import RandomShootingPlanner


def make_planner(p, act_dim: int) -> Planner:
    """The planner of a config's `planner` section."""
    if p.name == "cem":
        return CEMPlanner(act_dim, p.horizon, p.population, p.num_elites, p.iterations,
                          p.alpha, p.init_std, p.execute)
    if p.name == "icem":
        return ICEMPlanner(act_dim, p.horizon, p.population, p.num_elites, p.iterations,
                           p.alpha, p.init_std, p.noise_beta, p.population_decay, p.keep_elites)
    if p.name == "mppi":
        return MPPIPlanner(act_dim, p.horizon, p.population, p.num_elites, p.iterations,
                           p.temperature, p.min_std, p.max_std)
    if p.name == "rs":
        return RandomShootingPlanner(act_dim, p.horizon, p.population, p.iterations)
    raise ValueError(f"planner.name={p.name!r}: no such planner")


__all__ = ["CEMPlanner", "ICEMPlanner", "MPPIPlanner", "RandomShootingPlanner", "Objective",
           "Planner", "colored_noise", "make_planner", "shift"]
