"""68-point face landmarks (dlib's shape predictor) for self-blended masks, at training time only.

MTCNN's five points can only approximate a face's outline. The self-blended-images paper shapes
its masks from dense landmarks: the jaw line, brows, nose and lips, so that a mask can follow the
jaw or cover only the mouth region, as lip-sync tools do. dlib's predictor needs a face box; it is
derived from the five MTCNN points each crop already has, so no second detector can miss a face
the pipeline found. The predictor's training data (iBUG 300-W) is for research only: weights
trained with these masks say so in their card.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from models.errors import ConfigError
from models.training.sbi import DENSE_POINTS

PREDICTOR_PACKAGE = "face_recognition_models"
PREDICTOR_FILE = Path("models") / "shape_predictor_68_face_landmarks.dat"
# The box dlib's own HOG detector draws, from the eye centre (e) and eye-to-mouth vector (v) and
# the eye-to-eye vector (u): centre e + 0.35 v, side 1.11 (|u| + |v|). Medians over 83 real
# training crops where HOG found exactly one face (quartiles 0.31-0.48 and 1.07-1.17).
BOX_CENTRE_ALONG_MOUTH = 0.35
BOX_SIDE_PER_FACE_SPAN = 1.11
INSTALL_HINT = "pip install 'fakewatch[train]'"
TRAINING_DATA_NOTE = ("The self-blend masks were shaped by dlib's 68-point predictor, at training "
                      "time only; its training data, iBUG 300-W, is for research only.")


def predictor_path() -> Path:
    """Where `face-recognition-models` keeps dlib's 68-point predictor.

    The package is located without importing it: its `__init__` needs `pkg_resources`, which
    current setuptools no longer ships.
    """
    spec = importlib.util.find_spec(PREDICTOR_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"dense self-blend masks need dlib's 68-point predictor: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / PREDICTOR_FILE


def face_box(five_points: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the face box dlib's predictor expects, from MTCNN's points."""
    left_eye, right_eye, _nose, mouth_left, mouth_right = np.asarray(five_points, np.float64).reshape(5, 2)
    eyes = (left_eye + right_eye) / 2
    to_mouth = (mouth_left + mouth_right) / 2 - eyes
    centre = eyes + BOX_CENTRE_ALONG_MOUTH * to_mouth
    side = round(float(BOX_SIDE_PER_FACE_SPAN * (np.linalg.norm(right_eye - left_eye) + np.linalg.norm(to_mouth))))
    left, top = (round(float(c) - side / 2) for c in centre)
    return left, top, left + side, top + side


class DenseLandmarker:
    """dlib's 68-point shape predictor, loaded once."""

    def __init__(self) -> None:
        path = predictor_path()
        try:
            import dlib  # training time only: the service never needs it
        except ImportError as error:
            raise ConfigError(f"dense self-blend masks need dlib: {INSTALL_HINT}") from error
        if not path.is_file():
            raise ConfigError(f"dlib's 68-point predictor is missing from {PREDICTOR_PACKAGE}: reinstall it")
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(path))

    def __call__(self, crop: np.ndarray, five_points: np.ndarray) -> np.ndarray:
        """(68, 2) float32 points in the crop's pixels (iBUG order: jaw 0-16, brows 17-26, nose
        27-35, eyes 36-47, lips 48-67) of the face whose MTCNN points are `five_points`."""
        shape = self._predictor(np.ascontiguousarray(crop), self._dlib.rectangle(*face_box(five_points)))
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)

    def many(self, crops: np.ndarray, five_points: np.ndarray) -> np.ndarray:
        """(N, 68, 2) points of N crops and their (N, 5, 2) MTCNN points."""
        points = [self(crop, five) for crop, five in zip(crops, five_points, strict=True)]
        return np.stack(points) if points else np.zeros((0, DENSE_POINTS, 2), np.float32)
