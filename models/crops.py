"""Face crops and classifier input tensors, driven entirely by a model family's `CropSpec`.

Each checkpoint family was trained on its own crop geometry and pixel convention (selim: a third
of the box added on each side, 380 px, RGB, ImageNet statistics; Coccomini: square box, 224 px,
BGR 0-255). Feeding one the other's crops silently degrades it, so nothing here is hard-coded:
the registry parses a spec per model and callers pass it through.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch

from models.errors import ConfigError
from models.face_settings import OWN, FaceSettings

ColorOrder = Literal["RGB", "BGR"]
COLOR_ORDERS: tuple[ColorOrder, ...] = ("RGB", "BGR")


@dataclass(frozen=True)
class CropSpec:
    """How one model family wants its faces cut and normalised.

    Attributes:
        name: the `[preprocessing.<name>]` table this spec came from.
        size: side of the square model input in pixels.
        margin: fraction of the (squared) box width/height added on each side, clipped to the frame.
        square: expand the box to a square around its centre before adding the margin.
        color_order: channel order the model expects.
        scale: pixel divisor applied before normalisation (255.0 for 0-1 inputs, 1.0 for 0-255).
        mean: per output channel, in the units left after dividing by `scale`.
        std: per output channel, in the same units.
        detector: the face detector settings the family's training crops were cut with.
    """

    name: str
    size: int
    margin: float
    square: bool
    color_order: ColorOrder
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    detector: FaceSettings = OWN

    def __post_init__(self) -> None:
        problems = []
        if self.size < 1:
            problems.append(f"size must be positive, got {self.size}")
        if not (self.margin >= 0 and math.isfinite(self.margin)):
            problems.append(f"margin must be a finite fraction >= 0, got {self.margin}")
        if self.color_order not in COLOR_ORDERS:
            problems.append(f"color_order must be one of {COLOR_ORDERS}, got {self.color_order!r}")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            problems.append(f"scale must be a finite number > 0, got {self.scale}")
        if len(self.mean) != 3 or len(self.std) != 3:
            problems.append(f"mean and std need 3 values each, got {self.mean} and {self.std}")
        elif not all(s > 0 for s in self.std):
            problems.append(f"std values must be > 0, got {self.std}")
        if problems:
            raise ConfigError(f"preprocessing '{self.name}': " + "; ".join(problems))


def crop_face(image: np.ndarray, box: np.ndarray | Sequence[float], spec: CropSpec) -> np.ndarray:
    """Cut one face at full resolution and letterbox it into a `spec.size` square.

    Args:
        image: HxWx3 uint8 RGB frame.
        box: (x1, y1, x2, y2) in pixel coordinates of `image`.
        spec: the crop geometry of the model that will see the crop.

    Returns:
        spec.size x spec.size x 3 uint8 RGB: the crop resized isotropically (long side = size)
        and pasted centred on black, as both reference pipelines do.

    Raises:
        ValueError: the image is not HxWx3 uint8, or the box is degenerate or off the frame.
    """
    _check_image(image)
    x1, y1, x2, y2 = _crop_window(image.shape[0], image.shape[1], box, spec)
    return _letterbox(image[y1:y2, x1:x2], spec.size)


def crop_window(
    frame_height: int, frame_width: int, box: np.ndarray | Sequence[float], spec: CropSpec
) -> tuple[int, int, int, int]:
    """Integer (x1, y1, x2, y2) of the region `crop_face` cuts, for drawing or debugging."""
    return _crop_window(frame_height, frame_width, box, spec)


def crops_to_tensor(crops: Sequence[np.ndarray], spec: CropSpec) -> torch.Tensor:
    """Stack RGB uint8 crops into the (N, 3, S, S) float32 batch the model expects.

    Applies the spec's colour order, divides by `scale`, then subtracts `mean` and divides by
    `std` (both per output channel).

    Raises:
        ValueError: a crop is not spec.size x spec.size x 3 uint8.
    """
    expected = (spec.size, spec.size, 3)
    for i, crop in enumerate(crops):
        if crop.dtype != np.uint8 or crop.shape != expected:
            raise ValueError(
                f"crop {i} is {crop.shape} {crop.dtype}; spec '{spec.name}' needs {expected} uint8"
            )
    if not crops:
        return torch.empty((0, 3, spec.size, spec.size), dtype=torch.float32)
    batch = np.stack(crops)
    if spec.color_order == "BGR":
        batch = batch[..., ::-1]
    x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).to(torch.float32)
    x = x / spec.scale
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"image must be an HxWx3 RGB array, got {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")


def _crop_window(
    height: int, width: int, box: np.ndarray | Sequence[float], spec: CropSpec
) -> tuple[int, int, int, int]:
    coords = np.asarray(box, dtype=np.float64).reshape(-1)
    if coords.shape != (4,) or not np.all(np.isfinite(coords)):
        raise ValueError(f"box must be 4 finite numbers (x1, y1, x2, y2), got {box!r}")
    x1, y1, x2, y2 = (float(c) for c in coords)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"box {box!r} has no area (need x2 > x1 and y2 > y1)")
    if spec.square:
        side = max(x2 - x1, y2 - y1)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        x1, x2, y1, y2 = cx - side / 2, cx + side / 2, cy - side / 2, cy + side / 2
    pad_x, pad_y = spec.margin * (x2 - x1), spec.margin * (y2 - y1)
    # Outward rounding keeps the whole (padded) box inside the crop.
    left = max(math.floor(x1 - pad_x), 0)
    top = max(math.floor(y1 - pad_y), 0)
    right = min(math.ceil(x2 + pad_x), width)
    bottom = min(math.ceil(y2 + pad_y), height)
    if right <= left or bottom <= top:
        raise ValueError(f"box {box!r} lies outside the {width}x{height} frame")
    return left, top, right, bottom


def _letterbox(region: np.ndarray, size: int) -> np.ndarray:
    """Isotropic resize (long side = size) then centre on a black square, like albumentations'
    IsotropicResize + PadIfNeeded used to train both reference model families."""
    height, width = region.shape[:2]
    long_side = max(height, width)
    if long_side == size:
        resized = region
    else:
        new_w = max(1, round(width * size / long_side)) if width != long_side else size
        new_h = max(1, round(height * size / long_side)) if height != long_side else size
        interpolation = cv2.INTER_AREA if long_side > size else cv2.INTER_CUBIC
        resized = cv2.resize(region, (new_w, new_h), interpolation=interpolation)
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    top = (size - resized.shape[0]) // 2
    left = (size - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas
