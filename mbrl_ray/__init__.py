"""mbrl_ray: distributed actor-learner model-based RL on Ray."""
# Importing the envs package picks the headless OpenGL backend before anything imports mujoco,
# in the driver and in every Ray worker process alike.
import mbrl_ray.envs  # noqa: F401
