"""Score several models on the same clips, faces and frames, and compare them under the protocol.

The detector runs once per clip with every model loaded, so all models see exactly the same
faces; each model's video score is then its own crop probabilities put through the aggregation
policy. The figures are honest only on clips the weights were not trained on: a model fitted on
the clips (fakewatch's own members on the research data) must be compared by its cross-validated
figures instead (the model card).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.aggregation import CropScores, get_policy
from models.datasets import REAL, LabeledVideo
from models.detector import Detector
from models.errors import FakewatchError
from models.protocol.metrics import ProtocolMetrics, VideoScore, auc_of, protocol_metrics
from models.protocol.tables import COLUMNS, metrics_row
from models.schema import DetectionResult
from models.ssim_pairs import PairInputs, grey_view

CPU_COST_CROPS = 16  # crops per timed batch when measuring each model's cost


@dataclass(frozen=True)
class ClipScores:
    """One labelled clip and what every model thought of each of its face crops.

    `scores` is None when no face was found (such a clip has no score, for any model).
    `temperatures` are the registry's at scoring time: each P(fake) is sigmoid(logit / T), so the
    raw logit is logit(P) x T (what a new calibration must start from).
    """

    video: LabeledVideo
    scores: CropScores | None
    temperatures: Mapping[str, float]


def crop_scores(result: DetectionResult) -> CropScores | None:
    """Every scored face of a detection result, with its identity and per-model P(fake)."""
    faces = [face for frame in result.frames for face in frame.faces]
    if not faces:
        return None
    models = list(faces[0].model_probabilities)
    return CropScores(
        identities=np.array([face.identity for face in faces]),
        per_model={m: np.array([face.model_probabilities[m] for face in faces]) for m in models},
    )


def score_clips(detector: Detector, videos: Iterable[LabeledVideo],
                on_error: Callable[[LabeledVideo, str], None]) -> list[ClipScores]:
    """Run the detector once per clip; unreadable clips are reported through `on_error`."""
    temperatures = {m.entry.id: m.entry.temperature for m in detector.ensemble.members}
    clips = []
    for video in videos:
        try:
            result = detector.detect(video.path)
        except FakewatchError as error:
            on_error(video, str(error))
            continue
        clips.append(ClipScores(video, crop_scores(result), temperatures))
    return clips


def video_scores(clips: Sequence[ClipScores], model_ids: Sequence[str], policy: str,
                 threshold: float | None = None) -> list[VideoScore]:
    """Each clip with a face as the protocol scores it, from the mean of `model_ids`' crop scores."""
    rule = get_policy(policy)
    scored = []
    for clip in clips:
        if clip.scores is None:
            continue
        subset = CropScores(clip.scores.identities, {m: clip.scores.per_model[m] for m in model_ids})
        scored.append(VideoScore.of(clip.video, rule.video_score(subset), threshold))
    return scored


@dataclass(frozen=True)
class ModelComparison:
    """One model (or ensemble) under the protocol, beside its cost."""

    name: str
    overall: ProtocolMetrics
    family_auc: dict[str, float | None]
    ms_per_crop: float | None


def compare(clips: Sequence[ClipScores], candidates: dict[str, Sequence[str]], policy: str,
            threshold: float, costs: dict[str, float]) -> list[ModelComparison]:
    """Protocol figures of each candidate (name -> model ids averaged), on the same clips.

    Per family, the AUC is that family's fakes against every real clip.
    """
    rows = []
    for name, model_ids in candidates.items():
        scores = video_scores(clips, model_ids, policy)
        reals = [s for s in scores if s.label == REAL]
        families = sorted({s.family for s in scores if s.label != REAL})
        family_auc = {family: auc_of(reals + [s for s in scores if s.family == family])
                      for family in families}
        cost = [costs[m] for m in model_ids if m in costs]
        rows.append(ModelComparison(
            name=name, overall=protocol_metrics(scores, threshold), family_auc=family_auc,
            ms_per_crop=sum(cost) if len(cost) == len(model_ids) else None,
        ))
    return rows


def cpu_cost(detector: Detector, repeats: int = 3) -> dict[str, float]:
    """Milliseconds per crop of each loaded model on this machine (best of `repeats` batches of
    `CPU_COST_CROPS` random crops at the model's input size); for a model that also reads SSIM
    maps, making them is part of the cost."""
    costs = {}
    rng = np.random.default_rng(0)
    for member in detector.ensemble.members:
        size = member.entry.preprocessing.size
        crops = rng.integers(0, 256, (CPU_COST_CROPS, size, size, 3), dtype=np.uint8)
        batch = torch.rand(CPU_COST_CROPS, 3, size, size, device=detector.device)
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            with torch.inference_mode():
                if member.needs_pairs:
                    pairs = PairInputs.of_track([grey_view(crop) for crop in crops])
                    member.model(batch, *(torch.from_numpy(part).to(detector.device)
                                          for part in (pairs.maps, pairs.stats)))
                else:
                    member.model(batch)
            best = min(best, time.perf_counter() - started)
        costs[member.entry.id] = 1000 * best / CPU_COST_CROPS
    return costs


def save_clip_scores(clips: Sequence[ClipScores], path: Path) -> None:
    """JSON Lines, one clip per line, so the comparison can be redone without re-running models."""
    with path.open("w") as stream:
        for clip in clips:
            v = clip.video
            row = {"file": str(v.path), "label": v.label, "group": v.group, "subset": v.subset,
                   "family": v.family, "temperatures": dict(clip.temperatures)}
            if clip.scores is not None:
                row["identities"] = clip.scores.identities.tolist()
                row["per_model"] = {m: p.tolist() for m, p in clip.scores.per_model.items()}
            stream.write(json.dumps(row) + "\n")


def load_clip_scores(path: Path) -> list[ClipScores]:
    """What `save_clip_scores` wrote."""
    clips = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        video = LabeledVideo(Path(row["file"]), row["label"], row["group"], row["subset"],
                             family=row["family"])
        scores = None
        if "identities" in row:
            scores = CropScores(np.array(row["identities"]),
                                {m: np.array(p) for m, p in row["per_model"].items()})
        clips.append(ClipScores(video, scores, row["temperatures"]))
    return clips


def comparison_table(rows: Sequence[ModelComparison]) -> str:
    """Markdown: each candidate's protocol figures, AUC per family, and cost per crop."""
    families = sorted({f for row in rows for f in row.family_auc})
    header = ["model", *COLUMNS, *(f"AUC {f}" for f in families), "ms/crop (CPU)"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        base = metrics_row(row.name, row.overall)
        extra = [_cell(row.family_auc.get(f)) for f in families]
        extra.append("n/a" if row.ms_per_crop is None else f"{row.ms_per_crop:.1f}")
        lines.append(base + " " + " | ".join(extra) + " |")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
