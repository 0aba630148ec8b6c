"""Run face finders over the ground truth under each condition: recall, false faces, time.

A finder takes a sequence of frames (one clip's sampled frames, in order) and returns the faces
of each, as the detector's scan hands it a video's frames. Every finder sees the same pixels:
each condition is applied once per clip with a seed of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from bench.face_conditions import CONDITIONS, Scene, Transform, mean_brightness
from bench.face_truth import TruthClip, hit
from models.faces import Face

Finder = Callable[[Sequence[np.ndarray]], list[list[Face]]]
MIN_IOU = 0.3  # a detection overlapping the true box this much found the face (the tracker's bar)


def face_recall(
    finders: Mapping[str, Finder],
    clips: Sequence[TruthClip],
    conditions: Sequence[str],
    seed: int,
    transforms: Mapping[str, Transform] = CONDITIONS,
) -> list[dict[str, Any]]:
    """Per condition (a name in `transforms`): frames, mean brightness and face height seen,
    and per finder the share of frames whose face was found (all, and turned heads), other
    faces reported, and seconds per frame."""
    rows = []
    for number, name in enumerate(conditions):
        transform = transforms[name]
        seen = [
            [transform(scene, np.random.default_rng((seed, number, index))) for scene in clip.scenes]
            for index, clip in enumerate(clips)
        ]
        scenes = [scene for clip in seen for scene in clip]
        turned = [flag for clip in clips for flag in clip.turned]
        row: dict[str, Any] = {
            "condition": name,
            "frames": len(scenes),
            "turned_frames": sum(turned),
            "mean_brightness": float(np.mean([mean_brightness(s.image) for s in scenes])),
            "median_face_height_px": float(np.median([s.face[3] - s.face[1] for s in scenes])),
            "finders": {},
        }
        for finder_name, finder in finders.items():
            faces, seconds = _timed(finder, seen)
            hits = [hit(found, s.face, MIN_IOU) for found, s in zip(faces, scenes, strict=True)]
            row["finders"][finder_name] = {
                "found": sum(hits),
                "recall": sum(hits) / len(hits),
                "turned_found": sum(h for h, t in zip(hits, turned, strict=True) if t),
                "turned_recall": _share(hits, turned),
                "other_faces": sum(len(found) for found in faces) - sum(hits),
                "ms_per_frame": 1000 * seconds / len(scenes),
            }
        rows.append(row)
    return rows


def false_faces(
    finders: Mapping[str, Finder],
    sequences: Sequence[Sequence[np.ndarray]],
    conditions: Sequence[str],
    seed: int,
) -> list[dict[str, Any]]:
    """Per condition applied to face-free sequences: faces each finder reported, per 100
    frames, and seconds per frame."""
    rows = []
    for number, name in enumerate(conditions):
        transform = CONDITIONS[name]
        seen = [
            [
                transform(Scene(image, None), np.random.default_rng((seed, 1000 + number, index)))
                for image in sequence
            ]
            for index, sequence in enumerate(sequences)
        ]
        frames = sum(len(sequence) for sequence in seen)
        row: dict[str, Any] = {
            "condition": name,
            "frames": frames,
            "mean_brightness": float(
                np.mean([mean_brightness(s.image) for sequence in seen for s in sequence])
            ),
            "finders": {},
        }
        for finder_name, finder in finders.items():
            faces, seconds = _timed(finder, seen)
            count = sum(len(found) for found in faces)
            row["finders"][finder_name] = {
                "false_faces": count,
                "per_100_frames": 100 * count / frames,
                "ms_per_frame": 1000 * seconds / frames,
            }
        rows.append(row)
    return rows


def _timed(finder: Finder, sequences: Sequence[Sequence[Scene]]) -> tuple[list[list[Face]], float]:
    """Faces per frame of all sequences (run one sequence at a time), and the seconds it took."""
    faces: list[list[Face]] = []
    started = time.perf_counter()
    for sequence in sequences:
        faces.extend(finder([scene.image for scene in sequence]))
    return faces, time.perf_counter() - started


def _share(hits: Sequence[bool], mask: Sequence[bool]) -> float | None:
    chosen = [h for h, m in zip(hits, mask, strict=True) if m]
    return sum(chosen) / len(chosen) if chosen else None
