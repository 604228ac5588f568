"""TensorBoard event files of a run (torch's SummaryWriter; the tensorboard package reads them).

Every run also writes the custom-scalars layout of `tensorboard_layout.json` (the CUSTOM SCALARS
tab groups charts/, eval/, losses/, perf/, replay/); `dashboards/` links to the same file."""
from __future__ import annotations

import json
from pathlib import Path

from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter

LAYOUT_FILE = Path(__file__).with_name("tensorboard_layout.json")


def custom_scalars_layout() -> dict:
    """{category: {chart title: ["Multiline", [tag regexes]]}}, as SummaryWriter takes it."""
    return json.loads(LAYOUT_FILE.read_text())


class TBLogger:
    """Each tag gets at most one point per step, in increasing steps.

    resume_step: a resumed run's checkpoint step. Points logged after it by the run that
    stopped are purged (TensorBoard hides them; the resumed run logs those steps anew); points
    up to and including it are kept and never written again."""

    def __init__(self, log_dir: Path, resume_step: int | None = None) -> None:
        self.writer = SummaryWriter(str(log_dir), purge_step=None if resume_step is None
                                    else resume_step + 1)
        self.last: dict[str, int] = {}
        self.floor = -1 if resume_step is None else resume_step
        self.writer.add_custom_scalars(custom_scalars_layout())

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            if value is not None and step > self.last.get(tag, self.floor):
                self.writer.add_scalar(tag, float(value), step)
                self.last[tag] = step

    def video(self, tag: str, gif: bytes, height: int, width: int, step: int) -> None:
        """An animated GIF (telemetry.video.encode_gif) under `tag`, shown in the IMAGES tab."""
        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif)
        self.writer._get_file_writer().add_summary(
            Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
