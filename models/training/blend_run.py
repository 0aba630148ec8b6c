"""Train `meso-sbi` (`fakewatch train --ensemble meso-sbi`): the authors' MesoInception-4 fine-tuned
end to end on real faces against their self-blended images (`models.training.blend_tune`).

1. Crops of every clip at the detector's frame count with the detector's face pipeline (cached,
   shared with `meso-ssim`: same crop spec and frames).
2. Views rendered once from the real clips' tracked faces: each face as itself and self-blended,
   the blend masks shaped from MTCNN's five points or (`masks="dense"`) dlib's 68.
3. The leave-sources-out protocol: per fold, one fit on the other folds' real clips, scored on
   every clip of the fold (its genuine fakes included) at each snapshot. The step count is fixed
   in advance (`--steps`), so the figures it is reported at are selection-free; the snapshots go
   to the card's variants table. Temperatures, policy and thresholds are cross-fitted as for the
   other trained ensembles.
4. A final fit on every real clip, calibrated on all out-of-fold logits, exported and registered.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.checkpoints import load_classifier, sha256_file
from models.config import DEFAULT_FRAMES
from models.crops import CropSpec
from models.datasets import REAL, LabeledVideo
from models.device import resolve_device
from models.errors import ConfigError
from models.protocol.folds import DEFAULT_FOLDS, Fold, leave_sources_out
from models.protocol.metrics import ProtocolMetrics
from models.protocol.tables import report_tables, table
from models.registry import Registry
from models.schema import ThresholdPreset
from models.tracking import main_person
from models.training.augment import AugmentConfig
from models.training.blend_tune import (
    BlendTuneConfig,
    BlendViews,
    face_logits,
    render_views,
    tune_snapshots,
)
from models.training.card import (
    LIMITATIONS,
    MemberCard,
    ModelCard,
    TrainingCard,
    render_markdown,
    write_card,
)
from models.training.cropcache import ClipCrops, CropCache, CropExtractor, fill_cache
from models.training.crossval import ClipFaces, OutOfFold, fold_index, temperature_on
from models.training.dense_landmarks import TRAINING_DATA_NOTE, DenseLandmarker
from models.training.errors import TrainingDataError
from models.training.export import export_fp32
from models.training.members import TrainedEnsemble
from models.training.operating import ProtocolOutcome, evaluate_protocol, shipped_presets
from models.training.register import register_card
from models.training.run import data_card, labelled_videos, machine_card

MODEL_ID = "fakewatch-meso-sbi"
ENSEMBLE = TrainedEnsemble("meso-sbi", "fakewatch MesoInception-4 fine-tuned on self-blended images",
                           MODEL_ID, (MODEL_ID,))
INIT_MODEL = "mesonet-inception4-df"  # where the fine-tuning starts
# What shapes the self-blend masks, as the card describes it.
MASK_SHAPES = {
    "five-point": "a face hull extended from MTCNN's five points, randomly scaled",
    "dense": ("dlib's 68 points: the whole face with its forehead, the inner face or the lower "
              "face, drawn alike, elastically warped"),
}
BLEND_LIMITATIONS = [
    LIMITATIONS[0],
    ("Trained on real faces and their self-blended images only: what it learns is the blending "
     "seam and colour mismatch a pasted face leaves. Manipulations that regenerate the whole "
     "frame (still-photo animation, NeRF heads) or only the mouth (lip sync) leave no such seam."),
    LIMITATIONS[2],
]


@dataclass(frozen=True)
class BlendRunConfig:
    """What `fakewatch train --ensemble meso-sbi` was asked to do (see `RunConfig` for the shared
    fields); `frames` is sampled from every clip, real or fake."""

    data_dir: Path
    labels: Path | None
    out_dir: Path
    registry_path: Path | None
    frames: int = DEFAULT_FRAMES
    folds: int = DEFAULT_FOLDS
    fit: BlendTuneConfig = field(default_factory=BlendTuneConfig)
    masks: str = "five-point"  # a key of MASK_SHAPES
    device: str = "auto"
    workers: int = 1
    cache_root: Path | None = None
    command: str = ""

    def __post_init__(self) -> None:
        if self.masks not in MASK_SHAPES:
            raise ConfigError(f"unknown blend masks {self.masks!r}; known: {', '.join(MASK_SHAPES)}")


@dataclass(frozen=True)
class _Prepared:
    start: nn.Module
    spec: CropSpec
    crops: list[ClipCrops]  # each clip's tracked faces
    faces: list[ClipFaces]  # what the protocol's bookkeeping reads: video, identities, main
    views: BlendViews
    without_face: list[LabeledVideo]
    errors: dict[Path, str]
    extraction_seconds: float
    rendering_seconds: float


def start_model(registry: Registry, device: torch.device) -> tuple[nn.Module, CropSpec]:
    """The authors' MesoInception-4 on `device`, and the crop spec both it and the trained model
    read."""
    entry, init = registry.models[MODEL_ID], registry.models[INIT_MODEL]
    if (init.architecture, init.params, init.preprocessing) != (entry.architecture, entry.params, entry.preprocessing):
        raise ConfigError(f"{MODEL_ID} must share {INIT_MODEL}'s architecture, params and preprocessing")
    return load_classifier(init, registry, device=device), entry.preprocessing


def mask_points(crops: list[ClipCrops], faces: list[ClipFaces],
                landmarker: DenseLandmarker | None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each real clip's crops with the points its self-blend masks are shaped from: MTCNN's
    five, or the `landmarker`'s 68 when given."""
    real = {i: clip for i, clip in enumerate(crops) if faces[i].video.label == REAL}
    if landmarker is None:
        return {i: (clip.crops, clip.landmarks) for i, clip in real.items()}
    return {i: (clip.crops, landmarker.many(clip.crops, clip.landmarks)) for i, clip in real.items()}


