"""Evaluation GIFs: every frame is played for its delay, repeated frames included."""
import io

import numpy as np
import pytest
from PIL import Image

from mbrl_ray.telemetry.video import encode_gif, frame_ms, shown_frames

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("fps", [10.0, 12.5, 100.0])
def test_repeated_frames_keep_their_time_on_screen(fps):
    frames = np.zeros((7, 8, 8, 3), np.uint8)
    frames[3:5] = 200  # runs of identical frames: 3, 2, 2
    gif = encode_gif(frames, fps)
    assert Image.open(io.BytesIO(gif)).n_frames == 3  # Pillow stores each run once
    assert shown_frames(gif, fps) == 7


def test_frame_delay_is_capped_at_fifty_fps():
    assert frame_ms(12.5) == 80 and frame_ms(100.0) == 20


def test_bad_frames_are_refused():
    with pytest.raises(ValueError, match="T, H, W, 3"):
        encode_gif(np.zeros((0, 8, 8, 3), np.uint8), 10.0)
