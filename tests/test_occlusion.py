"""The heatmap means something: a model trained to call a pasted patch fake is explained by it.

A small CNN is fitted here on the test frame's face crops, half of them with a magenta square
pasted at a random place and size. On a new frame with the square somewhere else, most of the
occlusion map's mass must lie on the square: that is where the evidence for "fake" is.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models.crops import crop_face, crop_window, crops_to_tensor
from models.occlusion import OcclusionGrid, occlusion_heatmap
from models.overlay import overlay_heat
from tests import media
from tests.tiny_models import TINY_64_SPEC

SPEC = TINY_64_SPEC
MAGENTA = np.array([230, 20, 220], dtype=np.uint8)
FRAMES = 24
TRAIN_STEPS = 150
BATCH = 32


def frame_and_box(index: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    return media.face_frame(index, frames=FRAMES), media.pasted_head_boxes(index, frames=FRAMES)[0]


def paste(image: np.ndarray, x: int, y: int, side: int) -> np.ndarray:
    pasted = image.copy()
    pasted[y : y + side, x : x + side] = MAGENTA
    return pasted


def training_batch(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Face crops of random frames, every other one with a square of random size and place."""
    crops, labels = [], []
    for item in range(BATCH):
        image, box = frame_and_box(int(rng.integers(FRAMES)))
        if item % 2:
            x1, y1, x2, y2 = crop_window(image.shape[0], image.shape[1], box, SPEC)
            side = int(rng.integers((x2 - x1) // 6, (x2 - x1) // 3))
            x = int(rng.integers(x1, x2 - side))
            y = int(rng.integers(y1, y2 - side))
            image = paste(image, x, y, side)
        crops.append(crop_face(image, box, SPEC))
        labels.append(float(item % 2))
    return crops_to_tensor(crops, SPEC), torch.tensor(labels)


@pytest.fixture(scope="module")
def patch_detector() -> nn.Module:
    """A small CNN fitted to call crops with the magenta square fake."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 1),
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    rng = np.random.default_rng(0)
    for _ in range(TRAIN_STEPS):
        images, labels = training_batch(rng)
        loss = nn.functional.binary_cross_entropy_with_logits(model(images).squeeze(1), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def test_most_of_the_heat_lies_on_the_patch_the_model_calls_fake(patch_detector: nn.Module) -> None:
    image, box = frame_and_box(7)
    region = crop_window(image.shape[0], image.shape[1], box, SPEC)
    x1, y1, x2, y2 = region
    side = (x2 - x1) // 4
    x, y = x1 + (x2 - x1) // 2, y1 + (y2 - y1) // 5  # upper right of the face: off-centre
    faked = paste(image, x, y, side)

    def score(batches: dict) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(patch_detector(batches[SPEC]).squeeze(1)).numpy()

    clean_p = score({SPEC: crops_to_tensor([crop_face(image, box, SPEC)], SPEC)})[0]
    fake_p = score({SPEC: crops_to_tensor([crop_face(faked, box, SPEC)], SPEC)})[0]
    assert fake_p > 0.9 and clean_p < 0.1, "the model did not learn the patch"

    heat = occlusion_heatmap(faked, box, region, [SPEC], score, OcclusionGrid())
    assert heat.shape == (y2 - y1, x2 - x1) and heat.min() >= 0
    on_patch = np.zeros_like(heat, dtype=bool)
    on_patch[y - y1 : y - y1 + side, x - x1 : x - x1 + side] = True
    share = heat[on_patch].sum() / heat.sum()
    assert share > 0.5, f"only {share:.0%} of the heat lies on the patch ({on_patch.mean():.0%} of the crop)"
    # and the hottest spot is on it
    peak = np.unravel_index(np.argmax(heat), heat.shape)
    assert on_patch[peak]


def test_a_crop_nothing_lowers_has_no_heat_and_the_overlay_leaves_it_unchanged() -> None:
    image, box = frame_and_box(3)
    region = crop_window(image.shape[0], image.shape[1], box, SPEC)

    def constant(batches: dict) -> np.ndarray:
        return np.full(len(batches[SPEC]), 0.7)

    heat = occlusion_heatmap(image, box, region, [SPEC], constant)
    assert not heat.any()
    crop = image[region[1] : region[3], region[0] : region[2]]
    assert np.array_equal(overlay_heat(crop, heat), crop)
