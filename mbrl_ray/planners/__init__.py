"""Planners: optimisers over an objective of action sequences (no world-model imports), chosen
by `planner.name`."""
from mbrl_ray.planners.base import Objective, Planner, shift
from mbrl_ray.planners.cem import CEMPlanner
from mbrl_ray.planners.cem_lst import CEMLSTPlanner
from mbrl_ray.planners.icem import ICEMPlanner, colored_noise
from mbrl_ray.planners.mppi import MPPIPlanner
from mbrl_ray.planners.random_shooting import RandomShootingPlanner
from mbrl_ray.planners.smcp import SMCPlanner


def make_planner(p, act_dim: int) -> Planner | SMCPlanner:
    """The planner of a config's `planner` section."""
    planner = _planner(p, act_dim)
    if hasattr(planner, "set_action_prior"):
        planner.set_action_prior(p.prior_weight, p.prior_init, p.discount)
    return planner


def _planner(p, act_dim: int) -> Planner | SMCPlanner:
    if p.name == "smcp":
        return SMCPlanner(act_dim, p.horizon, p.population, p.resampling, p.discount, p.sweeps,
                          p.min_std)
    if p.name == "cem":
        cem = CEMLSTPlanner if p.posterior == "lst" else CEMPlanner
        return cem(act_dim, p.horizon, p.population, p.num_elites, p.iterations, p.alpha,
                   p.init_std, p.execute)
    if p.name == "icem":
        return ICEMPlanner(act_dim, p.horizon, p.population, p.num_elites, p.iterations,
                           p.alpha, p.init_std, p.noise_beta, p.population_decay, p.keep_elites)
    if p.name == "mppi":
        return MPPIPlanner(act_dim, p.horizon, p.population, p.num_elites, p.iterations,
                           p.temperature, p.min_std, p.max_std)
    if p.name == "rs":
        return RandomShootingPlanner(act_dim, p.horizon, p.population, p.iterations)
    raise ValueError(f"planner.name={p.name!r}: no such planner")


__all__ = ["CEMLSTPlanner", "CEMPlanner", "SMCPlanner", "ICEMPlanner", "MPPIPlanner",
           "RandomShootingPlanner", "Objective", "Planner", "colored_noise", "make_planner",
           "shift"]
