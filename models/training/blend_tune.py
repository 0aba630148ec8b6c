"""Fine-tune a whole MesoNet on real faces against their own self-blended images.

The Lite members train only their last stage on frozen ImageNet features, which describe objects
rather than blending seams. MesoNet's convolutions are small enough to train end to end on two
CPU cores, so the low-level filters where blending boundaries and colour mismatch show can adapt,
as in the self-blended-images paper, which trains the whole network. Both labels come from the
same real clips (a face, and that face blended into itself), so no source, person or generator
can be learnt as the label: genuine fakes are never trained on, only scored by the protocol.

Views are rendered once (each real face once as itself and once self-blended, both through the
same augmentation and re-encoding, `models.training.augment`) and a fit draws half its batch from
each kind, every real clip alike. A fixed number of steps: nothing is chosen on the clips the
protocol reports; the snapshots of one fit show how the score moves with training.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.crops import CropSpec, crops_to_tensor
from models.training.augment import AugmentConfig, augment
from models.training.errors import TrainingDataError
from models.training.sbi import self_blend
from models.training.top_fit import GRAD_CLIP_NORM, spread

PREDICT_BATCH = 64


@dataclass(frozen=True)
class BlendTuneConfig:
    """How one fit trains.

    Attributes:
        steps: optimiser steps of the fit that ships (fixed in advance, not chosen on the clips).
        snapshots: step counts the protocol also scores, for the card (0: the starting model).
        batch_size: views per step, half real and half self-blended.
        learning_rate: Adam's rate, constant (so one fit's snapshots are the fits of each count).
        seed: seeds the rendered views and the draws.
    """

    steps: int = 200
    snapshots: tuple[int, ...] = (0, 100, 200)
    batch_size: int = 32
    learning_rate: float = 1e-4
    seed: int = 0

    def scored_counts(self) -> tuple[int, ...]:
        return tuple(sorted({*self.snapshots, self.steps}))


@dataclass(frozen=True)
class BlendViews:
    """Rendered training views of the real clips' faces.

    Attributes:
        images: (V, S, S, 3) uint8 RGB, augmented.
        clip: (V,) index of the clip each view came from.
        blended: (V,) bool, the view is a self-blended image (the target is 1).
    """

    images: np.ndarray
    clip: np.ndarray
    blended: np.ndarray


def render_views(real_crops: dict[int, tuple[np.ndarray, np.ndarray]], seed: int,
                 config: AugmentConfig | None = None) -> BlendViews:
    """Each face of each real clip ({clip index: (crops, landmarks in crop pixels)}) as itself
    and self-blended, both augmented alike so that no processing step predicts the label."""
    config = config or AugmentConfig()
    images, clips, blended = [], [], []
    for clip, (crops, landmarks) in real_crops.items():
        for face, (crop, points) in enumerate(zip(crops, landmarks, strict=True)):
            rng = np.random.default_rng([seed, clip, face])
            images += [augment(crop, rng, config), augment(self_blend(crop, points, rng).image, rng, config)]
            clips += [clip, clip]
            blended += [False, True]
    if not images:
        raise TrainingDataError("no real clip with a tracked face to render training views from")
    return BlendViews(np.stack(images), np.array(clips, np.int64), np.array(blended))


def view_weights(views: BlendViews, in_training: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the training clips' views and their draw probabilities: half the mass on each
    kind, every clip alike within a kind."""
    rows = np.flatnonzero(in_training[views.clip])
    shares = np.zeros(len(rows))
    for kind in (False, True):
        per_clip: dict[str, list[int]] = defaultdict(list)
        for position, row in enumerate(rows):
            if views.blended[row] == kind:
                per_clip[str(views.clip[row])].append(position)
        spread(0.5, per_clip, shares)
    return rows, shares / shares.sum()


def tune_snapshots(start: nn.Module, spec: CropSpec, views: BlendViews, in_training: np.ndarray,
                   config: BlendTuneConfig) -> dict[int, nn.Module]:
    """Copies of the model after each of `config.scored_counts()` steps of one fit of `start`
    (left untouched) on the views of the `in_training` clips."""
    rows, probabilities = view_weights(views, in_training)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = copy.deepcopy(start).train()
    device = next(model.parameters()).device
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    snapshots, step = {}, 0
    for target in config.scored_counts():
        while step < target:
            batch = rows[rng.choice(len(rows), config.batch_size, p=probabilities)]
            inputs = crops_to_tensor(list(views.images[batch]), spec).to(device)
            targets = torch.from_numpy(views.blended[batch].astype(np.float32)).to(device)
            loss = F.binary_cross_entropy_with_logits(model(inputs).reshape(-1), targets)
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
            optimiser.step()
            step += 1
        snapshots[target] = copy.deepcopy(model).eval()
    return snapshots


def face_logits(model: nn.Module, crops: Sequence[np.ndarray] | np.ndarray, spec: CropSpec) -> np.ndarray:
    """(N,) P(fake) logits of uint8 crops, as the detector computes them, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    parts = []
    with torch.inference_mode():
        for start in range(0, len(crops), PREDICT_BATCH):
            batch = crops_to_tensor(list(crops[start : start + PREDICT_BATCH]), spec).to(device)
            parts.append(model(batch).float().reshape(-1).cpu())
    return torch.cat(parts).numpy() if parts else np.zeros(0, np.float32)
