"""The face-recall benchmark's ground truth: frames in which today's detector finds the one face.

A clip qualifies when plain MTCNN (`models.faces.FaceDetector` at its shipped settings) finds
exactly one face in every sampled frame: that box is then the truth for the frame, and every
miss under a hard condition is the condition's doing. Clips are taken one per identity group, in
a fixed order, from a labels.csv folder (the research data is read at run time and never copied).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.face_conditions import Scene
from models.faces import Face
from models.tracking import box_iou
from models.video.sampling import FrameSampling, read_sampled_frames

# Nose further than this share of the eye distance from the eyes' midline: the head is turned
# (about 30 degrees of yaw or more), the view MTCNN finds hardest.
TURNED_NOSE_OFFSET = 0.3
# ... this far: turned strongly, towards a profile view. The turned-head conditions are made of
# such frames. In 80 research clips (16 frames each) 2% of the frames with one face reached 0.4,
# 1% reached 0.5: MTCNN, which picks them, finds few faces turned further.
STRONGLY_TURNED_NOSE_OFFSET = 0.4
Detect = Callable[[Sequence[np.ndarray]], list[list[Face]]]


@dataclass(frozen=True)
class TruthClip:
    """One clip's sampled frames with their single face each."""

    file: str
    scenes: list[Scene]
    turned: list[bool]  # per frame: the face is turned away (`is_turned`)


def candidate_files(data_dir: Path) -> list[str]:
    """labels.csv files, one per identity group (the first of each in file order), sorted by
    subset so consecutive picks come from different sources."""
    with (data_dir / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    first_of_group: dict[str, dict[str, str]] = {}
    for row in rows:
        first_of_group.setdefault(row["group"], row)
    by_subset: dict[str, list[str]] = {}
    for row in first_of_group.values():
        by_subset.setdefault(row["subset"], []).append(row["file"])
    queues = [sorted(files) for _, files in sorted(by_subset.items())]
    ordered: list[str] = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def truth_clips(
    paths: Iterable[Path], detect: Detect, clips: int, frames: int, root: Path | None = None
) -> list[TruthClip]:
    """The first `clips` of `paths` in which `detect` finds exactly one face in each of
    `frames` sampled frames; `root` shortens the names reported."""
    chosen: list[TruthClip] = []
    for path in paths:
        if len(chosen) == clips:
            break
        _, sampled = read_sampled_frames(path, FrameSampling(count=frames))
        images = [frame.image for frame in sampled]
        found = detect(images)
        if len(images) < frames or any(len(faces) != 1 for faces in found):
            continue
        name = str(path.relative_to(root)) if root else path.name
        chosen.append(
            TruthClip(
                file=name,
                scenes=[
                    Scene(image, tuple(float(v) for v in faces[0].box))
                    for image, faces in zip(images, found, strict=True)
                ],
                turned=[is_turned(faces[0].landmarks) for faces in found],
            )
        )
    return chosen


def turned_clips(
    paths: Iterable[Path], detect: Detect, frames: int, per_clip: int, scan: int,
    root: Path | None = None,
) -> list[TruthClip]:
    """Frames in which `detect` finds exactly one face and it is strongly turned (the nose
    STRONGLY_TURNED_NOSE_OFFSET eye distances or more off the eyes' midline): up to `per_clip`
    of each clip's `scan` sampled frames, clip after clip, until `frames` are found. Each
    clip's frames stay one sequence, in order, as the detector would see them."""
    chosen: list[TruthClip] = []
    total = 0
    for path in paths:
        if total >= frames:
            break
        _, sampled = read_sampled_frames(path, FrameSampling(count=scan))
        images = [frame.image for frame in sampled]
        picked = [
            Scene(image, tuple(float(v) for v in faces[0].box))
            for image, faces in zip(images, detect(images), strict=True)
            if len(faces) == 1 and nose_offset(faces[0].landmarks) >= STRONGLY_TURNED_NOSE_OFFSET
        ][: min(per_clip, frames - total)]
        if picked:
            name = str(path.relative_to(root)) if root else path.name
            chosen.append(TruthClip(file=name, scenes=picked, turned=[True] * len(picked)))
            total += len(picked)
    return chosen


def nose_offset(landmarks: np.ndarray) -> float:
    """How far the nose is from the eyes' midline, in eye distances: 0 for a frontal face,
    growing as the head turns sideways (five MTCNN landmarks: eyes, nose, mouth corners)."""
    left_eye, right_eye, nose = landmarks[0], landmarks[1], landmarks[2]
    eye_distance = float(np.linalg.norm(right_eye - left_eye))
    midline_x = float(left_eye[0] + right_eye[0]) / 2
    return abs(float(nose[0]) - midline_x) / max(eye_distance, 1e-6)


def is_turned(landmarks: np.ndarray) -> bool:
    """Whether five MTCNN landmarks (eyes, nose, mouth corners) show a head turned sideways."""
    return nose_offset(landmarks) > TURNED_NOSE_OFFSET


def hit(faces: Sequence[Face], truth: tuple[float, float, float, float], min_iou: float) -> bool:
    """Whether any detected face overlaps the true box by at least `min_iou`."""
    if not faces:
        return False
    overlaps = box_iou(np.array([truth]), np.stack([face.box for face in faces]))
    return bool(overlaps.max() >= min_iou)
