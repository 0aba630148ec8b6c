"""Link faces across sampled frames into person tracks, by position and by appearance.

Sampled frames are far apart (32 over a clip), but a face moves and grows little between them,
so box overlap or centre proximity at a similar size says where a person went. Position alone
cannot tell two people apart who take turns in one spot or cross, so a face continues a track
only if it also looks like the track's last face (`models.appearance`), and across a shot cut
(`models.shots`) every track ends. Each frame's faces are matched to the live tracks greedily,
best match first, one face per track; a track survives a few frames without a match (MTCNN
misses faces during blinks, turns and motion blur).

At a cut, one person filmed in two shots becomes two identities, on purpose: a cheap colour
descriptor cannot re-identify a person across shots (new light, new angle) without also
merging two people framed alike, and merging is the costly error: under `max-identity` a fake
person's crops would be averaged with a real one's. Splitting costs only that each shot's
crops of the person are judged on their own.

Spurious one-off detections: `assign_identities` keeps every face, so callers see what was
detected. `drop_short_tracks` removes tracks seen in fewer than `min_track_length(frames)`
frames: a "person" seen once among many sampled frames is far more often a false detection
(a texture, a poster, a blurred fragment) than a person, and scoring it as its own identity
could decide a whole video under a max-over-identities policy.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from models.appearance import MIN_SIMILARITY, similarity

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
    appearance: np.ndarray | None  # the latest matched face's descriptor
    last_frame: int


def assign_identities(
    faces_per_frame: Sequence[Sequence[Face]],
    appearances: Sequence[np.ndarray] | None = None,
    shot_starts: Collection[int] = (),
    iou_threshold: float = IOU_THRESHOLD,
    max_gap: int = MAX_GAP,
    min_similarity: float = MIN_SIMILARITY,
) -> list[list[int]]:
    """An identity per face per frame, numbered 0.. by first appearance (then left to right).

    A face continues the live track it matches best: its box near the track's latest box
    (`box_affinity` >= `iou_threshold`) and, given `appearances`, its descriptor at least
    `min_similarity` like the track's latest face; among such tracks the highest product of
    the two wins. Each track takes at most one face per frame; a track not matched for more than
    `max_gap` consecutive frames ends, every track ends at a frame in `shot_starts`, and a face
    matching no track starts a new one.

    Args:
        faces_per_frame: the faces of each sampled frame.
        appearances: per frame, the (faces, D) descriptors of its faces in the same order
            (`models.appearance.describe_face`); None links by position only.
        shot_starts: positions of the frames that open a new shot (`models.shots.shot_starts`).
    """
    if appearances is not None and [len(a) for a in appearances] != [len(f) for f in faces_per_frame]:
        raise ValueError("appearances must hold one descriptor per face of every frame")
    tracks: list[_Track] = []
    identities: list[list[int]] = []
    for frame_index, faces in enumerate(faces_per_frame):
        looks = appearances[frame_index] if appearances is not None else None
        first_live = len(tracks) if frame_index in shot_starts else 0  # a cut ends every track
        live = [t for t in tracks[first_live:] if frame_index - t.last_frame - 1 <= max_gap]
        assigned: list[int | None] = [None] * len(faces)
        if live and faces:
            score = _match_scores(live, faces, looks, iou_threshold, min_similarity)
            for track_pos, face_pos in _greedy_matches(score):
                assigned[face_pos] = live[track_pos].identity
        newcomers = sorted(
            (i for i, a in enumerate(assigned) if a is None), key=lambda i: faces[i].box[0]
        )
        for face_pos in newcomers:
            assigned[face_pos] = len(tracks)
            tracks.append(_Track(len(tracks), faces[face_pos].box, None, frame_index))
        for face_pos, identity in enumerate(assigned):
            track = tracks[identity]
            track.box = faces[face_pos].box
            track.appearance = looks[face_pos] if looks is not None else None
            track.last_frame = frame_index
        identities.append([int(a) for a in assigned])
    return identities


def _match_scores(
    live: Sequence[_Track],
    faces: Sequence[Face],
    looks: np.ndarray | None,
    iou_threshold: float,
    min_similarity: float,
) -> np.ndarray:
    """(tracks, faces) match strength; 0 where the box is too far or the face looks different."""
    affinity = box_affinity(np.stack([t.box for t in live]), np.stack([f.box for f in faces]))
    score = np.where(affinity >= iou_threshold, affinity, 0.0)
    if looks is not None:
        alike = similarity(np.stack([t.appearance for t in live]), np.asarray(looks))
        score = np.where(alike >= min_similarity, score * alike, 0.0)
    return score


def _greedy_matches(score: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) pairs, best score first, each row and column used once, all scores > 0."""
    rows, cols = np.nonzero(score > 0)
    order = np.argsort(-score[rows, cols], kind="stable")
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    matches = []
    for row, col in zip(rows[order].tolist(), cols[order].tolist()):
        if row not in used_rows and col not in used_cols:
            used_rows.add(row)
            used_cols.add(col)
            matches.append((row, col))
    return matches


def main_person(identities: np.ndarray) -> np.ndarray:
    """Bool mask of the faces of the person seen most often (ties: the lowest identity, i.e. the
    first seen): whom a labelled clip's label is about."""
    ids, counts = np.unique(identities, return_counts=True)
    return identities == ids[np.argmax(counts)]


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
