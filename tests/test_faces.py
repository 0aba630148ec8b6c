"""models.faces: the real facenet-pytorch MTCNN on the astronaut's real face."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.data import astronaut

from models.faces import Face, FaceDetector, detection_scale
from models.video.sampling import FrameSampling, iter_sampled_frames
from tests import media

pytestmark = pytest.mark.slow

# The head region of the 512x512 astronaut photo (media.ASTRONAUT_HEAD), as x1, y1, x2, y2.
ASTRONAUT_HEAD_BOX = (145, 20, 305, 215)


def inside(box: np.ndarray, region: tuple[float, float, float, float], slack: float = 0.05) -> bool:
    """Whether `box` lies within `region`, give or take `slack` of the region's size."""
    x1, y1, x2, y2 = region
    dx, dy = slack * (x2 - x1), slack * (y2 - y1)
    return bool(box[0] >= x1 - dx and box[1] >= y1 - dy and box[2] <= x2 + dx and box[3] <= y2 + dy)


def check_face(face: Face, head: tuple[int, int, int, int]) -> None:
    """A well-formed detection of the pasted head: inside it, a real part of it, confident."""
    assert face.box.shape == (4,) and face.box.dtype == np.float32
    assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
    assert inside(face.box, head)
    box_area = (face.box[2] - face.box[0]) * (face.box[3] - face.box[1])
    assert box_area > 0.15 * (head[2] - head[0]) * (head[3] - head[1])
    assert inside(
        face.landmarks.min(0).tolist() + face.landmarks.max(0).tolist(), face.box.tolist(), 0
    )
    assert face.confidence > 0.95


@pytest.mark.parametrize(
    ("width", "height", "scale"),
    [
        (299, 200, 2.0),
        (200, 299, 2.0),
        (300, 300, 1.0),
        (1000, 562, 1.0),
        (1001, 563, 0.5),
        (1900, 1068, 0.5),
        (1901, 1000, 0.33),
        (1080, 1920, 0.33),
        (3840, 2160, 0.33),
    ],
)
def test_detection_scale_follows_the_long_side(width: int, height: int, scale: float) -> None:
    assert detection_scale(width, height) == scale


def test_finds_the_face_in_every_sampled_frame(
    face_video: Path, face_detector: FaceDetector
) -> None:
    frames = list(iter_sampled_frames(face_video, FrameSampling(count=8)))
    faces = face_detector.detect([f.image for f in frames])
    assert [len(found) for found in faces] == [1] * 8
    for frame, (face,) in zip(frames, faces, strict=True):
        (head,) = media.pasted_head_boxes(frame.index)
        check_face(face, head)


def test_finds_both_people(two_face_video: Path, face_detector: FaceDetector) -> None:
    frames = list(iter_sampled_frames(two_face_video, FrameSampling(count=4)))
    faces = face_detector.detect([f.image for f in frames])
    for frame, found in zip(frames, faces, strict=True):
        assert len(found) == 2
        assert found[0].confidence >= found[1].confidence
        left, right = sorted(found, key=lambda face: face.box[0])
        left_head, right_head = media.pasted_head_boxes(frame.index, faces=2)
        check_face(left, left_head)
        check_face(right, right_head)


def test_no_face_in_a_blank_video(blank_video: Path, face_detector: FaceDetector) -> None:
    frames = list(iter_sampled_frames(blank_video, FrameSampling(count=8)))
    assert face_detector.detect([f.image for f in frames]) == [[]] * 8


@pytest.mark.parametrize("size", [256, 512, 1536])  # detected at 2x, 1x and 0.5x
def test_boxes_come_back_at_full_resolution(face_detector: FaceDetector, size: int) -> None:
    image = np.asarray(Image.fromarray(astronaut()).resize((size, size), Image.BILINEAR))
    (faces,) = face_detector.detect([image])
    assert len(faces) == 1
    to_photo = 512 / size
    check_face(
        Face(faces[0].box * to_photo, faces[0].confidence, faces[0].landmarks * to_photo),
        ASTRONAUT_HEAD_BOX,
    )


def test_a_batch_mixing_face_counts(face_detector: FaceDetector) -> None:
    """MTCNN returns ragged object arrays when images in a batch hold different face counts."""
    size = {"width": 320, "height": 240}
    images = [
        media.face_frame(0, **size),
        media.gradient_background(**size),
        media.face_frame(0, faces=2, **size),
        astronaut(),  # another size: its own batch
    ]
    faces = face_detector.detect(images)
    assert [len(found) for found in faces] == [1, 0, 2, 1]
    check_face(faces[3][0], ASTRONAUT_HEAD_BOX)


def test_small_batches_give_the_same_faces(face_detector: FaceDetector) -> None:
    images = [media.face_frame(i, frames=3, width=320, height=240) for i in range(3)]
    batched = face_detector.detect(images)
    one_by_one = FaceDetector(batch_size=2).detect(images)
    assert [len(found) for found in batched] == [len(found) for found in one_by_one] == [1] * 3
    for (a,), (b,) in zip(batched, one_by_one, strict=True):
        assert np.allclose(a.box, b.box, atol=0.5)
        assert a.confidence == pytest.approx(b.confidence, abs=1e-4)


def test_boxes_are_clipped_to_the_frame(face_detector: FaceDetector) -> None:
    image = np.ascontiguousarray(astronaut()[:, 200:])  # the left half of the face is cut off
    (faces,) = face_detector.detect([image])
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0].box
    assert x1 == 0 and 0 <= y1 < y2 <= image.shape[0] and 0 < x2 <= image.shape[1]


def test_refuses_images_that_are_not_rgb_uint8(face_detector: FaceDetector) -> None:
    assert face_detector.detect([]) == []
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        face_detector.detect([np.zeros((64, 64), dtype=np.uint8)])
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        face_detector.detect([np.zeros((64, 64, 3), dtype=np.float32)])


@pytest.mark.shared_data
def test_finds_faces_in_research_clips(shared_train_dir: Path, face_detector: FaceDetector) -> None:
    with (shared_train_dir / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for subset in ("dfdc_facecrops", "ffpp_c23", "dfd_c40"):
        row = min((r for r in rows if r["subset"] == subset), key=lambda r: int(r["frames"]))
        frames = list(iter_sampled_frames(shared_train_dir / row["file"], FrameSampling(count=8)))
        assert len(frames) == 8
        faces = face_detector.detect([f.image for f in frames])
        with_face = sum(1 for found in faces if found)
        assert with_face >= 6, f"{row['file']}: faces in only {with_face} of 8 frames"


def test_faces_below_the_minimum_share_of_the_frame_are_not_looked_for() -> None:
    """The head fills about half the frame's height: found when the minimum is a third of the
    short side, not when it is the whole short side."""
    frame = media.face_frame(0)
    (head,) = media.pasted_head_boxes(0)
    assert 0.35 < (head[3] - head[1]) / frame.shape[0] < 0.65
    (found,) = FaceDetector(min_face_fraction=1 / 3).detect([frame])
    assert len(found) == 1
    check_face(found[0], head)
    assert FaceDetector(min_face_fraction=1.0).detect([frame]) == [[]]
