"""Synthetic benchmark clips, for machines without the research data: a real face on a gradient.

The face is scikit-image's astronaut photo (scikit-image is a dev dependency), moved across the
frame and encoded with PyAV, so MTCNN finds one face per frame as it would in a real upload.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

HEAD = (slice(20, 215), slice(145, 305))  # rows/columns of the astronaut's head in the photo
FPS = 25


def write_face_clip(path: Path, width: int, height: int, frames: int) -> Path:
    """Encode `frames` frames of a face drifting left to right over a gradient (H.264 or MPEG-4)."""
    from skimage.data import astronaut

    head = np.ascontiguousarray(astronaut()[HEAD])
    side = round(height * 0.5)
    head = cv2.resize(head, (round(side * head.shape[1] / head.shape[0]), side))
    xs = np.linspace(60, 180, width, dtype=np.float32)[None, :, None]
    ys = np.linspace(40, 160, height, dtype=np.float32)[:, None, None]
    background = np.broadcast_to(
        np.concatenate([xs + 0 * ys, ys + 0 * xs, 140 + 0 * xs * ys], -1), (height, width, 3)
    ).astype(np.uint8)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, FPS)
        for index in range(frames):
            frame = background.copy()
            left = round((width - head.shape[1]) * (0.2 + 0.6 * index / max(frames - 1, 1)))
            top = (height - head.shape[0]) // 2
            frame[top : top + head.shape[0], left : left + head.shape[1]] = head
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
