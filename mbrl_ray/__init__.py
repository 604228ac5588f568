"""mbrl_ray: distributed actor-learner model-based RL on Ray."""
# The headless OpenGL backend is chosen before anything imports mujoco, in the driver and in
# every Ray worker process alike. Nothing heavier is imported here: the CLI answers bad input
# before torch and Ray load.
from mbrl_ray import gl

gl.configure()
