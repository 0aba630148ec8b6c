"""Occlusion sensitivity: which parts of a face crop pushed the ensemble's P(fake) up.

Works for every architecture (MesoNet, EfficientNet, ViT) because it only asks the models for
scores: grey out one square of the face region at a time, re-cut every member's crop from the
occluded frame, and record how far the ensemble's P(fake) fell. Occluding in frame coordinates
keeps one map valid for members with different crop geometries (Zeiler & Fergus, 2014).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.crops import CropSpec, crop_face, crop_window, crops_to_tensor

# P(fake) per crop for crops cut once per spec: the ensemble mean, in production.
Scorer = Callable[[Mapping[CropSpec, torch.Tensor]], np.ndarray]
Window = tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels


@dataclass(frozen=True)
class OcclusionGrid:
    """The occluding square and its step, as fractions of the region's sides.

    A sixth of the face with half-square steps (11 x 11 positions) is fine enough to single out
    an eye or a mouth and costs 122 forward passes per member.
    """

    window: float = 1 / 6
    stride: float = 1 / 12

    def starts(self, length: int) -> tuple[int, list[int]]:
        """Square side and start offsets along a side of `length` pixels, the last flush."""
        side = max(1, round(length * self.window))
        step = max(1, round(length * self.stride))
        starts = list(range(0, length - side + 1, step))
        if starts[-1] != length - side:
            starts.append(length - side)
        return side, starts


def union_window(frame_shape: tuple[int, ...], box: Sequence[float], specs: Sequence[CropSpec]) -> Window:
    """The smallest frame region that holds every spec's crop of `box`."""
    windows = [crop_window(frame_shape[0], frame_shape[1], box, spec) for spec in specs]
    return (
        min(w[0] for w in windows),
        min(w[1] for w in windows),
        max(w[2] for w in windows),
        max(w[3] for w in windows),
    )


def occlusion_heatmap(
    frame: np.ndarray,
    box: Sequence[float],
    region: Window,
    specs: Sequence[CropSpec],
    score: Scorer,
    grid: OcclusionGrid | None = None,
) -> np.ndarray:
    """Per pixel of `region`, the mean fall in P(fake) when a square covering it is greyed out.

    Args:
        frame: HxWx3 uint8 RGB frame the face was detected in.
        box: the face box (x1, y1, x2, y2) in frame pixels.
        region: the frame window the map covers (the displayed crop).
        specs: the crop spec of every member that scores.
        score: P(fake) per crop given one batch per spec.
        grid: occluder size and step.

    Returns:
        float32 array of the region's height x width, >= 0: rises in P(fake) are not evidence
        of fakeness, so they count as zero.
    """
    grid = grid or OcclusionGrid()
    ux1, uy1, ux2, uy2 = union_window(frame.shape, box, specs)
    canvas = frame[uy1:uy2, ux1:ux2]
    local_box = (box[0] - ux1, box[1] - uy1, box[2] - ux1, box[3] - uy1)
    rx1, ry1, rx2, ry2 = region[0] - ux1, region[1] - uy1, region[2] - ux1, region[3] - uy1
    fill = canvas[ry1:ry2, rx1:rx2].reshape(-1, 3).mean(axis=0).astype(np.uint8)
    side_x, xs = grid.starts(rx2 - rx1)
    side_y, ys = grid.starts(ry2 - ry1)
    squares = [(x, y) for y in ys for x in xs]

    variants = [canvas]
    for x, y in squares:
        occluded = canvas.copy()
        occluded[ry1 + y : ry1 + y + side_y, rx1 + x : rx1 + x + side_x] = fill
        variants.append(occluded)
    batches = {
        spec: crops_to_tensor([crop_face(v, local_box, spec) for v in variants], spec)
        for spec in specs
    }
    probabilities = np.asarray(score(batches), dtype=np.float64)
    falls = np.maximum(probabilities[0] - probabilities[1:], 0.0)

    total = np.zeros((ry2 - ry1, rx2 - rx1), dtype=np.float64)
    covered = np.zeros_like(total)
    for (x, y), fall in zip(squares, falls, strict=True):
        total[y : y + side_y, x : x + side_x] += fall
        covered[y : y + side_y, x : x + side_x] += 1
    return (total / np.maximum(covered, 1)).astype(np.float32)
