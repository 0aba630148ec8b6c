"""dlib's 68-point predictor on a real face, and the dense self-blend masks shaped from it."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from models.errors import ConfigError
from models.training.cropcache import landmarks_in_crop
from models.training.dense_landmarks import DenseLandmarker, face_box, predictor_path
from models.training.sbi import self_blend

SIZE = 256  # MesoNet's crop side
LEFT_EYE, RIGHT_EYE, MOUTH_LEFT, MOUTH_RIGHT = slice(36, 42), slice(42, 48), 48, 54


@pytest.fixture(scope="module")
def astronaut_face() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 256 px crop of the astronaut's face, its five MTCNN points (measured on the photo) and
    the 68 points dlib finds from them."""
    import cv2
    from skimage.data import astronaut

    image = astronaut()[40:232, 128:320]
    five = np.array([[205, 102], [247, 104], [225, 129], [202, 139], [245, 142]], np.float32)
    crop = cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    five = landmarks_in_crop(five, (128, 40, 320, 232), SIZE)
    return crop, five, DenseLandmarker()(crop, five)


def test_the_box_holds_the_five_points() -> None:
    five = np.array([[100, 100], [156, 100], [128, 130], [105, 160], [151, 160]], np.float32)
    left, top, right, bottom = face_box(five)
    assert left < five[:, 0].min() and right > five[:, 0].max()
    assert top < five[:, 1].min() and bottom > five[:, 1].max()
    assert right - left == bottom - top  # square, as dlib's detector draws them


def test_dense_points_agree_with_mtcnn_on_a_real_face(astronaut_face) -> None:
    _crop, five, dense = astronaut_face
    assert dense.shape == (68, 2) and dense.dtype == np.float32
    eye_distance = np.linalg.norm(five[1] - five[0])
    tolerance = 0.25 * eye_distance
    assert np.linalg.norm(dense[LEFT_EYE].mean(axis=0) - five[0]) < tolerance
    assert np.linalg.norm(dense[RIGHT_EYE].mean(axis=0) - five[1]) < tolerance
    assert np.linalg.norm(dense[MOUTH_LEFT] - five[3]) < tolerance
    assert np.linalg.norm(dense[MOUTH_RIGHT] - five[4]) < tolerance
    assert dense[8, 1] > five[3:, 1].max() + 0.3 * eye_distance  # the chin is below the mouth


def test_dense_masks_follow_the_face_and_some_leave_the_eyes_out(astronaut_face) -> None:
    crop, five, dense = astronaut_face
    eyes_covered = []
    for seed in range(24):
        result = self_blend(crop, dense, np.random.default_rng(seed))
        outside = result.mask == 0
        assert np.array_equal(result.image[outside], crop[outside])  # only the masked face changes
        assert result.mask[0, 0] == 0 and result.mask[-1, -1] == 0
        mouth_x, mouth_y = ((five[3] + five[4]) / 2).round().astype(int)
        assert result.mask[mouth_y, mouth_x] > 0  # every region holds the mouth
        eye_x, eye_y = five[0].round().astype(int)
        eyes_covered.append(result.mask[eye_y, eye_x] > 0)
    # Whole-face and landmark-hull masks cover the eyes; lower-face masks (lip sync's) do not.
    assert any(eyes_covered) and not all(eyes_covered)


def test_dense_blends_are_reproducible(astronaut_face) -> None:
    crop, _five, dense = astronaut_face
    a, b = (self_blend(crop, dense, np.random.default_rng(5)) for _ in range(2))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)


def test_a_missing_predictor_package_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"fakewatch\[train\]"):
        predictor_path()


def test_masks_need_five_or_sixty_eight_points(astronaut_face) -> None:
    crop, _five, dense = astronaut_face
    with pytest.raises(ValueError, match="5 or 68 landmarks, not 10"):
        self_blend(crop, dense[:10], np.random.default_rng(0))


def test_an_unknown_mask_shape_is_refused_before_any_work(tmp_path) -> None:
    from models.training.blend_run import BlendRunConfig

    with pytest.raises(ConfigError, match="unknown blend masks 'eighty-one'"):
        BlendRunConfig(data_dir=tmp_path, labels=None, out_dir=tmp_path, registry_path=None, masks="eighty-one")
