"""From per-crop probabilities to per-identity and per-video scores, as named policies.

Every policy sees the same `CropScores`: for each face crop of a video, the person track it
belongs to and P(fake) from each ensemble member. Policies differ in how they summarise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import stats

from models.errors import ConfigError


@dataclass(frozen=True)
class CropScores:
    """P(fake) per crop per model, with each crop's identity.

    Attributes:
        identities: (n,) identity id of each crop.
        per_model: model id -> (n,) P(fake) of each crop.
    """

    identities: np.ndarray
    per_model: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        if len(self.identities) == 0:
            raise ValueError("no crops to aggregate: a video without faces has no score")
        if not self.per_model:
            raise ValueError("no model scores to aggregate")
        for model_id, probabilities in self.per_model.items():
            if probabilities.shape != self.identities.shape:
                raise ValueError(
                    f"model {model_id!r} scored {probabilities.shape} crops, expected {self.identities.shape}"
                )

    @property
    def ensemble(self) -> np.ndarray:
        """Ensemble P(fake) per crop: the mean of the members' probabilities."""
        return np.mean(np.stack(list(self.per_model.values())), axis=0)

    def identity_ids(self) -> list[int]:
        return sorted(int(i) for i in np.unique(self.identities))

    def select(self, identity: int) -> CropScores:
        """The crops of one identity only."""
        mask = self.identities == identity
        return CropScores(
            identities=self.identities[mask],
            per_model={m: p[mask] for m, p in self.per_model.items()},
        )


class AggregationPolicy(Protocol):
    name: str

    def score(self, scores: CropScores) -> float:
        """One P(fake) for a group of crops (one identity's)."""

    def video_score(self, scores: CropScores) -> float:
        """One P(fake) for the whole video."""


def identity_scores(policy: AggregationPolicy, scores: CropScores) -> dict[int, float]:
    """P(fake) of each identity under `policy`."""
    return {identity: policy.score(scores.select(identity)) for identity in scores.identity_ids()}


@dataclass(frozen=True)
class ConfidentPolicy:
    """selim's DFDC-winning rule, applied per model and then averaged over models.

    If clearly many crops look fake, trust those; else if nearly all look real, trust those;
    else average. Defaults are the winner's constants (REFERENCE §1).
    """

    name: str = "confident"
    fake_threshold: float = 0.8
    fake_count_divisor: float = 2.5
    min_fake_count: int = 11
    real_threshold: float = 0.2
    real_fraction: float = 0.9

    def rule(self, probabilities: np.ndarray) -> float:
        """The rule for one model's crop probabilities."""
        n = len(probabilities)
        fakes = probabilities > self.fake_threshold
        fake_count = int(np.count_nonzero(fakes))
        # Floor division of an int by a float, exactly as the original (n // 2.5).
        if fake_count > n // self.fake_count_divisor and fake_count > self.min_fake_count:
            return float(np.mean(probabilities[fakes]))
        reals = probabilities < self.real_threshold
        if np.count_nonzero(reals) > self.real_fraction * n:
            return float(np.mean(probabilities[reals]))
        return float(np.mean(probabilities))

    def score(self, scores: CropScores) -> float:
        return float(np.mean([self.rule(p) for p in scores.per_model.values()]))

    def video_score(self, scores: CropScores) -> float:
        # The original pools all crops of all faces of a video.
        return self.score(scores)


@dataclass(frozen=True)
class MeanPolicy:
    """Mean ensemble probability of the crops: of each identity, and of all crops for the video."""

    name: str = "mean"

    def score(self, scores: CropScores) -> float:
        return float(np.mean(scores.ensemble))

    def video_score(self, scores: CropScores) -> float:
        return self.score(scores)


@dataclass(frozen=True)
class MaxIdentityPolicy:
    """A video is as fake as its most fake person; a person is the mean of their crops.

    The default, because one swapped face among several real ones makes the video a deepfake.
    """

    name: str = "max-identity"

    def score(self, scores: CropScores) -> float:
        return float(np.mean(scores.ensemble))

    def video_score(self, scores: CropScores) -> float:
        return max(identity_scores(self, scores).values())


@dataclass(frozen=True)
class TrimmedMaxIdentityPolicy:
    """As `max-identity`, but a person is the trimmed mean of their crops: the most and least fake
    `trim` share of a person's crops are left out, so a few odd frames (a blink, motion blur, a
    face half out of frame) move nobody's score."""

    name: str = "trimmed-max-identity"
    trim: float = 0.2

    def score(self, scores: CropScores) -> float:
        return float(stats.trim_mean(scores.ensemble, self.trim))

    def video_score(self, scores: CropScores) -> float:
        return max(identity_scores(self, scores).values())


POLICIES: dict[str, Callable[[], AggregationPolicy]] = {
    "confident": ConfidentPolicy,
    "mean": MeanPolicy,
    "max-identity": MaxIdentityPolicy,
    "trimmed-max-identity": TrimmedMaxIdentityPolicy,
}


def get_policy(name: str) -> AggregationPolicy:
    """The policy called `name`, with its default parameters."""
    try:
        return POLICIES[name]()
    except KeyError:
        raise ConfigError(
            f"unknown aggregation policy {name!r}; choose one of {', '.join(POLICIES)}"
        ) from None
