"""What a reviewer looks at: each scored face cut again from the stored video, and its heatmap.

A job's result keeps boxes, not pixels, so crops are cut on demand: the video is sampled again
exactly as the detector sampled it (same sampling, deterministic decoding), and each face's
region is the window the first scoring member cropped, unletterboxed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from models.crops import CropSpec, crop_window
from models.ensemble import Ensemble
from models.errors import FakewatchError
from models.occlusion import Window, occlusion_heatmap
from models.schema import DetectionResult, FaceScore
from models.video.sampling import FrameSampling, iter_sampled_frames

MAX_SIDE = 256  # px: a crop is a thumbnail and a close-up, not a forensic copy


class ViewError(FakewatchError):
    """A face cannot be shown: it is not in the result, or the video no longer decodes alike."""


@dataclass(frozen=True)
class FaceRef:
    """A face in a result: the decoded frame index and its position among that frame's faces."""

    frame: int
    face: int


def scored_faces(result: DetectionResult) -> dict[FaceRef, FaceScore]:
    """Every face of the result by reference, in frame order."""
    return {
        FaceRef(frame.index, position): face
        for frame in result.frames
        for position, face in enumerate(frame.faces)
    }


def sampled_images(path: Path, sampling: FrameSampling, indices: set[int]) -> dict[int, np.ndarray]:
    """The RGB frames with these decoded indices, sampling the video as the detector did."""
    images = {
        frame.index: frame.image
        for frame in iter_sampled_frames(path, sampling)
        if frame.index in indices
    }
    missing = sorted(indices - images.keys())
    if missing:
        raise ViewError(
            f"frames {missing} were not found again in {path.name}: the stored video or the "
            "sampling settings changed since it was scored; submit the video again"
        )
    return images


def face_region(image: np.ndarray, face: FaceScore, spec: CropSpec) -> Window:
    box = face.box
    return crop_window(image.shape[0], image.shape[1], (box.x1, box.y1, box.x2, box.y2), spec)


def cut(image: np.ndarray, region: Window) -> np.ndarray:
    x1, y1, x2, y2 = region
    return image[y1:y2, x1:x2]


def thumbnail(image: np.ndarray) -> np.ndarray:
    """`image` shrunk so its long side is at most `MAX_SIDE` (never enlarged)."""
    long_side = max(image.shape[:2])
    if long_side <= MAX_SIDE:
        return np.ascontiguousarray(image)
    scale = MAX_SIDE / long_side
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def face_crops(
    path: Path, sampling: FrameSampling, result: DetectionResult, spec: CropSpec
) -> dict[FaceRef, np.ndarray]:
    """Every face of the result as a thumbnail, cut in one decoding pass."""
    faces = scored_faces(result)
    images = sampled_images(path, sampling, {ref.frame for ref in faces})
    return {
        ref: thumbnail(cut(images[ref.frame], face_region(images[ref.frame], face, spec)))
        for ref, face in faces.items()
    }


def face_heatmap(
    path: Path,
    sampling: FrameSampling,
    result: DetectionResult,
    ref: FaceRef,
    ensemble: Ensemble,
    model_ids: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """The face's thumbnail and its occlusion map over the members that scored it from its crop
    alone (a member that also compares it with a neighbouring frame would need that frame
    occluded alike, which is not what the map shows)."""
    face = scored_faces(result).get(ref)
    if face is None:
        raise ViewError(f"frame {ref.frame} has no face {ref.face} in this result")
    members = [m for m in ensemble.select(model_ids) if not m.needs_pairs]
    if not members:
        raise ViewError(
            f"no heatmap: {', '.join(model_ids)} judge each face together with the same person's "
            "face in the neighbouring frame, and the heatmap shows single-crop models only"
        )
    model_ids = [m.entry.id for m in members]
    image = sampled_images(path, sampling, {ref.frame})[ref.frame]
    specs = list(dict.fromkeys(m.entry.preprocessing for m in members))
    region = face_region(image, face, specs[0])

    def score(batches: Mapping[CropSpec, torch.Tensor]) -> np.ndarray:
        per_model = ensemble.predict(batches, model_ids)
        return np.mean(np.stack(list(per_model.values())), axis=0)

    box = (face.box.x1, face.box.y1, face.box.x2, face.box.y2)
    heat = occlusion_heatmap(image, box, region, specs, score)
    crop = thumbnail(cut(image, region))
    return crop, cv2.resize(heat, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR)
