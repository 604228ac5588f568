"""TensorBoard writer, its custom-scalars layout, the progress line and Ray metrics."""
from mbrl_ray.telemetry.progress import Progress
from mbrl_ray.telemetry.tensorboard import TBLogger

__all__ = ["Progress", "TBLogger"]
