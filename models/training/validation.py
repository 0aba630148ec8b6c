"""Validation figures at frame and video level, overall and by source, with `fakewatch eval`'s metrics.

A clip's video probability is the mean of its main person's crop probabilities (the `mean` policy;
REFERENCE §8: it beat the max of frames). A source whose validation clips are all one label has no
AUC of its own, so each slice also reports the AUC of its clips against every validation clip of
the other label ("vs all"): how well that source's fakes (or reals) stand apart from the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel
from sklearn.metrics import roc_auc_score

from models.datasets import LabeledVideo
from models.evaluation import Metrics, binary_metrics
from models.training.split import family

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class ClipScores:
    """P(fake) of each crop of one validation clip."""

    video: LabeledVideo
    probabilities: np.ndarray

    @property
    def video_probability(self) -> float:
        return float(np.mean(self.probabilities))


class SliceReport(BaseModel):
    clips: int
    groups: list[str]
    video: Metrics
    frame: Metrics
    video_auc_vs_all: float | None


class ValidationReport(BaseModel):
    """Figures for one scorer (a member or the ensemble) on the validation clips."""

    video: Metrics
    frame: Metrics
    by_family: dict[str, SliceReport]
    by_subset: dict[str, SliceReport]
    clips_without_face: list[str]


def _metrics(scores: list[ClipScores], threshold: float) -> tuple[Metrics, Metrics]:
    video = binary_metrics(
        [s.video.label for s in scores], [s.video_probability for s in scores], threshold
    )
    frame = binary_metrics(
        [s.video.label for s in scores for _ in s.probabilities],
        [float(p) for s in scores for p in s.probabilities],
        threshold,
    )
    return video, frame


def _auc_vs_all(part: list[ClipScores], everything: list[ClipScores]) -> float | None:
    labels = {s.video.label for s in part}
    if len(labels) != 1:
        return None
    (label,) = labels
    others = [s for s in everything if s.video.label != label]
    if not others:
        return None
    pool = part + others
    return float(
        roc_auc_score([s.video.label for s in pool], [s.video_probability for s in pool])
    )


def _slices(
    scored: list[ClipScores], key: Callable[[LabeledVideo], str], threshold: float
) -> dict[str, SliceReport]:
    result = {}
    for name in sorted({key(s.video) for s in scored}):
        part = [s for s in scored if key(s.video) == name]
        video, frame = _metrics(part, threshold)
        result[name] = SliceReport(
            clips=len(part),
            groups=sorted({s.video.group for s in part}),
            video=video,
            frame=frame,
            video_auc_vs_all=video.auc if video.auc is not None else _auc_vs_all(part, scored),
        )
    return result


def validation_report(scores: list[ClipScores], threshold: float = DEFAULT_THRESHOLD) -> ValidationReport:
    """Metrics over clips with at least one crop; clips without a face are listed, not scored."""
    scored = [s for s in scores if len(s.probabilities)]
    video, frame = _metrics(scored, threshold)
    return ValidationReport(
        video=video,
        frame=frame,
        by_family=_slices(scored, lambda v: family(v.group), threshold),
        by_subset=_slices(scored, lambda v: v.subset or "-", threshold),
        clips_without_face=[str(s.video.path) for s in scores if not len(s.probabilities)],
    )
