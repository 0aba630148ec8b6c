"""Link faces across sampled frames into person tracks by box overlap.

Sampled frames are far apart (32 over a clip), but a face moves and grows little between them,
so box overlap or centre proximity at a similar size is enough and needs no appearance model. Each frame's faces are matched to the live
tracks greedily, best overlap first, one face per track; a track survives a few frames without a
match (MTCNN misses faces during blinks, turns and motion blur).

Spurious one-off detections: `assign_identities` keeps every face, so callers see what was
detected. `drop_short_tracks` removes tracks seen in fewer than `min_track_length(frames)`
frames: a "person" seen once among many sampled frames is far more often a false detection
(a texture, a poster, a blurred fragment) than a person, and scoring it as its own identity
could decide a whole video under a max-over-identities policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only the type: tracking itself needs neither torch nor MTCNN
    from models.faces import Face

# Two equal boxes offset sideways by d box widths overlap with IoU (1 - d) / (1 + d): 0.3 still
# matches a face that moved half its width between sampled frames.
IOU_THRESHOLD = 0.3
# Sampled frames a track may go unmatched and still continue: at 32 frames over a 10 s clip,
# about one second of missed detections.
MAX_GAP = 3
# A face whose centre moved less than this many face sizes still continues its track even when the
# boxes barely overlap: people walk, and 32 samples of a 10 s clip are 0.3 s apart. Two people side by
# side sit at least two face widths apart, so this does not merge them.
MAX_CENTRE_SHIFT = 1.5
# A face's size changes by less than this factor between sampled frames of one person.
MAX_SIZE_CHANGE = 2.0
# Fewer sampled frames than this and a face seen once may simply be a person who moved far between
# sparse samples (8 frames over a 23 s clip are 3 s apart): keep one-offs then.
FRAMES_TO_JUDGE_ONE_OFFS = 16


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in `a` (N,4) with every box in `b` (M,4): (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 2], b[None, :, 2])
    bottom = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_affinity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How likely each box in `a` (N,4) and each in `b` (M,4) show the same face: (N, M) in [0, 1].

    The larger of their IoU and their centre proximity (1 at the same centre, 0 at
    `MAX_CENTRE_SHIFT` face sizes apart); 0 when their sizes differ by more than `MAX_SIZE_CHANGE`.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    size_a = np.sqrt((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))
    size_b = np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    centre_a = (a[:, :2] + a[:, 2:]) / 2
    centre_b = (b[:, :2] + b[:, 2:]) / 2
    distance = np.linalg.norm(centre_a[:, None, :] - centre_b[None, :, :], axis=-1)
    scale = np.sqrt(size_a[:, None] * size_b[None, :])
    proximity = np.clip(1 - distance / (MAX_CENTRE_SHIFT * np.maximum(scale, 1e-6)), 0, 1)
    ratio = size_a[:, None] / np.maximum(size_b[None, :], 1e-6)
    similar_size = (ratio <= MAX_SIZE_CHANGE) & (ratio >= 1 / MAX_SIZE_CHANGE)
    return np.where(similar_size, np.maximum(box_iou(a, b), proximity), 0.0)


@dataclass
class _Track:
    identity: int
    box: np.ndarray  # the latest matched box
    last_frame: int


def assign_identities(
    faces_per_frame: Sequence[Sequence[Face]],
    iou_threshold: float = IOU_THRESHOLD,
    max_gap: int = MAX_GAP,
) -> list[list[int]]:
    """An identity per face per frame, numbered 0.. by first appearance (then left to right).

    A face continues the live track whose latest box it matches best (`box_affinity` >=
    `iou_threshold`: overlapping, or a nearby face of similar size),
    each track taking at most one face per frame; a track not matched for more than `max_gap`
    consecutive frames ends, and a face matching no track starts a new one.
    """
    tracks: list[_Track] = []
    identities: list[list[int]] = []
    for frame_index, faces in enumerate(faces_per_frame):
        live = [t for t in tracks if frame_index - t.last_frame - 1 <= max_gap]
        assigned: list[int | None] = [None] * len(faces)
        if live and faces:
            overlap = box_affinity(np.stack([t.box for t in live]), np.stack([f.box for f in faces]))
            for track_pos, face_pos in _greedy_matches(overlap, iou_threshold):
                assigned[face_pos] = live[track_pos].identity
        newcomers = sorted(
            (i for i, a in enumerate(assigned) if a is None), key=lambda i: faces[i].box[0]
        )
        for face_pos in newcomers:
            assigned[face_pos] = len(tracks)
            tracks.append(_Track(len(tracks), faces[face_pos].box, frame_index))
        for face_pos, identity in enumerate(assigned):
            tracks[identity].box = faces[face_pos].box
            tracks[identity].last_frame = frame_index
        identities.append([int(a) for a in assigned])
    return identities


def _greedy_matches(overlap: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(row, column) pairs, best overlap first, each row and column used once, all >= threshold."""
    rows, cols = np.nonzero(overlap >= threshold)
    order = np.argsort(-overlap[rows, cols], kind="stable")
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    matches = []
    for row, col in zip(rows[order].tolist(), cols[order].tolist()):
        if row not in used_rows and col not in used_cols:
            used_rows.add(row)
            used_cols.add(col)
            matches.append((row, col))
    return matches


def min_track_length(sampled_frames: int) -> int:
    """Shortest track worth keeping: 2 (no one-offs) once enough frames were sampled, else 1."""
    return 2 if sampled_frames >= FRAMES_TO_JUDGE_ONE_OFFS else 1


def drop_short_tracks(
    faces_per_frame: Sequence[Sequence[Face]],
    identities: Sequence[Sequence[int]],
    min_length: int,
) -> tuple[list[list[Face]], list[list[int]]]:
    """Faces and identities without tracks seen in fewer than `min_length` frames, renumbered.

    Identities stay numbered 0.. in order of first appearance.
    """
    lengths: dict[int, int] = {}
    for frame_ids in identities:
        for identity in frame_ids:
            lengths[identity] = lengths.get(identity, 0) + 1
    kept = sorted(identity for identity, length in lengths.items() if length >= min_length)
    renumbered = {old: new for new, old in enumerate(kept)}
    kept_faces: list[list[Face]] = []
    kept_ids: list[list[int]] = []
    for faces, frame_ids in zip(faces_per_frame, identities, strict=True):
        pairs = [
            (f, renumbered[i]) for f, i in zip(faces, frame_ids, strict=True) if i in renumbered
        ]
        kept_faces.append([face for face, _ in pairs])
        kept_ids.append([identity for _, identity in pairs])
    return kept_faces, kept_ids
