"""What a training epoch shows the model: class- and source-balanced draws, made into batches.

Half the draws are real crops; the other half fakes, of which a share are self-blended images made
from real crops and the rest genuine fake crops. Within each family of sources (`ffpp`, `dfd`,
`dfdc`: the group prefix) real and fake draws carry equal weight, so the source a crop comes from
says nothing about its label (REFERENCE §8: in our data whole sources are one label). A family's
few real clips are oversampled at most `MAX_OVERSAMPLE` times; its fakes are then thinned to match.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from models.crops import CropSpec, crops_to_tensor
from models.datasets import FAKE, REAL, LabeledVideo
from models.training.augment import AugmentConfig, augment
from models.training.cropcache import ClipCrops
from models.training.errors import TrainingDataError
from models.training.sbi import self_blend
from models.training.split import family

MAX_OVERSAMPLE = 4.0  # a real clip is drawn at most this many times as often as an average clip
DrawKind = Literal["real", "fake", "sbi"]


@dataclass(frozen=True)
class TrainingClip:
    """A labelled clip with the crops of its main person."""

    video: LabeledVideo
    crops: ClipCrops


@dataclass(frozen=True)
class Draw:
    """One training sample: which crop, made into what, with its own random seed."""

    clip: int
    crop: int
    kind: DrawKind
    seed: int

    @property
    def target(self) -> float:
        return 0.0 if self.kind == "real" else 1.0


def clip_weights(clips: list[TrainingClip]) -> tuple[np.ndarray, np.ndarray]:
    """Sampling weights of each clip as a real and as a genuine-fake source (zero where the label
    differs), balanced within each family as the module docstring says."""
    members: dict[str, dict[int, list[int]]] = defaultdict(lambda: {REAL: [], FAKE: []})
    for index, clip in enumerate(clips):
        members[family(clip.video.group)][clip.video.label].append(index)
    real_weights = np.zeros(len(clips))
    fake_weights = np.zeros(len(clips))
    for by_label in members.values():
        reals, fakes = by_label[REAL], by_label[FAKE]
        if not reals:
            continue  # fakes of a family without real clips would teach "this source is fake"
        mass = min(len(reals) * MAX_OVERSAMPLE, (len(reals) + len(fakes)) / 2)
        real_weights[reals] = mass / len(reals)
        if fakes:
            fake_weights[fakes] = mass / len(fakes)
    return real_weights, fake_weights


class BalancedSampler:
    """Plans each epoch's draws deterministically from (seed, epoch).

    Args:
        clips: training clips; clips without crops are never drawn.
        sbi_fraction: share of the fake draws made as self-blended images.
    """

    def __init__(self, clips: list[TrainingClip], sbi_fraction: float) -> None:
        if not 0.0 <= sbi_fraction <= 1.0:
            raise TrainingDataError(f"sbi_fraction must be within [0, 1], got {sbi_fraction}")
        self.clips = clips
        has_crops = np.array([len(clip.crops) > 0 for clip in clips], dtype=float)
        real_weights, fake_weights = clip_weights(clips)
        real_weights, fake_weights = real_weights * has_crops, fake_weights * has_crops
        if real_weights.sum() == 0:
            raise TrainingDataError("training needs real clips with faces (for balance and SBI)")
        self.real_p = real_weights / real_weights.sum()
        self.fake_p = fake_weights / fake_weights.sum() if fake_weights.sum() > 0 else None
        self.sbi_fraction = 1.0 if self.fake_p is None else sbi_fraction

    def epoch(self, epoch: int, samples: int, seed: int) -> list[Draw]:
        rng = np.random.default_rng([seed, epoch])
        draws = []
        for _ in range(samples):
            u = rng.random()
            if u < 0.5:
                kind: DrawKind = "real"
            elif u < 0.5 + 0.5 * self.sbi_fraction:
                kind = "sbi"
            else:
                kind = "fake"
            weights = self.fake_p if kind == "fake" else self.real_p
            clip = int(rng.choice(len(self.clips), p=weights))
            crop = int(rng.integers(len(self.clips[clip].crops)))
            draws.append(Draw(clip, crop, kind, int(rng.integers(2**63))))
        return draws


def render(draw: Draw, clips: list[TrainingClip], config: AugmentConfig) -> np.ndarray:
    """The augmented image of one draw (self-blended first when it is an SBI draw)."""
    rng = np.random.default_rng(draw.seed)
    crops = clips[draw.clip].crops
    image = crops.crops[draw.crop]
    if draw.kind == "sbi":
        image = self_blend(image, crops.landmarks[draw.crop], rng).image
    return augment(image, rng, config)


def make_batch(
    draws: list[Draw], clips: list[TrainingClip], spec: CropSpec, config: AugmentConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, S, S) normalised inputs and (N,) float targets (1 = fake)."""
    images = [render(draw, clips, config) for draw in draws]
    targets = torch.tensor([draw.target for draw in draws], dtype=torch.float32)
    return crops_to_tensor(images, spec), targets
