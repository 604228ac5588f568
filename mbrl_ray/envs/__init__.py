"""Environments behind one `make_env(spec)`: Gymnasium ids, `dmc:<domain>-<task>`,
`metaworld:<task>` and the `dummy` test env."""
from mbrl_ray import gl

gl.configure()  # first: the suites below import mujoco, which reads MUJOCO_GL once

from mbrl_ray.envs.dummy import PointMassEnv, optimal_action  # noqa: E402
from mbrl_ray.envs.make import env_kwargs, env_spec, make_env  # noqa: E402
from mbrl_ray.envs.spec import EnvSpec  # noqa: E402
from mbrl_ray.envs.specs import check_env_spec  # noqa: E402

__all__ = ["PointMassEnv", "optimal_action", "check_env_spec", "EnvSpec", "env_kwargs", "env_spec",
           "make_env"]
