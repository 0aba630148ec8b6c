"""Video-level figures a moderation team can act on, with their uncertainty.

AUC with a 95% interval from a bootstrap over identity groups (clips of one person are not
independent draws), the share of fakes caught while flagging at most 5% or 10% of real videos,
both error rates at the threshold in use, the equal error rate, and the log loss beside the log loss
of always answering the base rate (a model must beat that to carry information).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel
from scipy import stats
from sklearn import metrics

from models.datasets import FAKE, REAL, LabeledVideo

BOOTSTRAP_ROUNDS = 1000
BOOTSTRAP_SEED = 0
PROBABILITY_CLIP = 1e-6  # keeps one confident miss from making the log loss infinite


@dataclass(frozen=True)
class VideoScore:
    """One held-out clip as the protocol scored it."""

    file: str
    label: int  # 1 = fake
    probability: float
    group: str
    source: str  # subset
    family: str  # manipulation family ("none" for real)
    threshold: float | None = None  # this clip's own threshold (cross-fitted), else the report's

    @classmethod
    def of(cls, video: LabeledVideo, probability: float, threshold: float | None = None) -> VideoScore:
        """A labelled clip's score; a clip without subset is its own group's source."""
        return cls(
            file=str(video.path), label=video.label, probability=probability,
            group=video.group or str(video.path), source=video.subset or video.group or str(video.path),
            family="none" if video.label == REAL else (video.family or "unknown"), threshold=threshold,
        )


class ProtocolMetrics(BaseModel):
    videos: int
    fakes: int
    reals: int
    auc: float | None
    auc_low: float | None  # 95% bootstrap interval over groups
    auc_high: float | None
    tpr_at_fpr_5: float | None  # share of fakes caught when at most 5% of reals are flagged
    tpr_at_fpr_10: float | None
    eer: float | None
    threshold: float  # the shipped threshold; clips fitted elsewhere may carry their own
    fpr_at_threshold: float | None  # share of real videos labelled fake
    tpr_at_threshold: float | None  # share of fake videos labelled fake
    log_loss: float
    base_rate_log_loss: float


def auc_of(scores: Sequence[VideoScore]) -> float | None:
    """Video AUC of `scores`, None when they hold one label only."""
    labels = np.array([s.label for s in scores], int)
    if len(np.unique(labels)) < 2:
        return None
    return rank_auc(labels, np.array([s.probability for s in scores]))


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, max_fpr: float) -> float:
    """The largest share of fakes caught by any threshold that flags at most `max_fpr` of reals."""
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    return float(tpr[fpr <= max_fpr + 1e-12].max())


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """Where the false positive rate meets the miss rate (mean of the two at the closest point)."""
    fpr, tpr, _ = metrics.roc_curve(labels, scores)
    miss = 1.0 - tpr
    closest = int(np.argmin(np.abs(fpr - miss)))
    return float((fpr[closest] + miss[closest]) / 2)


def base_rate_log_loss(labels: np.ndarray) -> float:
    """Log loss of answering the share of fakes for every clip."""
    share = float(np.mean(labels))
    if share in (0.0, 1.0):
        return 0.0
    return -(share * math.log(share) + (1 - share) * math.log(1 - share))


def rank_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC from the Mann-Whitney rank sum (ties counted half), as sklearn's `roc_auc_score`
    gives it, without its input checks: the bootstraps call it thousands of times."""
    ranks = stats.rankdata(scores)
    fakes = labels == FAKE
    n_fake, n_real = int(fakes.sum()), int((~fakes).sum())
    return float((ranks[fakes].sum() - n_fake * (n_fake + 1) / 2) / (n_fake * n_real))


def bootstrap_auc(
    labels: np.ndarray, scores: np.ndarray, groups: Sequence[str],
    rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED,
) -> tuple[float | None, float | None]:
    """2.5th and 97.5th percentiles of the AUC over resamples of whole groups (None when too few
    resamples hold both labels: one group per label says nothing about the spread)."""
    names = sorted(set(groups))
    members = {name: np.flatnonzero(np.asarray(groups) == name) for name in names}
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(rounds):
        picked = np.concatenate([members[names[i]] for i in rng.integers(len(names), size=len(names))])
        if len(np.unique(labels[picked])) == 2:
            aucs.append(rank_auc(labels[picked], scores[picked]))
    if len(aucs) < rounds // 2:
        return None, None
    low, high = np.percentile(aucs, [2.5, 97.5])
    return float(low), float(high)


def protocol_metrics(scores: Sequence[VideoScore], threshold: float) -> ProtocolMetrics:
    """Every figure over `scores`; the ranking figures are None where one label is missing."""
    labels = np.array([s.label for s in scores], int)
    probabilities = np.clip([s.probability for s in scores], PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    both = len(np.unique(labels)) == 2
    flagged = probabilities >= np.array([threshold if s.threshold is None else s.threshold for s in scores])
    reals, fakes = labels == REAL, labels == FAKE
    low, high = bootstrap_auc(labels, probabilities, [s.group for s in scores]) if both else (None, None)
    return ProtocolMetrics(
        videos=len(labels),
        fakes=int(fakes.sum()),
        reals=int(reals.sum()),
        auc=float(metrics.roc_auc_score(labels, probabilities)) if both else None,
        auc_low=low,
        auc_high=high,
        tpr_at_fpr_5=tpr_at_fpr(labels, probabilities, 0.05) if both else None,
        tpr_at_fpr_10=tpr_at_fpr(labels, probabilities, 0.10) if both else None,
        eer=equal_error_rate(labels, probabilities) if both else None,
        threshold=threshold,
        fpr_at_threshold=float(flagged[reals].mean()) if reals.any() else None,
        tpr_at_threshold=float(flagged[fakes].mean()) if fakes.any() else None,
        log_loss=float(metrics.log_loss(labels, probabilities, labels=[REAL, FAKE])),
        base_rate_log_loss=base_rate_log_loss(labels),
    )


class ProtocolReport(BaseModel):
    """The protocol's figures overall, per manipulation family (its fakes against every real
    clip) and per source (its clips; against the other label's clips elsewhere when it holds one
    label only)."""

    overall: ProtocolMetrics
    by_family: dict[str, ProtocolMetrics]
    by_source: dict[str, ProtocolMetrics]
    by_fold: dict[str, ProtocolMetrics]


def protocol_report(
    scores: Sequence[VideoScore], threshold: float, folds: dict[str, Sequence[str]] | None = None
) -> ProtocolReport:
    """`folds` maps a fold name to its clips' files, for the per-fold rows."""
    reals = [s for s in scores if s.label == REAL]
    fakes = [s for s in scores if s.label == FAKE]
    by_family = {
        family: protocol_metrics([s for s in fakes if s.family == family] + reals, threshold)
        for family in sorted({s.family for s in fakes})
    }
    by_source = {}
    for source in sorted({s.source for s in scores}):
        part = [s for s in scores if s.source == source]
        labels = {s.label for s in part}
        if len(labels) == 1:
            part = part + (fakes if labels == {REAL} else reals)
            part = list({s.file: s for s in part}.values())
        by_source[source] = protocol_metrics(part, threshold)
    by_fold = {
        name: protocol_metrics([s for s in scores if s.file in set(files)], threshold)
        for name, files in (folds or {}).items()
    }
    return ProtocolReport(
        overall=protocol_metrics(scores, threshold), by_family=by_family, by_source=by_source,
        by_fold=by_fold,
    )
