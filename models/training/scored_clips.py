"""Saved per-crop scores (`fakewatch eval --compare --scores`) read back as the protocol reads them.

The detector saves each model's P(fake) at the temperature the registry held when it scored. To
compare or calibrate afresh, that temperature is undone (the model's own logits), and each clip's
main person is named, since temperatures are fitted on the person a label is about.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.aggregation import CropScores
from models.comparison import ClipScores
from models.protocol.folds import DEFAULT_FOLDS, leave_sources_out
from models.tracking import main_person
from models.training.calibration import calibrated
from models.training.crossval import ClipFaces, OutOfFold, crossfit_temperatures, fold_index

# Scores hold float64 P(fake): near 0 it keeps the logit down to about -708, but it rounds to 1
# above a logit of about 37, where the largest P below 1 stands in. A symmetric clip would tie
# every confidently real crop of an uncalibrated model (a quarter of some MesoNets' crops).
SMALLEST_P = float(np.finfo(np.float64).tiny)
LARGEST_P = float(np.nextafter(1.0, 0.0))


def raw_logits(clip: ClipScores, model_id: str) -> np.ndarray:
    """The model's own logits: the scored P(fake) undone, and the temperature it was scored at."""
    assert clip.scores is not None
    p = np.clip(clip.scores.per_model[model_id], SMALLEST_P, LARGEST_P)
    return (np.log(p) - np.log1p(-p)) * clip.temperatures[model_id]


def clip_faces(clips: Sequence[ClipScores]) -> list[ClipFaces]:
    """The protocol's per-clip faces of scored clips; the main person is the most-seen identity."""
    faces = []
    for clip in clips:
        assert clip.scores is not None
        identities = clip.scores.identities
        faces.append(ClipFaces(clip.video, np.empty(0), identities, main_person(identities)))
    return faces


def crossfit_calibrated(clips: Sequence[ClipScores], folds: int = DEFAULT_FOLDS) -> list[ClipScores]:
    """The scored clips with every model's P(fake) at a temperature fitted on the other
    leave-sources-out folds, so that no figure computed from them is calibrated on its own clip.

    Temperatures fitted on the very clips a table reports (as the registry's are, for checkpoints
    calibrated on the research data) make its log loss and its error rates at a threshold
    in-sample; cross-fitting keeps them honest. Clips without a face are left out.

    Raises:
        ConfigError: the clips hold too few sources for `folds` folds with both labels each.
        TrainingDataError: a fold's other folds lack one label (no temperature can be fitted).
    """
    scored = [clip for clip in clips if clip.scores is not None]
    videos = [clip.video for clip in scored]
    fold_of = fold_index(videos, leave_sources_out(videos, folds))
    models = list(scored[0].scores.per_model)  # type: ignore[union-attr]  (folds need clips)
    oof = OutOfFold({m: [raw_logits(clip, m) for clip in scored] for m in models}, fold_of)
    temperatures = crossfit_temperatures(oof, clip_faces(scored))
    recalibrated = []
    for i, clip in enumerate(scored):
        assert clip.scores is not None
        fitted = {m: float(temperatures[m][fold_of[i]]) for m in models}
        per_model = {m: calibrated(oof.logits[m][i], fitted[m]) for m in models}
        recalibrated.append(ClipScores(clip.video, CropScores(clip.scores.identities, per_model), fitted))
    return recalibrated
