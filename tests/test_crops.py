"""Crop geometry and tensor conventions, on synthetic frames whose every pixel is known."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from models.crops import CropSpec, crop_face, crop_window, crops_to_tensor
from models.errors import ConfigError
from models.registry import Registry

PLAIN = CropSpec(
    name="plain",
    size=90,
    margin=0.25,
    square=False,
    color_order="RGB",
    scale=255.0,
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
)


def coordinate_image(height: int = 200, width: int = 300) -> np.ndarray:
    """Pixel (y, x) holds (x % 256, y % 256, (x + y) % 256): any crop can be located exactly."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def specs() -> dict[str, CropSpec]:
    return dict(Registry.load().preprocessing)


# --- geometry -------------------------------------------------------------------------------


def test_margin_is_added_on_each_side_at_full_resolution() -> None:
    image = coordinate_image()
    box = np.array([100, 50, 160, 110])  # 60 x 60: a quarter is 15 px on every side
    assert crop_window(200, 300, box, PLAIN) == (85, 35, 175, 125)
    crop = crop_face(image, box, PLAIN)  # 90 x 90 window into a 90 px spec: no resampling
    assert crop.shape == (90, 90, 3) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop, image[35:125, 85:175])


def test_margin_is_clipped_to_the_frame() -> None:
    spec = dataclasses.replace(PLAIN, margin=0.5)
    assert crop_window(200, 300, [0, 0, 40, 40], spec) == (0, 0, 60, 60)
    assert crop_window(200, 300, [270, 180, 300, 200], spec) == (255, 170, 300, 200)


def test_square_expands_the_short_side_around_the_centre_before_the_margin() -> None:
    square = dataclasses.replace(PLAIN, square=True, margin=0.0)
    assert crop_window(200, 300, [100, 50, 140, 110], square) == (90, 50, 150, 110)
    # margin is a share of the squared side (60 px -> 15 px)
    assert crop_window(200, 300, [100, 50, 140, 110], dataclasses.replace(square, margin=0.25)) == (
        75,
        35,
        165,
        125,
    )


def test_fractional_boxes_round_outward() -> None:
    no_margin = dataclasses.replace(PLAIN, margin=0.0)
    assert crop_window(200, 300, [10.4, 10.6, 20.2, 20.5], no_margin) == (10, 10, 21, 21)


def test_selim_margin_is_a_third_of_the_box(specs: dict[str, CropSpec]) -> None:
    assert crop_window(1080, 1920, [900, 300, 1020, 450], specs["selim"]) == (860, 250, 1060, 500)


def test_wide_crop_is_shrunk_isotropically_and_centred_on_black() -> None:
    image = np.zeros((200, 300, 3), np.uint8)
    image[:] = (200, 100, 50)
    spec = dataclasses.replace(PLAIN, size=50, margin=0.0)
    crop = crop_face(image, [100, 50, 200, 100], spec)  # 100 x 50 -> 50 x 25
    np.testing.assert_array_equal(crop[12:37], np.broadcast_to([200, 100, 50], (25, 50, 3)))
    assert not crop[:12].any() and not crop[37:].any()


def test_tall_crop_is_padded_left_and_right() -> None:
    image = np.full((200, 300, 3), 255, np.uint8)
    spec = dataclasses.replace(PLAIN, size=40, margin=0.0)
    crop = crop_face(image, [10, 10, 30, 50], spec)  # 20 x 40 -> 20 x 40, columns 10-29
    assert (crop[:, 10:30] == 255).all()
    assert not crop[:, :10].any() and not crop[:, 30:].any()


def test_shrinking_uses_area_and_enlarging_uses_cubic_interpolation() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    region = image[20:120, 40:140]
    small = crop_face(image, [40, 20, 140, 120], dataclasses.replace(PLAIN, size=30, margin=0.0))
    np.testing.assert_array_equal(small, cv2.resize(region, (30, 30), interpolation=cv2.INTER_AREA))
    assert not np.array_equal(small, cv2.resize(region, (30, 30), interpolation=cv2.INTER_LINEAR))

    tiny = image[5:15, 5:15]
    big = crop_face(image, [5, 5, 15, 15], dataclasses.replace(PLAIN, size=40, margin=0.0))
    np.testing.assert_array_equal(big, cv2.resize(tiny, (40, 40), interpolation=cv2.INTER_CUBIC))
    assert not np.array_equal(big, cv2.resize(tiny, (40, 40), interpolation=cv2.INTER_LINEAR))


