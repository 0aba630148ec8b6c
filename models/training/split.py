"""Train/validation split by group: no person or original video on both sides.

Stratified by family (the group prefix: `ffpp`, `dfd`, `dfdc`, ...) so that validation holds groups of
every family, and arranged so that validation has both labels while training keeps, for every
family, a group with real clips whenever it has one to spare (§8: balance labels within sources).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from models.datasets import FAKE, REAL, LabeledVideo
from models.training.errors import TrainingDataError

DEFAULT_VALIDATION_FRACTION = 0.25
MAX_ATTEMPTS = 200  # seeded reshuffles tried before giving up on the label constraints


@dataclass(frozen=True)
class Split:
    train: list[LabeledVideo]
    validation: list[LabeledVideo]

    @property
    def validation_groups(self) -> list[str]:
        return sorted({video.group for video in self.validation})


def family(group: str) -> str:
    """`ffpp:253` -> `ffpp`; a group without a prefix is its own family."""
    return group.split(":", 1)[0]


def _labels(videos: list[LabeledVideo]) -> set[int]:
    return {video.label for video in videos}


def _pick_family(
    groups: dict[str, list[LabeledVideo]], fraction: float, rng: np.random.Generator
) -> set[str]:
    """Shuffle the family's groups and take them until the validation share is reached.

    Validation gets at least one group when the family has two or more; a family's only group
    holding REAL clips stays in training.
    """
    names = sorted(groups)
    if len(names) < 2:
        return set()
    real_groups = [name for name in names if REAL in _labels(groups[name])]
    total = sum(len(videos) for videos in groups.values())
    target = fraction * total
    chosen: set[str] = set()
    size = 0
    for name in rng.permutation(names):
        if len(real_groups) == 1 and name == real_groups[0]:
            continue
        if chosen and size + len(groups[name]) / 2 > target:
            continue
        chosen.add(str(name))
        size += len(groups[name])
        if size >= target:
            break
    if len(chosen) == len(names):
        chosen.discard(min(chosen))
    return chosen


def split_by_group(
    videos: list[LabeledVideo], fraction: float = DEFAULT_VALIDATION_FRACTION, seed: int = 0
) -> Split:
    """Deterministically split `videos` by group.

    Args:
        fraction: share of each family's clips (approximately, whole groups only) to validate on.
        seed: same seed, same videos -> same split.

    Raises:
        TrainingDataError: when no split gives validation both labels and training both labels.
    """
    if not 0.0 < fraction < 1.0:
        raise TrainingDataError(f"validation fraction must be between 0 and 1, got {fraction}")
    by_family: dict[str, dict[str, list[LabeledVideo]]] = defaultdict(lambda: defaultdict(list))
    for video in videos:
        by_family[family(video.group)][video.group].append(video)
    rng = np.random.default_rng(seed)
    for _ in range(MAX_ATTEMPTS):
        chosen: set[str] = set()
        for name in sorted(by_family):
            chosen |= _pick_family(by_family[name], fraction, rng)
        validation = [video for video in videos if video.group in chosen]
        train = [video for video in videos if video.group not in chosen]
        if _labels(validation) == {REAL, FAKE} and _labels(train) == {REAL, FAKE}:
            return Split(train=train, validation=validation)
    raise TrainingDataError(
        "cannot split by group so that both training and validation hold REAL and FAKE clips: "
        f"{len({video.group for video in videos})} group(s) are too few"
    )
