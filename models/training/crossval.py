"""The leave-sources-out protocol on cached trunk maps: one fit per fold, scored on what it left out.

Every figure the card reports comes from a model that never saw the clip, its person or its
source. Calibration and thresholds are cross-fitted too: the temperature and the preset thresholds
applied to a fold's clips are fitted on the other folds' out-of-fold scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from models.aggregation import CropScores, get_policy
from models.datasets import REAL, LabeledVideo
from models.protocol.folds import Fold
from models.protocol.metrics import VideoScore
from models.tracking import main_person
from models.training.calibration import calibrated, fit_temperature
from models.training.cropcache import ClipCrops
from models.training.fit import fit_member
from models.training.members import MemberRecipe
from models.training.pool import TrainingClip, ViewPool
from models.training.top_fit import FitConfig, predict_top
from models.training.trunk import Trunk


@dataclass(frozen=True)
class ClipFaces:
    """Every tracked face of one clip as the detector keeps them, as trunk maps."""

    video: LabeledVideo
    maps: np.ndarray
    identities: np.ndarray
    main: np.ndarray  # bool: faces of the person the label is about

    @classmethod
    def of(cls, video: LabeledVideo, crops: ClipCrops, trunk: Trunk) -> ClipFaces:
        """For a clip with at least one tracked face (clips without one have no score)."""
        faces, identities = crops.tracked()
        return cls(video, trunk(list(faces.crops)), identities, main_person(identities))


@dataclass(frozen=True)
class OutOfFold:
    """Per member, each clip's face logits from the fold model that did not see the clip."""

    logits: dict[str, list[np.ndarray]]
    fold_of: np.ndarray  # (clips,) fold index of each clip


def fold_index(videos: Sequence[LabeledVideo], folds: Sequence[Fold]) -> np.ndarray:
    where = {video.path: fold.index for fold in folds for video in fold.videos}
    return np.array([where[video.path] for video in videos])


def out_of_fold(
    recipes: Sequence[MemberRecipe], pool: ViewPool, clips: list[TrainingClip],
    faces: list[ClipFaces], folds: Sequence[Fold], config: FitConfig,
    echo: Callable[[str], None] = print,
) -> OutOfFold:
    """Fit every member once per fold on the other folds' clips; score the fold's clips."""
    fold_of = fold_index([clip.video for clip in clips], folds)
    logits: dict[str, list[np.ndarray]] = {
        r.model_id: [np.zeros(0, np.float32)] * len(clips) for r in recipes
    }
    for fold in folds:
        held_out = fold_of == fold.index
        for recipe in recipes:
            model = fit_member(recipe, pool, clips, ~held_out, config)
            for i in np.flatnonzero(held_out):
                logits[recipe.model_id][i] = predict_top(model, recipe, faces[i].maps)
            echo(f"fold {fold.index} ({', '.join(fold.sources)}): {recipe.model_id} fitted")
    return OutOfFold(logits, fold_of)


def temperature_on(oof: OutOfFold, faces: list[ClipFaces], member: str, clips: np.ndarray) -> float:
    """A member's temperature fitted on the main-person logits of `clips` (indices)."""
    logits = np.concatenate([oof.logits[member][i][faces[i].main] for i in clips])
    labels = np.concatenate([np.full(int(faces[i].main.sum()), faces[i].video.label) for i in clips])
    return fit_temperature(logits, labels)


def crossfit_temperatures(oof: OutOfFold, faces: list[ClipFaces]) -> dict[str, np.ndarray]:
    """Per member, the temperature each fold's clips are calibrated with (fitted elsewhere)."""
    folds = np.unique(oof.fold_of)
    return {
        member: np.array([
            temperature_on(oof, faces, member, np.flatnonzero(oof.fold_of != k)) for k in folds
        ])
        for member in oof.logits
    }


def video_probability(
    logits: dict[str, np.ndarray], temperatures: dict[str, float], identities: np.ndarray,
    policy: str,
) -> float:
    """The clip's P(fake) as the detector computes it from its members' face logits."""
    per_model = {m: calibrated(z, temperatures[m]) for m, z in logits.items()}
    return float(get_policy(policy).video_score(CropScores(identities, per_model)))


def out_of_fold_videos(
    oof: OutOfFold, faces: list[ClipFaces], temperatures: dict[str, np.ndarray], policy: str,
) -> list[tuple[int, float]]:
    """(clip index, P(fake)) of every clip, calibrated with its fold's temperatures."""
    return [
        (i, video_probability(
            {m: oof.logits[m][i] for m in oof.logits},
            {m: float(t[oof.fold_of[i]]) for m, t in temperatures.items()}, clip.identities, policy,
        ))
        for i, clip in enumerate(faces)
    ]


def threshold_for_fpr(real_probabilities: np.ndarray, max_fpr: float) -> float:
    """The lowest threshold that labels at most `max_fpr` of these real videos fake."""
    ordered = np.sort(real_probabilities)[::-1]
    allowed = int(np.floor(max_fpr * len(ordered)))
    if allowed >= len(ordered):
        return 0.0
    return float(np.nextafter(ordered[allowed], np.inf))


def crossfit_thresholds(
    scored: list[tuple[int, float]], faces: list[ClipFaces], fold_of: np.ndarray, max_fpr: float,
) -> dict[int, float]:
    """For each clip, the threshold fitted on the other folds' real clips."""
    thresholds = {}
    for k in np.unique(fold_of):
        others = np.array([p for i, p in scored if fold_of[i] != k and faces[i].video.label == REAL])
        threshold = threshold_for_fpr(others, max_fpr)
        thresholds.update({i: threshold for i, _ in scored if fold_of[i] == k})
    return thresholds


def video_scores(
    scored: list[tuple[int, float]], faces: list[ClipFaces], thresholds: dict[int, float] | None = None,
) -> list[VideoScore]:
    return [VideoScore.of(faces[i].video, p, None if thresholds is None else thresholds[i])
            for i, p in scored]
