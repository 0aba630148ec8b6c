"""A run's training views, rendered once and passed through the frozen trunk once.

Each real crop gives `real_views` augmented copies (label real) and `sbi_views` self-blended,
augmented copies (label fake); each genuine fake crop gives `fake_views` augmented copies. With a
teacher (`teacher.py`, for distilled members) every view is also scored by it, once. Every
view has its own seed drawn from (run seed, clip, crop, view, kind), so a pool is reproducible and
does not depend on which clips a fold leaves out. Real and fake views go through the same
augmentations, re-encoding included, so compression never tells the label.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from models.datasets import REAL, LabeledVideo
from models.training.augment import AugmentConfig, augment
from models.training.cropcache import ClipCrops
from models.training.sbi import self_blend
from models.training.trunk import Trunk

REAL_VIEW, SBI_VIEW, FAKE_VIEW = 0, 1, 2
_RENDER_CHUNK = 256  # views rendered before a trunk pass: bounds the memory of raw images


@dataclass(frozen=True)
class TrainingClip:
    """A labelled clip with the crops of its main person (the face its label is about)."""

    video: LabeledVideo
    crops: ClipCrops


@dataclass(frozen=True)
class PoolConfig:
    """How many views each crop gives, and how they are made."""

    real_views: int = 1
    sbi_views: int = 1
    fake_views: int = 2
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class ViewPool:
    """Trunk maps of every view with the clip it came from and how it was made."""

    maps: np.ndarray  # (N, C, h, w) float16
    clip: np.ndarray  # (N,) index into the run's clip list
    kind: np.ndarray  # (N,) REAL_VIEW, SBI_VIEW or FAKE_VIEW
    teacher: np.ndarray | None = None  # (N,) float32 teacher P(fake), when the run has a teacher

    @property
    def targets(self) -> np.ndarray:
        return (self.kind != REAL_VIEW).astype(np.float32)


def plan_views(clips: list[TrainingClip], config: PoolConfig) -> list[tuple[int, int, int, int]]:
    """(clip, crop, view, kind) of every view, in a fixed order."""
    plan = []
    for c, clip in enumerate(clips):
        if clip.video.label == REAL:
            kinds = [(REAL_VIEW, config.real_views), (SBI_VIEW, config.sbi_views)]
        else:
            kinds = [(FAKE_VIEW, config.fake_views)]
        for crop in range(len(clip.crops)):
            plan.extend((c, crop, view, kind) for kind, count in kinds for view in range(count))
    return plan


def render_view(clip: TrainingClip, crop: int, rng: np.random.Generator, kind: int,
                config: AugmentConfig) -> np.ndarray:
    image = clip.crops.crops[crop]
    if kind == SBI_VIEW:
        image = self_blend(image, clip.crops.landmarks[crop], rng).image
    return augment(image, rng, config)


def build_pool(clips: list[TrainingClip], trunk: Trunk, config: PoolConfig,
               teacher: Callable[[Sequence[np.ndarray]], np.ndarray] | None = None) -> ViewPool:
    """Render every planned view and keep only its trunk map (and its `teacher` score)."""
    plan = plan_views(clips, config)
    maps, scores = [], []
    bar = tqdm(total=len(plan), desc="training views", unit="view", file=sys.stderr, disable=None)
    for start in range(0, len(plan), _RENDER_CHUNK):
        images = [
            render_view(clips[c], crop, np.random.default_rng([config.seed, c, crop, view, kind]),
                        kind, config.augment)
            for c, crop, view, kind in plan[start : start + _RENDER_CHUNK]
        ]
        maps.append(trunk(images))
        if teacher is not None:
            scores.append(teacher(images))
        bar.update(len(images))
    bar.close()
    entries = np.array(plan, np.int64).reshape(-1, 4)
    return ViewPool(maps=np.concatenate(maps), clip=entries[:, 0], kind=entries[:, 3],
                    teacher=np.concatenate(scores) if teacher is not None else None)