@pytest.mark.parametrize(
    ("image", "box", "message"),
    [
        (np.zeros((50, 50, 3), np.float32), [1, 1, 10, 10], "uint8"),
        (np.zeros((50, 50), np.uint8), [1, 1, 10, 10], "HxWx3"),
        (np.zeros((50, 50, 3), np.uint8), [10, 10, 10, 20], "no area"),
        (np.zeros((50, 50, 3), np.uint8), [60, 60, 70, 70], "outside"),
        (np.zeros((50, 50, 3), np.uint8), [1, 2, 3], "4 finite numbers"),
        (np.zeros((50, 50, 3), np.uint8), [1, 2, np.nan, 9], "4 finite numbers"),
    ],
)
def test_bad_input_is_refused(image: np.ndarray, box: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        crop_face(image, np.asarray(box), PLAIN)


# --- tensors --------------------------------------------------------------------------------


def three_colour_crop(size: int) -> np.ndarray:
    """Every pixel (255, 0, 51) except one marker pixel at row 2, column 5: (10, 20, 30)."""
    crop = np.empty((size, size, 3), np.uint8)
    crop[:] = (255, 0, 51)
    crop[2, 5] = (10, 20, 30)
    return crop


def expected_channels(rgb: tuple[int, int, int], spec: CropSpec) -> list[np.float32]:
    pixel = rgb[::-1] if spec.color_order == "BGR" else rgb
    return [
        (np.float32(v) / np.float32(spec.scale) - np.float32(m)) / np.float32(s)
        for v, m, s in zip(pixel, spec.mean, spec.std)
    ]


@pytest.mark.parametrize("name", ["selim", "coccomini", "fakewatch"])
def test_tensor_colour_order_and_normalisation(name: str, specs: dict[str, CropSpec]) -> None:
    spec = specs[name]
    batch = crops_to_tensor([three_colour_crop(spec.size)] * 2, spec)
    assert batch.shape == (2, 3, spec.size, spec.size) and batch.dtype == torch.float32
    for channel, value in enumerate(expected_channels((255, 0, 51), spec)):
        assert torch.equal(batch[:, channel, 0, 0], torch.full((2,), float(value)))
    marker = torch.tensor([float(v) for v in expected_channels((10, 20, 30), spec)])
    assert torch.equal(batch[1, :, 2, 5], marker)


def test_the_three_registered_conventions(specs: dict[str, CropSpec]) -> None:
    selim, coccomini, fakewatch = specs["selim"], specs["coccomini"], specs["fakewatch"]
    assert (selim.size, selim.margin, selim.square, selim.color_order) == (380, 1 / 3, False, "RGB")
    assert (selim.scale, selim.mean, selim.std) == (
        255.0,
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
    )
    assert (coccomini.size, coccomini.margin, coccomini.square, coccomini.color_order) == (
        224,
        0.0,
        True,
        "BGR",
    )
    # BGR, 0-255, no normalisation: the tensor holds the raw pixel values, blue first
    batch = crops_to_tensor([three_colour_crop(224)], coccomini)
    assert batch[0, :, 0, 0].tolist() == [51.0, 0.0, 255.0]
    assert (fakewatch.size, fakewatch.margin, fakewatch.square) == (224, 0.25, True)
    assert crops_to_tensor([three_colour_crop(224)], fakewatch)[0, :2, 0, 0].tolist() == [1.0, -1.0]


def test_empty_batch_keeps_its_shape() -> None:
    assert crops_to_tensor([], PLAIN).shape == (0, 3, 90, 90)


def test_crops_of_the_wrong_size_are_refused() -> None:
    with pytest.raises(ValueError, match="needs \\(90, 90, 3\\) uint8"):
        crops_to_tensor([np.zeros((64, 64, 3), np.uint8)], PLAIN)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"color_order": "RGBA"}, "color_order"),
        ({"size": 0}, "size"),
        ({"margin": -0.1}, "margin"),
        ({"scale": 0.0}, "scale"),
        ({"std": (1.0, 0.0, 1.0)}, "std"),
    ],
)
def test_inconsistent_specs_are_config_errors(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(PLAIN, **change)
