"""Environments behind one `make_env(spec)`."""
from mbrl_ray.envs.dummy import PointMassEnv, optimal_action
from mbrl_ray.envs.make import check_env_spec, env_dims, make_env

__all__ = ["PointMassEnv", "optimal_action", "check_env_spec", "env_dims", "make_env"]
