"""TensorBoard event files of a run (torch's SummaryWriter; the tensorboard package reads them)."""
from __future__ import annotations

from pathlib import Path

from torch.utils.tensorboard import SummaryWriter


class TBLogger:
    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag, float(value), step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
