"""A cheap appearance descriptor of a face crop, so that tracks follow people, not positions.

Boxes alone cannot tell two people apart who take turns in the same spot (an interview cut
between two guests framed alike) or who cross. No face-recognition weights install offline
(REFERENCE §6), so the descriptor needs none: the chromaticity histogram of the face's centre,
taken from the original frame. Chromaticity (r, g of r+g+b) ignores brightness, so a face
keeps its signature when it turns to or from a lamp, and skin tone, make-up and hair colour
differ between people. Measured on the largest face of 8 sampled frames of 24 real research clips
(one per person): consecutive frames of one person were never below 0.48 similarity, and 77% of
pairs of different people were below 0.52. A 12x12 grey layout and RGB or hue-saturation
histograms, alone or combined with it, separated fewer pairs. Lookalikes stay inseparable by
this descriptor; shot cuts (`models.shots`) split tracks regardless.
"""

from __future__ import annotations

import numpy as np

# 8x8 bins over the chromaticities skin and hair take (r 0.2-0.6, g 0.2-0.5); others fall in
# the edge bins. Finer or wider binning separated fewer people in the measurement above.
CHROMA_BINS = 8
DESCRIPTOR_SIZE = CHROMA_BINS**2
R_RANGE = (0.2, 0.6)
G_RANGE = (0.2, 0.5)
# The central part of the box: its edges hold background, which changes independently of the face.
INNER_SHARE = 0.8
# Two faces less alike than this are not one person (below every same-person pair measured above).
MIN_SIMILARITY = 0.45


def describe_face(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(CHROMA_BINS**2,) chromaticity histogram summing to 1 of the face in `box` (x1, y1, x2,
    y2) of the HxWx3 uint8 RGB `image`."""
    pixels = _inner_patch(image, box).reshape(-1, 3).astype(np.float32) + 1  # +1: black has a hue
    total = pixels.sum(axis=1)
    histogram, _, _ = np.histogram2d(
        pixels[:, 0] / total, pixels[:, 1] / total, bins=CHROMA_BINS, range=[R_RANGE, G_RANGE]
    )
    histogram = histogram.reshape(-1).astype(np.float32)
    return histogram / max(float(histogram.sum()), 1.0)


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Histogram intersection of every descriptor in `a` (N,D) with every one in `b` (M,D):
    (N, M) in [0, 1], 1 for identical colouring."""
    return np.minimum(a[:, None, :], b[None, :, :]).sum(axis=-1)


def _inner_patch(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half_w, half_h = INNER_SHARE * (x2 - x1) / 2, INNER_SHARE * (y2 - y1) / 2
    left, right = max(0, int(cx - half_w)), min(width, int(np.ceil(cx + half_w)))
    top, bottom = max(0, int(cy - half_h)), min(height, int(np.ceil(cy + half_h)))
    if right <= left or bottom <= top:
        raise ValueError(f"box {box!r} lies outside the {width}x{height} frame")
    return image[top:bottom, left:right]
