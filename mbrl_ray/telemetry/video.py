"""Evaluation videos as animated GIFs, the form TensorBoard's image tab plays (what torch's
add_video writes too, without its moviepy dependency)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageSequence

MIN_FRAME_MS = 20  # browsers play shorter GIF frame delays at 100 ms


def frame_ms(fps: float) -> int:
    """The delay each frame gets at `fps` (GIF delays are whole ms; capped at 50 fps)."""
    return max(MIN_FRAME_MS, round(1000 / fps))


def shown_frames(gif: bytes, fps: float) -> int:
    """How many frames a GIF from encode_gif plays: Pillow merges identical consecutive
    frames into one with their delays summed, so this counts delays, not stored frames."""
    frames = ImageSequence.Iterator(Image.open(io.BytesIO(gif)))
    return round(sum(frame.info["duration"] for frame in frames) / frame_ms(fps))


def encode_gif(frames: np.ndarray, fps: float) -> bytes:
    """(T, H, W, 3) uint8 frames -> GIF bytes that loop, at `fps` (capped at 50). Identical
    consecutive frames are stored once with their delays summed (see shown_frames)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be (T, H, W, 3) with T >= 1; got {frames.shape}")
    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=frame_ms(fps))
    return buffer.getvalue()
