"""Each model family's faces found with its own detector settings, end to end through the Detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.config import DetectOptions, DetectorConfig
from models.crops import crop_face, crops_to_tensor
from models.detector import Detector
from models.ensemble import Ensemble
from models.face_finder import FaceFinder
from models.face_settings import FaceSettings
from models.registry import Registry
from models.schema import DetectionResult
from models.video.sampling import FrameSampling, read_sampled_frames
from tests.tiny_models import TINY_64_HALF_SPEC, write_test_registry

FRAMES = 4
HALF = TINY_64_HALF_SPEC.detector
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def family_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A default-settings member first, then one at the winner's half-size detection."""
    return write_test_registry(
        tmp_path_factory.mktemp("family-registry"), members=("tiny-meso", "tiny-effnet-half")
    )


@pytest.fixture(scope="module")
def detector(family_registry: Path) -> Detector:
    detector = Detector(DetectorConfig(registry_path=family_registry, device="cpu", frames=FRAMES))
    detector.load()
    return detector


@pytest.fixture(scope="module")
def frames(two_face_video: Path) -> list[np.ndarray]:
    _, sampled = read_sampled_frames(two_face_video, FrameSampling(count=FRAMES))
    return [frame.image for frame in sampled]


def _boxes(result: DetectionResult) -> np.ndarray:
    """(frames, faces, 4) reported boxes, each frame's left to right."""
    return np.array([
        sorted((f.box.x1, f.box.y1, f.box.x2, f.box.y2) for f in frame.faces)
        for frame in result.frames
    ])


def _expected(finder: FaceFinder, frames: list[np.ndarray]) -> np.ndarray:
    return np.array([sorted(tuple(f.box.tolist()) for f in faces) for faces in finder.detect(frames)])


def test_the_registry_carries_each_members_settings(family_registry: Path) -> None:
    registry = Registry.load(family_registry)
    assert registry.models["tiny-effnet-half"].preprocessing.detector == FaceSettings(scale=0.5)
    assert registry.models["tiny-meso"].preprocessing.detector == FaceSettings()


def test_a_family_alone_gets_the_faces_of_its_own_settings(
    detector: Detector, two_face_video: Path, frames: list[np.ndarray]
) -> None:
    """640x360 frames: the detector's own settings look at full size, the half family at half."""
    half = detector.detect(two_face_video, DetectOptions(models=["tiny-effnet-half"]))
    own = detector.detect(two_face_video, DetectOptions(models=["tiny-meso"]))
    assert np.allclose(_boxes(half), _expected(FaceFinder(settings=HALF), frames), atol=1e-3)
    assert np.allclose(_boxes(own), _expected(FaceFinder(), frames), atol=1e-3)
    assert _boxes(half).shape == _boxes(own).shape == (FRAMES, 2, 4)
    assert np.abs(_boxes(half) - _boxes(own)).max() > 1.0


def test_in_a_mixed_ensemble_each_family_scores_its_own_box(
    detector: Detector, family_registry: Path, two_face_video: Path, frames: list[np.ndarray]
) -> None:
    """Faces reported are the first member's; the half family's scores are those of crops cut
    from its own finder's box of the same face."""
    result = detector.detect(two_face_video)
    assert np.allclose(_boxes(result), _expected(FaceFinder(), frames), atol=1e-3)
    half_faces = FaceFinder(settings=HALF).detect(frames)
    ensemble = Ensemble.load(Registry.load(family_registry), None, torch.device("cpu"))
    crops, reported = [], []
    for image, frame, theirs in zip(frames, result.frames, half_faces, strict=True):
        for face in frame.faces:
            ours = np.array([face.box.x1, face.box.y1, face.box.x2, face.box.y2])
            own_box = min(theirs, key=lambda f: float(np.abs(f.box - ours).sum())).box
            assert np.abs(own_box - ours).max() > 0.5  # not the reported box
            crops.append(crop_face(image, own_box, TINY_64_HALF_SPEC))
            reported.append(face.model_probabilities["tiny-effnet-half"])
    assert len(crops) == 2 * FRAMES
    expected = ensemble.predict({TINY_64_HALF_SPEC: crops_to_tensor(crops, TINY_64_HALF_SPEC)},
                                ["tiny-effnet-half"])["tiny-effnet-half"]
    assert reported == pytest.approx(list(expected), abs=1e-4)
