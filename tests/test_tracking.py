"""models.tracking: linking faces across sampled frames into people."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.faces import Face
from models.tracking import (
    MAX_GAP,
    assign_identities,
    box_iou,
    drop_short_tracks,
    min_track_length,
)
from models.video import FrameSampling, iter_sampled_frames


def face(x1: float, y1: float, x2: float, y2: float, confidence: float = 0.99) -> Face:
    box = np.array([x1, y1, x2, y2], dtype=np.float32)
    landmarks = np.tile(((box[:2] + box[2:]) / 2), (5, 1)).astype(np.float32)
    return Face(box=box, confidence=confidence, landmarks=landmarks)


def test_box_iou() -> None:
    a = np.array([[0, 0, 10, 10]], dtype=np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], dtype=np.float32)
    assert box_iou(a, b)[0] == pytest.approx([1.0, 50 / 150, 0.0, 0.0])


def test_two_people_keep_their_identities_whatever_the_detection_order() -> None:
    frames = []
    for step in range(6):
        left = face(100 + 5 * step, 100, 200 + 5 * step, 220)
        right = face(400 - 5 * step, 110, 490 - 5 * step, 220)
        frames.append([left, right] if step % 2 else [right, left])  # order follows confidence
    identities = assign_identities(frames)
    for step, ids in enumerate(identities):
        assert ids == ([0, 1] if step % 2 else [1, 0])  # left is 0: first seen, leftmost


def test_a_face_missed_for_a_few_frames_keeps_its_identity() -> None:
    person = face(100, 100, 200, 220)
    frames = [[person], [], [], [person], [face(400, 100, 500, 220)], [person]]
    assert assign_identities(frames, max_gap=2) == [[0], [], [], [0], [1], [0]]


def test_a_face_gone_longer_than_max_gap_starts_a_new_identity() -> None:
    person = face(100, 100, 200, 220)
    frames = [[person]] + [[]] * (MAX_GAP + 1) + [[person]]
    assert assign_identities(frames) == [[0]] + [[]] * (MAX_GAP + 1) + [[1]]


def test_a_face_that_jumps_away_is_someone_else() -> None:
    # Two face widths away: no overlap and beyond MAX_CENTRE_SHIFT.
    frames = [[face(0, 0, 100, 100)], [face(200, 0, 300, 100)]]
    assert assign_identities(frames) == [[0], [1]]


def test_a_walking_face_keeps_its_identity() -> None:
    # 0.9 face widths per sample: IoU 10/190 is below the threshold, but the centre is close.
    frames = [[face(0, 0, 100, 100)], [face(90, 0, 190, 100)], [face(180, 5, 280, 105)]]
    assert assign_identities(frames) == [[0], [0], [0]]


def test_a_face_of_very_different_size_nearby_is_someone_else() -> None:
    frames = [[face(0, 0, 100, 100)], [face(20, 20, 60, 60)]]  # inside, but 2.5x smaller
    assert assign_identities(frames) == [[0], [1]]


def test_each_track_takes_the_face_it_overlaps_most() -> None:
    """Greedy by best overlap: the better pair is matched first, the other face starts a track."""
    frames = [
        [face(0, 0, 100, 100)],
        [face(40, 0, 140, 100), face(10, 0, 110, 100)],  # both overlap the track; the 2nd more
    ]
    assert assign_identities(frames) == [[0], [1, 0]]


def test_no_faces_anywhere() -> None:
    assert assign_identities([]) == []
    assert assign_identities([[], [], []]) == [[], [], []]


def test_one_off_detections_are_dropped_and_identities_renumbered() -> None:
    person = face(300, 100, 400, 220)
    blip = face(10, 10, 40, 40, confidence=0.91)  # seen once, at the left edge
    other = face(500, 100, 600, 220)
    faces = [[person, blip], [person], [person, other], [other, person]]
    identities = assign_identities(faces)
    assert identities == [[1, 0], [1], [1, 2], [2, 1]]
    kept_faces, kept_ids = drop_short_tracks(faces, identities, min_length=2)
    assert kept_ids == [[0], [0], [0, 1], [1, 0]]
    expected = [[person], [person], [person, other], [other, person]]
    assert [[id(f) for f in frame] for frame in kept_faces] == [
        [id(f) for f in frame] for frame in expected
    ]


def test_one_offs_count_only_once_enough_frames_were_sampled() -> None:
    assert min_track_length(1) == 1  # a still image: every face counts
    assert min_track_length(2) == 1
    assert min_track_length(32) == 2


@pytest.mark.slow
def test_two_people_in_a_real_video(two_face_video: Path, face_detector) -> None:
    frames = list(iter_sampled_frames(two_face_video, FrameSampling(count=6)))
    faces = face_detector.detect([f.image for f in frames])
    identities = assign_identities(faces)
    for found, ids in zip(faces, identities, strict=True):
        assert sorted(ids) == [0, 1]
        left = min(range(len(found)), key=lambda i: found[i].box[0])
        assert ids[left] == 0