def _prepare(config: BlendRunConfig, registry: Registry, device: torch.device,
             echo: Callable[[str], None]) -> _Prepared:
    videos = labelled_videos(config.data_dir, config.labels)
    landmarker = DenseLandmarker() if config.masks == "dense" else None  # before any slow step
    start, spec = start_model(registry, device)
    started = time.perf_counter()
    cache = CropCache(CropExtractor(spec, config.frames, str(device)), config.cache_root)
    errors = fill_cache(cache, [v.path for v in videos], config.workers)
    extraction_seconds = time.perf_counter() - started
    crops, faces, without_face = [], [], []
    for video in videos:
        if video.path in errors:
            echo(f"skipped {video.path}: {errors[video.path]}")
            continue
        tracked, identities = cache.get(video.path).tracked()
        if not len(tracked):
            without_face.append(video)
            continue
        crops.append(tracked)
        faces.append(ClipFaces(video, np.empty(0), identities, main_person(identities)))
    if len({face.video.label for face in faces}) < 2:
        raise TrainingDataError("the protocol needs clips of both labels with a tracked face")
    started = time.perf_counter()
    views = render_views(mask_points(crops, faces, landmarker), config.fit.seed)
    prepared = _Prepared(start, spec, crops, faces, views, without_face, errors, extraction_seconds,
                         time.perf_counter() - started)
    echo(f"{len(crops)} clips with a tracked face ({len(without_face)} without, {len(errors)} "
         f"skipped); {len(views.clip)} training views ({extraction_seconds / 60:.1f} min extracting, "
         f"{prepared.rendering_seconds / 60:.1f} min rendering)")
    return prepared


def _variant_name(steps: int) -> str:
    return "the authors' model, not fine-tuned" if steps == 0 else f"{steps} steps in every fold"


@dataclass(frozen=True)
class _Protocol:
    registry: Registry
    device: torch.device
    prepared: _Prepared
    folds: list[Fold]
    oof: OutOfFold  # at the configured step count
    outcome: ProtocolOutcome
    variants: dict[str, ProtocolMetrics]


def _protocol(config: BlendRunConfig, echo: Callable[[str], None]) -> _Protocol:
    device = resolve_device(config.device)
    registry = Registry.load(config.registry_path)
    prepared = _prepare(config, registry, device, echo)
    folds = leave_sources_out([face.video for face in prepared.faces], config.folds)
    fold_of = fold_index([face.video for face in prepared.faces], folds)
    counts = config.fit.scored_counts()
    logits = {steps: [np.zeros(0, np.float32)] * len(prepared.faces) for steps in counts}
    for fold in folds:
        held_out = fold_of == fold.index
        snapshots = tune_snapshots(prepared.start, prepared.spec, prepared.views, ~held_out, config.fit)
        for steps, model in snapshots.items():
            for i in np.flatnonzero(held_out):
                logits[steps][i] = face_logits(model, prepared.crops[i].crops, prepared.spec)
        echo(f"fold {fold.index} ({', '.join(fold.sources)}): fitted and scored at {counts} steps")
    oofs = {steps: OutOfFold({MODEL_ID: per_clip}, fold_of) for steps, per_clip in logits.items()}
    outcome = evaluate_protocol(oofs[config.fit.steps], prepared.faces, folds)
    variants = {_variant_name(steps): evaluate_protocol(oof, prepared.faces, folds, [outcome.policy]).report.overall
                for steps, oof in oofs.items() if steps != config.fit.steps}
    overall = outcome.report.overall
    echo(f"protocol ({outcome.policy}, {config.fit.steps} steps): video AUC {overall.auc:.3f} "
         f"[{overall.auc_low:.3f}, {overall.auc_high:.3f}]; real flagged {overall.fpr_at_threshold:.2f}, "
         f"fakes caught {overall.tpr_at_threshold:.2f}, log loss {overall.log_loss:.3f} "
         f"(base rate {overall.base_rate_log_loss:.3f}); "
         + ", ".join(f"{name}: {m.auc:.3f}" for name, m in variants.items()))
    return _Protocol(registry, device, prepared, folds, oofs[config.fit.steps], outcome, variants)


