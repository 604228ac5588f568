"""TensorBoard event files of a run (torch's SummaryWriter; the tensorboard package reads them).

Every run also writes the custom-scalars layout of `tensorboard_layout.json` (the CUSTOM SCALARS
tab groups charts/, eval/, losses/, perf/, replay/); `dashboards/` links to the same file."""
from __future__ import annotations

import json
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

LAYOUT_FILE = Path(__file__).with_name("tensorboard_layout.json")


def custom_scalars_layout() -> dict:
    """{category: {chart title: ["Multiline", [tag regexes]]}}, as SummaryWriter takes it."""
    return json.loads(LAYOUT_FILE.read_text())


class TBLogger:
    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)
        self.writer.add_custom_scalars(custom_scalars_layout())

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag, float(value), step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
