"""Offscreen frames of a MuJoCo model through `mujoco.Renderer`, for every suite alike.

One renderer for all: it makes its own GL context current for each frame and frees its MuJoCo
render context with no foreign context current. Gymnasium's renderer does neither, and
dm_control caches which context it believes is current, so mixing them in one process (a
worker's envs, the evaluation env, an env closed earlier) drew frames blank or into another
env's buffers."""
from __future__ import annotations

import mujoco
import numpy as np


def fast_render_settings(model: mujoco.MjModel) -> None:
    """Shadows and multisampling off: 64x64 frames render several times faster, and these small
    images lose nothing that learning uses. Read when the renderer is made."""
    model.vis.quality.shadowsize = 0
    model.vis.quality.offsamples = 0


class Frames:
    """(size, size, 3) uint8 frames of `model`; the renderer is made at the first frame."""

    def __init__(self, model: mujoco.MjModel, size: int) -> None:
        self.model, self.size = model, size
        self._renderer: mujoco.Renderer | None = None

    def render(self, data: mujoco.MjData, camera: int | str | mujoco.MjvCamera) -> np.ndarray:
        if self._renderer is None:
            fast_render_settings(self.model)
            self._renderer = mujoco.Renderer(self.model, self.size, self.size)
        self._renderer.update_scene(data, camera=camera)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
