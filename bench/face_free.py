"""Face-free footage for counting false faces: background regions of real frames, and collages.

A detector made more sensitive finds more faces that are not there: textures, wood grain, a
cat. Two kinds of 1080p frames without people, in short sequences (the detector sees sequences,
and its second pass looks at neighbours): the part of each ground-truth frame beside the face
(real rooms, real compression), and collages of scikit-image's photos of objects, animals,
textures and text, panned a little from frame to frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from bench.face_conditions import BACKGROUND_GREY, CANVAS, Scene

# scikit-image's photos without a person in them (its astronaut and cameraman show people).
PHOTOS = (
    "brick", "grass", "gravel", "coffee", "rocket", "horse", "chelsea", "coins", "hubble_deep_field",
    "cell", "logo", "page", "text", "immunohistochemistry", "retina", "clock", "moon",
)
FACE_MARGIN = 0.6  # of the face width, kept clear on the side cut away from the face
MIN_STRIP_SHARE = 0.2  # narrower strips, scaled to 1080p, would be mostly blur
PAN_PX = 24  # collage shift between consecutive frames of a sequence


def background_sequence(scenes: Sequence[Scene]) -> list[np.ndarray]:
    """Each scene's widest side strip beside its face (a margin away), scaled to 1080 px high
    on a 1080p canvas; [] when a frame has no strip of at least MIN_STRIP_SHARE of its width
    (a face crop is nearly all face)."""
    frames = []
    for scene in scenes:
        if scene.face is None:
            raise ValueError("a background strip is cut beside a face")
        x1, _, x2, _ = scene.face
        margin = FACE_MARGIN * (x2 - x1)
        width = scene.image.shape[1]
        left_end, right_start = max(0, int(x1 - margin)), min(width, int(x2 + margin))
        strip = (
            scene.image[:, :left_end]
            if left_end >= width - right_start
            else scene.image[:, right_start:]
        )
        if strip.shape[1] < MIN_STRIP_SHARE * width:
            return []
        frames.append(_on_canvas(strip))
    return frames


def collage_sequence(rng: np.random.Generator, frames: int) -> list[np.ndarray]:
    """A 1080p 2x2 collage of four random photos, panned PAN_PX to the right per frame."""
    from skimage import data
    from skimage.util import img_as_ubyte

    names = rng.choice(len(PHOTOS), size=4, replace=False)
    tiles = []
    for index in names:
        photo = img_as_ubyte(getattr(data, PHOTOS[index])())  # some are bool or RGBA
        if photo.ndim == 2:
            photo = np.repeat(photo[..., None], 3, axis=2)
        tile_w, tile_h = CANVAS[0] // 2 + PAN_PX * frames, CANVAS[1] // 2
        tiles.append(cv2.resize(np.ascontiguousarray(photo[..., :3]), (tile_w, tile_h)))
    wide = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
    return [
        np.ascontiguousarray(wide[:, step * PAN_PX : step * PAN_PX + CANVAS[0]])
        for step in range(frames)
    ]


def _on_canvas(strip: np.ndarray) -> np.ndarray:
    """`strip` scaled to the canvas height (at most its width), centred on a dull wall."""
    height, width = strip.shape[:2]
    scale = min(CANVAS[1] / height, CANVAS[0] / max(width, 1))
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(strip, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas = np.empty((CANVAS[1], CANVAS[0], 3), dtype=np.uint8)
    canvas[:] = BACKGROUND_GREY
    top, left = (CANVAS[1] - new_h) // 2, (CANVAS[0] - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas
