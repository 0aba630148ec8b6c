"""Brighten dark frames before face detection; the crops still come from the original frame.

MTCNN was trained on well-exposed photos: in a dim room (mean brightness about 30 of 255) a face
spans a few dozen grey levels and P-Net proposes nothing. A gamma curve chosen so that the frame's
mean luma lands mid-grey stretches exactly the shadows where such a face lies, compresses the
few bright pixels, keeps colours' order, and costs one table lookup per pixel. Frames that are
already bright enough are left untouched, so normal footage is detected exactly as before.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Frames whose mean luma is below this are brightened. Well-lit footage sits around 90-140; the
# issue's missed clips were at about 34.
DARK_MEAN = 70.0
TARGET_MEAN = 110.0  # mid-grey-ish: where MTCNN's training photos sit
MAX_GAMMA_LIFT = 4.0  # 1/gamma at most: beyond it, a black frame's noise becomes texture


def exposure_gamma(mean_luma: float) -> float:
    """The gamma (< 1 brightens) that maps `mean_luma` to TARGET_MEAN; 1 for bright frames."""
    if mean_luma >= DARK_MEAN:
        return 1.0
    mean = max(mean_luma, 1.0) / 255
    return max(math.log(TARGET_MEAN / 255) / math.log(mean), 1 / MAX_GAMMA_LIFT)


def mean_luma(image: np.ndarray) -> float:
    """Mean BT.601 luma of an HxWx3 uint8 RGB image, 0-255."""
    return float(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean())


def is_dark(image: np.ndarray) -> bool:
    """Whether `normalise_exposure` brightens this image."""
    return exposure_gamma(mean_luma(image)) != 1.0


def normalise_exposure(image: np.ndarray) -> np.ndarray:
    """The HxWx3 uint8 RGB `image` itself when bright enough, else a brightened copy."""
    gamma = exposure_gamma(mean_luma(image))
    if gamma == 1.0:
        return image
    table = np.rint(255 * (np.arange(256) / 255) ** gamma).astype(np.uint8)
    return cv2.LUT(image, table)