def run_blend_protocol_only(config: BlendRunConfig, echo: Callable[[str], None] = print) -> str:
    """The protocol's tables as Markdown, without exporting anything."""
    run = _protocol(config, echo)
    return "\n\n".join([
        f"policy: {run.outcome.policy}", report_tables(run.outcome.report),
        table("preset", run.outcome.presets), table("policy", run.outcome.policies),
        table("variant", {f"{config.fit.steps} steps (reported)": run.outcome.report.overall, **run.variants}),
    ])


def _card(config: BlendRunConfig, run: _Protocol, member: MemberCard, presets: list[ThresholdPreset],
          started: float) -> ModelCard:
    prepared, outcome = run.prepared, run.outcome
    return ModelCard(
        name=ENSEMBLE.title,
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        members=[member], policy=outcome.policy, presets=presets,
        protocol=outcome.report, policies=outcome.policies, member_protocol=outcome.members,
        preset_protocol=outcome.presets, crossfit_temperatures=outcome.temperatures,
        data=data_card(config.data_dir, config.labels, [f.video for f in prepared.faces],
                       sum(len(c.crops) for c in prepared.crops), len(prepared.views.clip), run.folds,
                       prepared.without_face, prepared.errors),
        training=TrainingCard(
            command=config.command, seed=config.fit.seed, frames_per_fake_clip=config.frames,
            frames_per_real_clip=config.frames, folds=config.folds,
            views={"real face": 1, "self-blended": 1, "genuine fake": 0}, steps=config.fit.steps,
            batch_size=config.fit.batch_size, sbi_fraction=1.0,
            augmentations=AugmentConfig().describe(),
            fit_mix="half of every batch real faces, half their self-blended images, every real clip "
                    "alike; genuine fakes are never trained on (they are only scored by the protocol); "
                    f"blend masks: {MASK_SHAPES[config.masks]}",
        ),
        machine=machine_card(run.device, prepared.extraction_seconds, prepared.rendering_seconds,
                             time.perf_counter() - started),
        limitations=BLEND_LIMITATIONS + ([TRAINING_DATA_NOTE] if config.masks == "dense" else []),
        variants=run.variants,
    )


def run_blend_training(config: BlendRunConfig, echo: Callable[[str], None] = print) -> ModelCard:
    """Cross-validate, then train, calibrate, export and (with `registry_path`) register."""
    started = time.perf_counter()
    if config.registry_path and config.out_dir.resolve() != config.registry_path.parent.resolve():
        raise ConfigError("weights must be written next to the registry that records them")
    run = _protocol(config, echo)
    prepared = run.prepared
    fit_started = time.perf_counter()
    everything = np.ones(len(prepared.faces), bool)
    model = tune_snapshots(prepared.start, prepared.spec, prepared.views, everything, config.fit)[config.fit.steps]
    temperature = temperature_on(run.oof, prepared.faces, MODEL_ID, np.arange(len(prepared.faces)))
    path = export_fp32(model, run.registry, MODEL_ID, config.out_dir, temperature, config.fit.seed,
                       ENSEMBLE.card_stem, f"Apache-2.0 ({INIT_MODEL}); trained on research-only data")
    entry = run.registry.models[MODEL_ID]
    member = MemberCard(
        model_id=MODEL_ID, architecture=entry.architecture, params=dict(entry.params),
        description=entry.description,
        init_weights=f"{INIT_MODEL} (the MesoNet authors' Deepfake weights, Apache-2.0)",
        trained="every layer (convolutions, batch norms, dense layers); objective: binary "
                "cross-entropy on the logit, real face 0, self-blended image 1",
        learning_rates={"all": config.fit.learning_rate}, file=path.name, sha256=sha256_file(path),
        size_bytes=path.stat().st_size, dtype="float32", fp16_check=None, temperature=temperature,
        training_seconds=time.perf_counter() - fit_started,
    )
    presets = shipped_presets(run.oof, prepared.faces, {MODEL_ID: temperature}, run.outcome.policy,
                              run.outcome.presets).listing()
    card = _card(config, run, member, presets, started)
    write_card(card, render_markdown(card), config.out_dir, ENSEMBLE.card_stem)
    if config.registry_path:
        register_card(config.registry_path, ENSEMBLE.name, card, (
            f"{card.data.real_clips} real research clips with self-blended images "
            f"of their faces (no genuine fake trained on); research-only, "
            f"non-commercial data terms; cross-validated leaving whole sources "
            f"out, see {ENSEMBLE.card_stem}.md"
        ))
        echo(f"registered {MODEL_ID} and presets in {config.registry_path}")
    echo(f"done in {(time.perf_counter() - started) / 60:.1f} min; card {ENSEMBLE.card_stem}.md")
    return card
