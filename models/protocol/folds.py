"""Leave-sources-out folds: every clip of a source, and every clip of a person, on one side.

A *source unit* joins clips that share an identity group or a subset (where a clip came from),
transitively: FaceForensics++'s c23 and c40 copies of one actor, every demo of one repository.
Holding out whole units means a fold's model has seen neither the people nor the source (its
camera, compression, captions) it is scored on, so a learnt "this source is fake" cannot help it.
Units are dealt to folds largest first, each to the smallest fold that still lacks a label the unit
brings, so that every fold holds real and fake clips.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from models.datasets import FAKE, REAL, LabeledVideo
from models.errors import ConfigError

DEFAULT_FOLDS = 5


@dataclass(frozen=True)
class Fold:
    """One held-out part: its clips, and the sources (subsets) they come from."""

    index: int
    videos: tuple[LabeledVideo, ...]

    @property
    def sources(self) -> list[str]:
        return sorted({video.subset or video.group for video in self.videos})

    @property
    def groups(self) -> set[str]:
        return {video.group for video in self.videos}


def source_units(videos: list[LabeledVideo]) -> list[list[LabeledVideo]]:
    """Clips joined by shared group or subset, largest unit first (ties by first clip's path)."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for video in videos:
        parent[root(f"group:{video.group}")] = root(f"subset:{video.subset or video.group}")
    units: dict[str, list[LabeledVideo]] = defaultdict(list)
    for video in videos:
        units[root(f"group:{video.group}")].append(video)
    return sorted(units.values(), key=lambda unit: (-len(unit), str(unit[0].path)))


def leave_sources_out(videos: list[LabeledVideo], folds: int = DEFAULT_FOLDS) -> list[Fold]:
    """Deal source units into `folds` parts, each holding both labels.

    Raises:
        ConfigError: when the data has too few units for every fold to hold both labels.
    """
    if folds < 2:
        raise ConfigError(f"the protocol needs at least 2 folds, got {folds}")
    parts: list[list[LabeledVideo]] = [[] for _ in range(folds)]
    for unit in source_units(videos):
        brings = {video.label for video in unit}

        def preference(index: int, brings: set[int] = brings) -> tuple[int, int, int]:
            lacks = brings - {video.label for video in parts[index]}
            return (0 if lacks else 1, len(parts[index]), index)

        parts[min(range(folds), key=preference)].extend(unit)
    for index, part in enumerate(parts):
        if {video.label for video in part} != {REAL, FAKE}:
            raise ConfigError(
                f"fold {index} holds one label only: {len(source_units(videos))} source units are "
                f"too few for {folds} folds with real and fake clips each; use fewer folds"
            )
    return [Fold(index, tuple(part)) for index, part in enumerate(parts)]
