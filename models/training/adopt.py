"""Adopt pretrained checkpoints as an ensemble, choosing and calibrating them under the protocol.

Public checkpoints (MesoNet's authors' weights) were never fitted on the research clips, so each
candidate's raw scores are already out of sample. What is fitted here is the choice among
candidates, the temperatures, the aggregation policy and the preset thresholds, and each is
cross-fitted on the leave-sources-out folds (`models.training.operating`) like a trained run:

- the choice is nested: each fold's clips are scored by the candidate with the best AUC on the
  other folds, every model calibrated on those folds first, so the reported figure pays for
  having chosen and candidates are compared at fitted temperatures, not at whatever temperature
  the registry held when they were scored;
- temperatures and thresholds applied to a fold are fitted on the other folds.

Only then is the overall winner calibrated and thresholded on every clip, for shipping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.comparison import ClipScores
from models.config import DEFAULT_POLICY
from models.datasets import REAL
from models.protocol.folds import DEFAULT_FOLDS, Fold, leave_sources_out
from models.protocol.metrics import ProtocolMetrics, VideoScore, auc_of, protocol_metrics
from models.registry import Registry, ThresholdPresets
from models.training.adoption_card import AdoptedMember, AdoptionCard
from models.training.crossval import (
    ClipFaces,
    OutOfFold,
    fold_index,
    temperature_on,
    video_probability,
)
from models.training.errors import TrainingDataError
from models.training.operating import ProtocolOutcome, evaluate_protocol, shipped_presets
from models.training.register import (
    update_ensemble_models,
    update_ensemble_presets,
    update_model_entry,
)
from models.training.scored_clips import clip_faces, raw_logits


@dataclass(frozen=True)
class Adoption:
    """What `adopt` decided and measured.

    Attributes:
        chosen: the candidate with the best AUC on every clip (what ships).
        models: its model ids.
        nested: the selection-aware figures: each fold scored by the candidate chosen without it.
        chosen_per_fold: fold index -> candidate chosen on the other folds.
        candidates: every candidate's AUC on every clip (the service's default policy, each model
            calibrated on every clip).
        outcome: the protocol for the chosen candidate (cross-fitted calibration and presets).
        temperatures: per model, fitted on every clip (shipped).
        presets: thresholds fitted on every clip, with their cross-fitted rates.
        folds: the folds, for the card.
    """

    chosen: str
    models: tuple[str, ...]
    nested: ProtocolMetrics
    chosen_per_fold: dict[int, str]
    candidates: dict[str, float]
    outcome: ProtocolOutcome
    temperatures: dict[str, float]
    presets: ThresholdPresets
    folds: list[Fold]


def _auc(scores: Sequence[VideoScore]) -> float:
    auc = auc_of(scores)
    if auc is None:
        raise TrainingDataError("a candidate was ranked on clips of one label only")
    return auc


def _candidate_scores(clips: Sequence[ClipScores], faces: list[ClipFaces], oof: OutOfFold,
                      models: Sequence[str], temperatures: dict[str, float]) -> list[VideoScore]:
    """Every clip scored by `models` averaged, each calibrated with its temperature first.

    Scoring at a fitted temperature, not the one the scores were saved at, keeps candidates
    comparable: the default policy reads P(fake) against fixed cut-offs, so an uncalibrated
    model would be judged by a different rule than a calibrated one.
    """
    return [
        VideoScore.of(clip.video, video_probability(
            {m: oof.logits[m][i] for m in models}, temperatures, faces[i].identities, DEFAULT_POLICY))
        for i, clip in enumerate(clips)
    ]


def _temperatures_on(oof: OutOfFold, faces: list[ClipFaces], clips: np.ndarray) -> dict[str, float]:
    """Every model's temperature fitted on `clips` (indices)."""
    return {m: temperature_on(oof, faces, m, clips) for m in oof.logits}


def _nested(clips: Sequence[ClipScores], candidates: dict[str, Sequence[str]], faces: list[ClipFaces],
            oof: OutOfFold) -> tuple[ProtocolMetrics, dict[int, str]]:
    """Each fold scored by the candidate with the best AUC on the other folds, every model
    calibrated on those other folds too."""
    held_out: list[VideoScore] = []
    chosen: dict[int, str] = {}
    for k in (int(k) for k in np.unique(oof.fold_of)):
        outside, inside = np.flatnonzero(oof.fold_of != k), np.flatnonzero(oof.fold_of == k)
        temperatures = _temperatures_on(oof, faces, outside)
        scored = {name: _candidate_scores(clips, faces, oof, models, temperatures)
                  for name, models in candidates.items()}
        best = max(scored, key=lambda name: _auc([scored[name][i] for i in outside]))
        chosen[k] = best
        held_out += [scored[best][i] for i in inside]
    return protocol_metrics(held_out, 0.5), chosen


