"""Detection metrics at video and frame level (scikit-learn), and the ROC curve plot.

Beside the classic metrics, every report carries the protocol's figures (`models.protocol`): AUC
with its interval, fakes caught at 5% and 10% of real videos flagged, both error rates at the
threshold, log loss against the base rate's, by manipulation family and by source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from sklearn import metrics

from models.protocol.metrics import ProtocolReport, VideoScore, protocol_report

LOG_LOSS_EPSILON = 1e-15  # the clip Kaggle's DFDC scorer applied to predictions


class Metrics(BaseModel):
    """Binary metrics with FAKE as the positive class."""

    count: int
    fakes: int
    reals: int
    auc: float | None  # None when only one class is present
    log_loss: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    threshold: float
    confusion_matrix: list[list[int]]  # [[true real, false fake], [missed fake, caught fake]]


@dataclass(frozen=True)
class ScoredVideo:
    """One evaluated video: its true label (1 = fake) and what the detector said."""

    file: str
    label: int
    probability: float | None  # None: no face found
    frame_probabilities: Sequence[float]
    subset: str = ""
    group: str = ""
    family: str = ""


class EvaluationReport(BaseModel):
    threshold: float
    preset: str | None = None
    protocol: ProtocolReport | None  # None when no video was scored
    video: Metrics | None
    frame: Metrics | None
    video_by_subset: dict[str, Metrics]
    no_face: list[str]
    errors: dict[str, str]


def binary_metrics(labels: Sequence[int], scores: Sequence[float], threshold: float) -> Metrics:
    """Metrics of P(fake) `scores` against 0/1 `labels`, labelling fake at `threshold`."""
    y_true = np.asarray(labels, dtype=int)
    y_score = np.clip(np.asarray(scores, dtype=float), LOG_LOSS_EPSILON, 1 - LOG_LOSS_EPSILON)
    y_pred = (y_score >= threshold).astype(int)
    both_classes = len(np.unique(y_true)) == 2
    return Metrics(
        count=len(y_true),
        fakes=int(y_true.sum()),
        reals=int((1 - y_true).sum()),
        auc=float(metrics.roc_auc_score(y_true, y_score)) if both_classes else None,
        log_loss=float(metrics.log_loss(y_true, y_score, labels=[0, 1])),
        accuracy=float(metrics.accuracy_score(y_true, y_pred)),
        precision=float(metrics.precision_score(y_true, y_pred, zero_division=0)),
        recall=float(metrics.recall_score(y_true, y_pred, zero_division=0)),
        f1=float(metrics.f1_score(y_true, y_pred, zero_division=0)),
        threshold=threshold,
        confusion_matrix=metrics.confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist(),
    )


def evaluate(
    videos: Sequence[ScoredVideo], threshold: float, errors: dict[str, str] | None = None,
    preset: str | None = None,
) -> EvaluationReport:
    """Video-level metrics over videos with a face; frame-level over every scored frame.

    Videos without a face are listed, not scored: a made-up probability would bias both.
    Each frame inherits its video's label.
    """
    scored = [v for v in videos if v.probability is not None]
    frame_labels = [v.label for v in scored for _ in v.frame_probabilities]
    frame_scores = [p for v in scored for p in v.frame_probabilities]
    protocol_scores = [
        VideoScore(v.file, v.label, v.probability, v.group or v.file, v.subset or "-",
                   v.family or ("none" if v.label == 0 else "unknown"))
        for v in scored if v.probability is not None
    ]
    return EvaluationReport(
        threshold=threshold,
        preset=preset,
        protocol=protocol_report(protocol_scores, threshold) if protocol_scores else None,
        video=binary_metrics([v.label for v in scored], [v.probability for v in scored], threshold)
        if scored
        else None,
        frame=binary_metrics(frame_labels, frame_scores, threshold) if frame_scores else None,
        video_by_subset={
            subset: binary_metrics(
                [v.label for v in scored if v.subset == subset],
                [v.probability for v in scored if v.subset == subset],
                threshold,
            )
            for subset in sorted({v.subset for v in scored if v.subset})
        },
        no_face=[v.file for v in videos if v.probability is None],
        errors=dict(errors or {}),
    )


def plot_roc(videos: Sequence[ScoredVideo], path: Path) -> None:
    """Write video- and frame-level ROC curves to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    scored = [v for v in videos if v.probability is not None]
    curves = {
        "video": ([v.label for v in scored], [v.probability for v in scored]),
        "frame": (
            [v.label for v in scored for _ in v.frame_probabilities],
            [p for v in scored for p in v.frame_probabilities],
        ),
    }
    figure, axes = plt.subplots(figsize=(5, 5))
    for name, (labels, scores) in curves.items():
        if len(set(labels)) < 2:
            continue
        fpr, tpr, _ = metrics.roc_curve(labels, scores)
        auc = metrics.roc_auc_score(labels, scores)
        axes.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f}, n={len(labels)})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axes.set(xlabel="false positive rate (real called fake)", ylabel="true positive rate (fakes caught)",
             title="fakewatch ROC", xlim=(0, 1), ylim=(0, 1))
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
