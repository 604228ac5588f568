"""TensorBoard writer and progress line."""
from mbrl_ray.telemetry.progress import Progress
from mbrl_ray.telemetry.tensorboard import TBLogger

__all__ = ["Progress", "TBLogger"]
