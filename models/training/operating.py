"""What the protocol decides from the out-of-fold scores: the aggregation policy and the presets.

Each choice is made on out-of-fold scores, and each rate reported for it is cross-fitted: a
fold's clips are judged at a threshold fitted on the other folds' real clips, so the rates say
what a threshold fitted on one set of sources does on sources it has not seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.config import POLICY_NAMES
from models.datasets import REAL
from models.protocol.folds import Fold
from models.protocol.metrics import (
    ProtocolMetrics,
    ProtocolReport,
    VideoScore,
    protocol_metrics,
    protocol_report,
)
from models.registry import ThresholdPresets
from models.schema import ThresholdPreset
from models.training.crossval import (
    ClipFaces,
    OutOfFold,
    crossfit_temperatures,
    crossfit_thresholds,
    out_of_fold_videos,
    threshold_for_fpr,
    video_scores,
)

# Share of real videos each preset may flag; `balanced` is the default: at most 1 in 10.
PRESET_MAX_FPR = {"strict": 0.05, "balanced": 0.10, "sensitive": 0.20}
DEFAULT_PRESET = "balanced"


@dataclass(frozen=True)
class ProtocolOutcome:
    """Everything the card reports from the protocol."""

    policy: str  # the aggregation chosen (best out-of-fold AUC)
    policies: dict[str, ProtocolMetrics]  # every candidate, at the default preset
    report: ProtocolReport  # the chosen policy at the default preset, by family, source and fold
    members: dict[str, ProtocolMetrics]  # each member alone, chosen policy
    presets: dict[str, ProtocolMetrics]  # every preset's cross-fitted rates, chosen policy
    temperatures: dict[str, list[float]]  # per member, per fold (fitted on the other folds)


def _judged(
    oof: OutOfFold, faces: list[ClipFaces], temperatures: dict[str, np.ndarray], policy: str,
    max_fpr: float,
) -> tuple[list[VideoScore], float]:
    """Out-of-fold video scores with their cross-fitted thresholds, and the threshold fitted on
    every fold (the one that would ship)."""
    scored = out_of_fold_videos(oof, faces, temperatures, policy)
    thresholds = crossfit_thresholds(scored, faces, oof.fold_of, max_fpr)
    reals = np.array([p for i, p in scored if faces[i].video.label == REAL])
    return video_scores(scored, faces, thresholds), threshold_for_fpr(reals, max_fpr)


def _overall(oof: OutOfFold, faces: list[ClipFaces], temperatures: dict[str, np.ndarray],
             policy: str, max_fpr: float) -> ProtocolMetrics:
    return protocol_metrics(*_judged(oof, faces, temperatures, policy, max_fpr))


def evaluate_protocol(oof: OutOfFold, faces: list[ClipFaces], folds: Sequence[Fold],
                      candidates: Sequence[str] = POLICY_NAMES) -> ProtocolOutcome:
    """Compare the `candidates` policies, then report the chosen one per family, source, fold,
    member and preset."""
    temperatures = crossfit_temperatures(oof, faces)
    default_fpr = PRESET_MAX_FPR[DEFAULT_PRESET]
    policies = {name: _overall(oof, faces, temperatures, name, default_fpr) for name in candidates}
    policy = max(policies, key=lambda name: (policies[name].auc or 0.0, -policies[name].log_loss))
    fold_files = {
        f"{fold.index}: {', '.join(fold.sources)}": [str(v.path) for v in fold.videos] for fold in folds
    }
    members = {
        member: _overall(OutOfFold({member: logits}, oof.fold_of), faces,
                         {member: temperatures[member]}, policy, default_fpr)
        for member, logits in oof.logits.items()
    }
    return ProtocolOutcome(
        policy=policy,
        policies=policies,
        report=protocol_report(*_judged(oof, faces, temperatures, policy, default_fpr), fold_files),
        members=members,
        presets={name: _overall(oof, faces, temperatures, policy, fpr)
                 for name, fpr in PRESET_MAX_FPR.items()},
        temperatures={m: [round(float(t), 6) for t in ts] for m, ts in temperatures.items()},
    )


def shipped_presets(
    oof: OutOfFold, faces: list[ClipFaces], temperatures: dict[str, float], policy: str,
    measured: dict[str, ProtocolMetrics],
) -> ThresholdPresets:
    """Thresholds fitted on every out-of-fold real video (calibrated as shipped), each with the
    rates its cross-fitted counterpart reached."""
    per_fold = {m: np.full(len(np.unique(oof.fold_of)), t) for m, t in temperatures.items()}
    scored = out_of_fold_videos(oof, faces, per_fold, policy)
    reals = np.array([p for i, p in scored if faces[i].video.label == REAL])
    points = {
        name: ThresholdPreset(
            name=name, threshold=round(threshold_for_fpr(reals, fpr), 6),
            real_flagged=round(measured[name].fpr_at_threshold or 0.0, 4),
            fakes_caught=round(measured[name].tpr_at_threshold or 0.0, 4),
        )
        for name, fpr in PRESET_MAX_FPR.items()
    }
    return ThresholdPresets(points, DEFAULT_PRESET, policy)
