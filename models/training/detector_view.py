"""Score the validation clips the way the detector (and so `fakewatch eval`) does.

Training selects and calibrates on the main person's crops, the faces a clip's label is about.
The product scores every person it tracks and aggregates them with its default policy, and its
frame score is the most fake face in the frame. This module applies exactly that to the cached
crops with the weights as exported, so the card can state what `fakewatch eval` will report on
the same clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.aggregation import CropScores, get_policy
from models.config import DEFAULT_POLICY, DEFAULT_THRESHOLD
from models.crops import CropSpec
from models.datasets import LabeledVideo
from models.evaluation import EvaluationReport, ScoredVideo, evaluate
from models.training.calibration import calibrated
from models.training.cropcache import ClipCrops
from models.training.trainer import predict_logits


@dataclass(frozen=True)
class ScoringMember:
    """A member as the detector runs it: exported weights and calibration temperature."""

    model_id: str
    model: nn.Module
    temperature: float


def score_clip(
    video: LabeledVideo, crops: ClipCrops, members: Sequence[ScoringMember], spec: CropSpec,
    policy: str = DEFAULT_POLICY,
) -> ScoredVideo:
    """The clip's video probability under `policy` and its frames' most fake face."""
    faces, identities = crops.tracked()
    if not len(faces):
        return ScoredVideo(str(video.path), video.label, None, [], video.subset)
    cpu = torch.device("cpu")
    per_model = {
        m.model_id: calibrated(predict_logits(m.model, faces.crops, spec, cpu), m.temperature)
        for m in members
    }
    scores = CropScores(identities=identities, per_model=per_model)
    ensemble = scores.ensemble
    frames = [
        float(ensemble[faces.frame_positions == position].max())
        for position in np.unique(faces.frame_positions)
    ]
    return ScoredVideo(
        str(video.path), video.label, float(get_policy(policy).video_score(scores)), frames,
        video.subset,
    )


def detector_report(
    clips: Sequence[tuple[LabeledVideo, ClipCrops]], members: Sequence[ScoringMember],
    spec: CropSpec, policy: str = DEFAULT_POLICY, threshold: float = DEFAULT_THRESHOLD,
) -> EvaluationReport:
    """`fakewatch eval`'s report for these clips, from their cached crops."""
    return evaluate([score_clip(v, c, members, spec, policy) for v, c in clips], threshold)