def adopt(clips: Sequence[ClipScores], candidates: dict[str, Sequence[str]],
          folds: int = DEFAULT_FOLDS) -> Adoption:
    """Choose, calibrate and threshold an ensemble among `candidates` (name -> model ids), all
    under the service's default aggregation policy (the presets hold for that policy only).

    Raises:
        TrainingDataError: no clip with a face, one label only, or a candidate model that was not
            scored on the clips.
    """
    usable = [clip for clip in clips if clip.scores is not None]
    if len({clip.video.label for clip in usable}) < 2:
        raise TrainingDataError("adoption needs scored clips of both labels")
    scored_models = set(usable[0].scores.per_model)  # type: ignore[union-attr]
    every_model = sorted({m for models in candidates.values() for m in models})
    missing = sorted(set(every_model) - scored_models)
    if missing:
        raise TrainingDataError(f"models {missing} were not scored on these clips")
    videos = [clip.video for clip in usable]
    fold_list = leave_sources_out(videos, folds)
    faces = clip_faces(usable)
    oof = OutOfFold({m: [raw_logits(c, m) for c in usable] for m in every_model},
                    fold_index(videos, fold_list))
    nested, chosen_per_fold = _nested(usable, candidates, faces, oof)
    temperatures = _temperatures_on(oof, faces, np.arange(len(usable)))
    everywhere = {name: _auc(_candidate_scores(usable, faces, oof, models, temperatures))
                  for name, models in candidates.items()}
    chosen = max(everywhere, key=everywhere.__getitem__)
    models = tuple(candidates[chosen])
    chosen_oof = OutOfFold({m: oof.logits[m] for m in models}, oof.fold_of)
    outcome = evaluate_protocol(chosen_oof, faces, fold_list, candidates=(DEFAULT_POLICY,))
    temperatures = {m: temperatures[m] for m in models}
    presets = shipped_presets(chosen_oof, faces, temperatures, outcome.policy, outcome.presets)
    return Adoption(chosen, models, nested, chosen_per_fold, everywhere, outcome, temperatures,
                    presets, fold_list)



def adoption_card(adoption: Adoption, candidates: dict[str, Sequence[str]], registry: Registry,
                  ensemble: str, command: str) -> AdoptionCard:
    """The card recording `adoption` for `ensemble`."""
    report = adoption.outcome.report
    videos = [video for fold in adoption.folds for video in fold.videos]
    return AdoptionCard(
        name=f"fakewatch ensemble '{ensemble}' (adopted pretrained checkpoints)",
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        command=command, ensemble=ensemble, chosen=adoption.chosen,
        members=[
            AdoptedMember(model_id=m, file=registry.models[m].file,
                          sha256=registry.models[m].sha256 or "unrecorded",
                          license=registry.models[m].license or "unknown",
                          training_data=registry.models[m].training_data or "unknown",
                          temperature=round(adoption.temperatures[m], 6))
            for m in adoption.models
        ],
        policy=adoption.outcome.policy, presets=adoption.presets.listing(),
        candidates={name: list(models) for name, models in candidates.items()},
        candidate_auc={name: round(auc, 4) for name, auc in adoption.candidates.items()},
        chosen_per_fold={str(k): v for k, v in adoption.chosen_per_fold.items()},
        nested=adoption.nested, protocol=report, preset_protocol=adoption.outcome.presets,
        crossfit_temperatures=adoption.outcome.temperatures,
        clips=len(videos), real_clips=sum(v.label == REAL for v in videos),
        groups=len({v.group for v in videos}),
        folds={str(fold.index): fold.sources for fold in adoption.folds},
    )


def register_adoption(registry_path: Path, ensemble: str, adoption: Adoption) -> None:
    """Point `ensemble` at the chosen models, with their temperatures and the presets."""
    for model_id in adoption.models:
        update_model_entry(registry_path, model_id,
                           {"temperature": round(adoption.temperatures[model_id], 6)})
    update_ensemble_models(registry_path, ensemble, adoption.models)
    update_ensemble_presets(registry_path, ensemble, adoption.presets.listing(),
                            adoption.presets.policy or DEFAULT_POLICY)
