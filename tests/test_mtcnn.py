"""Our MTCNN stage driver against facenet-pytorch's own `detect`: same crops, same faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from facenet_pytorch import MTCNN
from skimage.data import astronaut
from torch.nn.functional import interpolate

from models.faces import DFDC_THRESHOLDS
from models.mtcnn import AreaCropper, forward_padded, pyramid_scales, run_mtcnn, useful_scales
from tests import media


def test_area_crops_match_area_interpolation() -> None:
    """Boxes shrunk, enlarged, thin and touching the frame's edges, in two frames."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(2, 90, 120, 3), dtype=np.uint8)
    boxes = [(0, 0, 90, 0, 120), (1, 10, 11, 5, 80), (0, 40, 47, 100, 120), (1, 3, 70, 7, 19)]
    frame_of, top, bottom, left, right = (np.array(column) for column in zip(*boxes, strict=True))
    for size in (24, 48):
        ours = AreaCropper(frames).crops(frame_of, top, bottom, left, right, size)
        for k, (f, t, b, left_, right_) in enumerate(boxes):
            region = torch.from_numpy(frames[f, t:b, left_:right_]).permute(2, 0, 1)[None].float()
            expected = interpolate(region, size=(size, size), mode="area")[0]
            assert torch.allclose(ours[k], expected, atol=1e-3), (size, boxes[k])


def test_pyramid_stops_when_the_frame_is_smaller_than_a_cell() -> None:
    scales = pyramid_scales(360, 640, min_face_size=20, factor=0.709)
    assert scales[0] == pytest.approx(0.6)
    assert 360 * scales[-1] >= 12 > 360 * scales[-1] * 0.709
    assert pyramid_scales(10, 10, min_face_size=20, factor=0.709) == []


def test_small_face_levels_are_cut_from_the_top_of_the_pyramid() -> None:
    """1080p is detected at 0.5x: faces under 5.5% of its short side only need the first level.
    720p (0.5x, 360 px): that share is under MTCNN's own 20 px minimum, nothing is skipped."""
    nets = MTCNN(min_face_size=20)
    full = pyramid_scales(540, 960, min_face_size=20, factor=0.709)
    assert useful_scales(540, 960, nets, smallest_face=0.0) == full
    assert useful_scales(540, 960, nets, smallest_face=0.055 * 540) == full[1:]
    assert useful_scales(360, 640, nets, smallest_face=0.055 * 360) == pyramid_scales(
        360, 640, min_face_size=20, factor=0.709
    )


@pytest.mark.slow
def test_large_faces_are_found_the_same_without_the_small_face_levels() -> None:
    nets = MTCNN(thresholds=list(DFDC_THRESHOLDS), keep_all=True, device="cpu").eval()
    frames = np.stack([media.face_frame(i, faces=2) for i in (0, 5, 10)])  # heads ~45% of 360 px
    all_levels, _ = run_mtcnn(nets, frames)
    without_small, _ = run_mtcnn(nets, frames, smallest_face=60.0)
    assert [len(b) for b in all_levels] == [2, 2, 2]
    for a, b in zip(all_levels, without_small, strict=True):
        assert np.allclose(a, b, atol=1e-3)


@pytest.mark.slow
def test_same_faces_as_facenet_pytorch() -> None:
    nets = MTCNN(thresholds=list(DFDC_THRESHOLDS), keep_all=True, device="cpu").eval()
    size = {"width": 320, "height": 240}
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8)  # many stage-1 candidates
    frames = np.stack(
        [
            media.face_frame(0, **size),
            media.face_frame(1, faces=2, **size),
            noise,
            media.gradient_background(**size),
            np.asarray(media.face_frame(2, **size) // 2 + noise // 2, dtype=np.uint8),
        ]
    )
    boxes, points = run_mtcnn(nets, frames)
    with torch.no_grad():
        their_boxes, their_probs, their_points = nets.detect(frames, landmarks=True)
    assert sum(len(b) for b in boxes) >= 3
    for i in range(len(frames)):
        if their_boxes[i] is None:
            assert len(boxes[i]) == 0
            continue
        assert np.allclose(boxes[i][:, :4], np.asarray(their_boxes[i], dtype=np.float32), atol=1e-2)
        assert np.allclose(boxes[i][:, 4], np.asarray(their_probs[i], dtype=np.float32), atol=1e-4)
        assert np.allclose(points[i], np.asarray(their_points[i], dtype=np.float32), atol=1e-2)


def test_no_face_in_a_frame_smaller_than_the_smallest_face() -> None:
    nets = MTCNN(min_face_size=20, keep_all=True, device="cpu").eval()
    frames = np.asarray(astronaut()[:10, :10])[None].copy()
    boxes, points = run_mtcnn(nets, frames)
    assert boxes[0].shape == (0, 5) and points[0].shape == (0, 5, 2)


def test_padded_candidate_batches_give_each_candidate_the_same_outputs() -> None:
    """GPU batches of R-/O-Net candidates are padded to few sizes; no candidate may notice."""
    nets = MTCNN(device="cpu").eval()
    crops = torch.rand(37, 3, 48, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        plain = nets.onet(crops)
        padded = forward_padded(nets.onet, crops, pad=True)
    assert len(padded) == len(plain) == 3
    for got, expected in zip(padded, plain, strict=True):
        assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-5)
