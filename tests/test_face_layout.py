"""models.face_layout: real MTCNN landmarks pass, the same points out of a face's order do not."""

from __future__ import annotations

import numpy as np
import pytest

from bench.face_truth import STRONGLY_TURNED_NOSE_OFFSET, nose_offset
from models.face_layout import plausible_layout
from models.faces import Face, FaceDetector
from tests import media

WIDTH, HEIGHT = 640, 360


@pytest.fixture(scope="module")
def faces(face_detector: FaceDetector) -> dict[str, Face]:
    """MTCNN's faces of the astronaut (frontal) and the cameraman (turned to his camera)."""
    background = media.gradient_background(WIDTH, HEIGHT)
    spot = (WIDTH / 2, HEIGHT / 2, 0.55 * HEIGHT)
    found = {}
    for name, head in (("frontal", media.astronaut_head()), ("turned", media.cameraman_head())):
        (faces,) = face_detector.detect([media.paste_heads(background, [(head, spot)])])
        (found[name],) = faces
    return found


def _moved(face: Face, landmarks: np.ndarray) -> Face:
    return Face(box=face.box, confidence=face.confidence, landmarks=landmarks.astype(np.float32))


def test_real_faces_frontal_and_turned_are_laid_out_like_faces(faces: dict[str, Face]) -> None:
    assert nose_offset(faces["turned"].landmarks) >= STRONGLY_TURNED_NOSE_OFFSET
    for face in faces.values():
        assert plausible_layout(face, WIDTH, HEIGHT)


def test_points_out_of_a_faces_order_are_refused(faces: dict[str, Face]) -> None:
    face = faces["frontal"]
    points = face.landmarks.astype(np.float64)
    eyes_y = points[:2, 1].mean()
    nose_above_eyes = points.copy()
    nose_above_eyes[2, 1] = eyes_y - 5
    nose_below_mouth = points.copy()
    nose_below_mouth[2, 1] = points[3:, 1].max() + 5
    upside_down = points.copy()
    upside_down[:, 1] = 2 * points[:, 1].mean() - points[:, 1]
    eyes_together = points.copy()
    eyes_together[:2, 0] = points[:2, 0].mean() + np.array([-0.5, 0.5])
    for landmarks in (nose_above_eyes, nose_below_mouth, upside_down, eyes_together):
        assert not plausible_layout(_moved(face, landmarks), WIDTH, HEIGHT)


def test_points_beyond_the_frame_are_refused(faces: dict[str, Face]) -> None:
    """A face whose eye lies past the frame's edge is a patch O-Net completed, not a face (its
    box is clipped to the frame, its landmarks are not)."""
    face = faces["frontal"]
    box_width = float(face.box[2] - face.box[0])
    shift = WIDTH + 0.2 * box_width - float(face.landmarks[1, 0])
    landmarks = face.landmarks + np.array([shift, 0], dtype=np.float32)
    box = face.box + np.array([shift, 0, shift, 0], dtype=np.float32)
    at_edge = Face(box=np.minimum(box, [WIDTH, HEIGHT, WIDTH, HEIGHT]).astype(np.float32),
                   confidence=face.confidence, landmarks=landmarks)
    assert plausible_layout(at_edge, 2 * WIDTH, HEIGHT)  # the same points in a wider frame
    assert not plausible_layout(at_edge, WIDTH, HEIGHT)
