"""models.tracking: linking faces across sampled frames into people."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from models.appearance import describe_face
from models.faces import Face
from models.shots import frame_signature, shot_starts
from models.tracking import (
    MAX_GAP,
    assign_identities,
    box_iou,
    drop_short_tracks,
    main_person,
    min_track_length,
)
from models.video.sampling import FrameSampling, iter_sampled_frames
from tests import media


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


def _track_real_frames(frames: list[np.ndarray], face_detector) -> tuple[list, list[list[int]]]:
    """Detect with real MTCNN, describe each face and each frame, and track: (faces, identities)."""
    faces = face_detector.detect(frames)
    looks = [
        np.array([describe_face(image, f.box) for f in found]).reshape(len(found), -1)
        for image, found in zip(frames, faces, strict=True)
    ]
    cuts = shot_starts([frame_signature(image) for image in frames])
    return faces, assign_identities(faces, looks, cuts)


@pytest.mark.slow
def test_two_people_taking_turns_in_one_spot_stay_two(face_detector) -> None:
    """An interview without a visible cut: the astronaut and the cameraman alternate in the
    same place on the same background. Boxes alone make them one person."""
    background = media.gradient_background(640, 360)
    people = [media.astronaut_head(), media.cameraman_head()]
    frames = [
        media.paste_heads(background, [(people[step % 2], (320 + 4 * step, 180, 200))])
        for step in range(8)
    ]
    faces, identities = _track_real_frames(frames, face_detector)
    assert [len(found) for found in faces] == [1] * 8
    assert shot_starts([frame_signature(image) for image in frames]) == set()
    assert identities == [[0], [1]] * 4
    assert assign_identities(faces) == [[0]] * 8  # by position only: one merged "person"


@pytest.mark.slow
def test_a_cut_between_two_shots_of_one_person_splits_the_track(face_detector) -> None:
    """Same person, nearly the same place, another camera: two identities by design (see
    models.tracking), because a cheap descriptor cannot re-identify across shots safely."""
    first = media.gradient_background(640, 360)
    second = np.ascontiguousarray(first[:, ::-1, ::-1])  # another room, other colours
    head = media.astronaut_head()
    frames = [media.paste_heads(first, [(head, (300 + 5 * i, 180, 200))]) for i in range(4)] + [
        media.paste_heads(second, [(head, (330 + 5 * i, 185, 190))]) for i in range(4)
    ]
    faces, identities = _track_real_frames(frames, face_detector)
    assert [len(found) for found in faces] == [1] * 8
    assert shot_starts([frame_signature(image) for image in frames]) == {4}
    assert identities == [[0]] * 4 + [[1]] * 4
    assert assign_identities(faces) == [[0]] * 8  # without the cut test: one track


@pytest.mark.slow
def test_two_people_crossing_keep_their_identities(face_detector) -> None:
    """The astronaut walks right and the cameraman, a little lower, walks left; they pass between
    two sampled frames, after which each face is nearer the other's last box than its own."""
    height, step, drop = 180, 60, 40  # head height, walk per sample, the cameraman's offset
    astronaut_xs = [400 + step * (k - 2.5) for k in range(6)]
    frames = [
        media.paste_heads(
            media.gradient_background(800, 400),
            [
                (media.astronaut_head(), (x, 170, height)),
                (media.cameraman_head(), (800 - x, 170 + drop, height)),
            ],
        )
        for x in astronaut_xs
    ]
    faces, identities = _track_real_frames(frames, face_detector)
    faces, identities = drop_short_tracks(faces, identities, min_length=2)  # as the detector does

    def who(by: list[list[int]]) -> list[tuple[int, int]]:
        """(astronaut's identity, cameraman's identity) per frame: the faces nearest each."""
        pairs = []
        for x, found, ids in zip(astronaut_xs, faces, by, strict=True):
            centres = [((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2) for f in found]
            nearest = [
                min(range(len(found)), key=lambda i: np.hypot(centres[i][0] - px, centres[i][1] - py))
                for px, py in ((x, 170), (800 - x, 170 + drop))
            ]
            pairs.append((ids[nearest[0]], ids[nearest[1]]))
        return pairs

    assert all(len(found) >= 2 for found in faces)
    assert who(identities) == [(0, 1)] * 6
    assert who(drop_short_tracks(faces, assign_identities(faces), 2)[1]) != [(0, 1)] * 6  # swapped


def test_appearances_must_match_the_faces() -> None:
    with pytest.raises(ValueError, match="one descriptor per face"):
        assign_identities([[face(0, 0, 10, 10)]], [np.zeros((0, 64), dtype=np.float32)])


@pytest.mark.shared_data
def test_single_shot_research_clips_have_no_cuts(shared_train_dir: Path) -> None:
    """Real footage moves, pans and changes expression between samples without looking cut."""
    with (shared_train_dir / "labels.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["subset"] in ("dfd_c40", "ffpp_c23")]
    for row in sorted(rows, key=lambda r: r["file"])[:4]:
        frames = list(iter_sampled_frames(shared_train_dir / row["file"], FrameSampling(count=16)))
        assert shot_starts([frame_signature(f.image) for f in frames]) == set(), row["file"]


def test_main_person_is_the_most_seen_identity_and_ties_go_to_the_lowest_identity() -> None:
    # The tracker numbers people in the order it first sees them, so the lowest is the first seen.
    assert main_person(np.array([0, 1, 1, 2, 1])).tolist() == [False, True, True, False, True]
    assert main_person(np.array([1, 0, 1, 0])).tolist() == [False, True, False, True]
