"""Draw a heatmap over a face crop in colours that read for colour-blind viewers.

cividis (Nuñez et al., 2018) is perceptually uniform and distinguishable under deuteranopia and
protanopia; the heat also sets the opacity, so cool regions leave the face visible.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

MAX_OPACITY = 0.65  # the hottest pixel still lets the face show through
JPEG_QUALITY = 90


def overlay_heat(crop: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """`crop` (HxWx3 uint8 RGB) with `heat` (HxW, >= 0) drawn over it, scaled to its maximum.

    A map without any heat (nothing lowered P(fake)) leaves the crop unchanged.
    """
    if heat.shape != crop.shape[:2]:
        raise ValueError(f"heat {heat.shape} does not match the crop {crop.shape[:2]}")
    peak = float(heat.max(initial=0.0))
    scaled = heat / peak if peak > 0 else np.zeros_like(heat)
    colours = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_CIVIDIS)
    colours = cv2.cvtColor(colours, cv2.COLOR_BGR2RGB).astype(np.float32)
    alpha = (scaled * MAX_OPACITY)[..., None]
    blended = crop.astype(np.float32) * (1 - alpha) + colours * alpha
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def encode(image: np.ndarray, image_format: str) -> bytes:
    """RGB uint8 array as JPEG or PNG bytes."""
    buffer = io.BytesIO()
    options = {"quality": JPEG_QUALITY} if image_format == "JPEG" else {}
    Image.fromarray(image).save(buffer, format=image_format, **options)
    return buffer.getvalue()
