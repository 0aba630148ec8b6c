"""The training crop cache finds faces with the detector's own face finder and settings."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench.face_conditions import DIM_ROOM, Scene, chain, face_shadow, shrink
from models.face_finder import FaceFinder
from models.face_settings import FaceSettings
from models.faces import FaceDetector
from models.training.cropcache import CACHE_FORMAT_VERSION, CropCache, CropExtractor
from models.video.sampling import FrameSampling, read_sampled_frames
from tests import media
from tests.tiny_models import TINY_64_SPEC

FRAMES = 3


def test_the_cache_folder_changes_with_the_family_detector_settings(tmp_path: Path) -> None:
    own = CropExtractor(TINY_64_SPEC, FRAMES)
    half = CropExtractor(replace(TINY_64_SPEC, detector=FaceSettings(scale=0.5)), FRAMES)
    assert own.settings()["version"] == CACHE_FORMAT_VERSION == 3
    assert own.settings()["finder"]["scale"] is None and half.settings()["finder"]["scale"] == 0.5
    assert CropCache(own, tmp_path).directory != CropCache(half, tmp_path).directory


@pytest.mark.slow
def test_crops_are_cut_where_the_detectors_finder_finds_faces(tmp_path: Path) -> None:
    """A dim room, a 50 px face in shadow: plain MTCNN finds nothing, the finder (and so the
    training crops) finds her in every frame, with the finder's boxes."""
    plain = FaceDetector()
    (faces,) = plain.detect([media.face_frame(0)])
    standing = shrink(50)(
        Scene(media.face_frame(0), tuple(float(v) for v in faces[0].box)), np.random.default_rng(0)
    )
    dim = chain(face_shadow(), DIM_ROOM)
    images = [dim(standing, np.random.default_rng(seed)).image for seed in range(FRAMES)]
    path = media.encode_images(tmp_path / "dim_room.mp4", images)
    _, decoded = read_sampled_frames(path, FrameSampling(count=FRAMES))
    frames = [frame.image for frame in decoded]
    assert plain.detect(frames) == [[]] * FRAMES
    expected = FaceFinder().detect(frames)
    clip = CropCache(CropExtractor(TINY_64_SPEC, FRAMES), tmp_path / "cache").get(path)
    assert list(clip.frame_positions) == list(range(FRAMES))
    assert np.allclose(clip.boxes, np.stack([found[0].box for found in expected]))
    assert clip.crops.shape == (FRAMES, TINY_64_SPEC.size, TINY_64_SPEC.size, 3)
