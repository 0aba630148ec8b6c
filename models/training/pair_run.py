"""Train seed 004's two-input MesoInception-4 (`fakewatch train --ensemble meso-ssim`) end to end.

1. Crops of every clip at the detector's frame count with the detector's face pipeline (cached),
   so that consecutive sampled frames are as far apart as they are when a video is scored.
2. Per clip, the tracked faces' SSIM inputs (`models.ssim_pairs`) and the frozen MesoInception-4
   convolution features of each crop and its mirror image, computed once.
3. The leave-sources-out protocol, as for the Lite members: one fit per fold, scored on the fold,
   temperatures, policy and thresholds chosen on out-of-fold scores, cross-fitted. The same run
   with the SSIM inputs held constant is scored alongside, so the card says what SSIM adds.
4. A final fit on every clip, calibrated on all out-of-fold logits, exported and registered.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from models.checkpoints import load_classifier, sha256_file
from models.config import DEFAULT_FRAMES
from models.crops import CropSpec, crops_to_tensor
from models.datasets import LabeledVideo
from models.device import resolve_device
from models.errors import ConfigError
from models.protocol.folds import DEFAULT_FOLDS, Fold, leave_sources_out
from models.protocol.metrics import ProtocolMetrics, VideoScore, auc_of
from models.protocol.tables import report_tables, table
from models.registry import Registry
from models.ssim_pairs import NoPairError, PairInputs, grey_view
from models.tracking import main_person
from models.training.card import (
    LIMITATIONS,
    MemberCard,
    ModelCard,
    TrainingCard,
    render_markdown,
    write_card,
)
from models.training.cropcache import ClipCrops, CropCache, CropExtractor, fill_cache
from models.training.crossval import (
    ClipFaces,
    OutOfFold,
    fold_index,
    temperature_on,
    video_probability,
)
from models.training.errors import TrainingDataError
from models.training.export import export_fp32
from models.training.members import TrainedEnsemble
from models.training.operating import ProtocolOutcome, evaluate_protocol, shipped_presets
from models.training.pair_fit import (
    FacePool,
    PairClip,
    PairFitConfig,
    fit_pair_model,
    fit_snapshots,
    predict_pairs,
)
from models.training.register import register_card
from models.training.run import data_card, labelled_videos, machine_card
from models.zoo.meso_ssim import MesoInceptionSSIM

MODEL_ID = "fakewatch-meso-ssim"
ENSEMBLE = TrainedEnsemble("meso-ssim", "fakewatch MesoInception-4 + SSIM (seed 004)",
                           MODEL_ID, (MODEL_ID,))
INIT_MODEL = "mesonet-inception4-df"  # whose convolutions the model keeps
FEATURE_BATCH = 64
WITHOUT_SSIM = "SSIM inputs held constant (face branch only)"
SELECTION_POLICY = "mean"
MIN_NESTED_FOLDS = 3
PAIR_LIMITATIONS = [
    LIMITATIONS[0],
    LIMITATIONS[1],
    ("Temporal evidence is one neighbouring sampled frame per face (at the default 32 frames, "
     "about a thirty-second of the clip apart) and the track's SSIM statistics; a person seen in "
     "one sampled frame cannot be scored by this model (images, very short clips)."),
    ("Only the head and the SSIM branches are trained; MesoInception-4's convolutions keep the "
     "authors' Deepfake weights, so the face branch sees what those filters see."),
]


@dataclass(frozen=True)
class PairRunConfig:
    """What `fakewatch train --ensemble meso-ssim` was asked to do (see `RunConfig` for the
    shared fields); `frames` is sampled from every clip, real or fake."""

    data_dir: Path
    labels: Path | None
    out_dir: Path
    registry_path: Path | None
    frames: int = DEFAULT_FRAMES
    folds: int = DEFAULT_FOLDS
    fit: PairFitConfig = field(default_factory=PairFitConfig)
    device: str = "auto"
    workers: int = 1
    cache_root: Path | None = None
    command: str = ""


@dataclass(frozen=True)
class _Prepared:
    clips: list[PairClip]
    pool: FacePool
    faces: list[ClipFaces]  # what the protocol's bookkeeping reads: video, identities, main
    base: MesoInceptionSSIM
    spec: CropSpec
    without_face: list[LabeledVideo]
    errors: dict[Path, str]
    extraction_seconds: float
    feature_seconds: float


def base_model(registry: Registry, device: torch.device) -> tuple[MesoInceptionSSIM, CropSpec]:
    """The registered architecture with the authors' MesoInception-4 weights in its face branch."""
    entry = registry.models[MODEL_ID]
    init = registry.models[INIT_MODEL]
    if init.preprocessing != entry.preprocessing:
        raise ConfigError(f"{INIT_MODEL} and {MODEL_ID} must share one preprocessing spec")
    model = MesoInceptionSSIM(**entry.params)
    model.face.load_state_dict(load_classifier(init, registry, device=torch.device("cpu")).state_dict())
    return model.to(device).eval(), entry.preprocessing


def _features(model: MesoInceptionSSIM, crops: np.ndarray, spec: CropSpec, device: torch.device) -> np.ndarray:
    """(2, N, F) frozen convolution features of `crops` and of their mirror images."""
    views = []
    for images in (crops, crops[:, :, ::-1]):
        parts = []
        with torch.inference_mode():
            for start in range(0, len(images), FEATURE_BATCH):
                batch = crops_to_tensor(list(images[start : start + FEATURE_BATCH]), spec).to(device)
                parts.append(model.face_features(batch).float().cpu())
        views.append(torch.cat(parts).numpy())
    return np.stack(views)


def _clip(video: LabeledVideo, crops: ClipCrops, model: MesoInceptionSSIM, spec: CropSpec,
          device: torch.device) -> PairClip | None:
    """The clip's tracked faces as the fit uses them; None without a tracked face."""
    faces, identities = crops.tracked()
    if not len(faces):
        return None
    pairs = PairInputs.of_faces([grey_view(crop) for crop in faces.crops], identities)
    return PairClip(video, _features(model, faces.crops, spec, device), pairs, identities,
                    main_person(identities))


def _prepare(config: PairRunConfig, registry: Registry, device: torch.device,
             echo: Callable[[str], None]) -> _Prepared:
    videos = labelled_videos(config.data_dir, config.labels)
    base, spec = base_model(registry, device)
    started = time.perf_counter()
    cache = CropCache(CropExtractor(spec, config.frames, str(device)), config.cache_root)
    errors = fill_cache(cache, [v.path for v in videos], config.workers)
    extraction_seconds = time.perf_counter() - started
    started = time.perf_counter()
    clips, without_face = [], []
    for video in videos:
        if video.path in errors:
            echo(f"skipped {video.path}: {errors[video.path]}")
            continue
        try:
            clip = _clip(video, cache.get(video.path), base, spec, device)
        except NoPairError as error:  # a track of one face: only with very few sampled frames
            errors[video.path] = str(error)
            continue
        if clip is None:
            without_face.append(video)
        else:
            clips.append(clip)
    faces = [ClipFaces(c.video, c.features[0], c.identities, c.main) for c in clips]
    prepared = _Prepared(clips, FacePool.of(clips), faces, base, spec, without_face, errors,
                         extraction_seconds, time.perf_counter() - started)
    echo(f"{len(clips)} clips with a tracked face ({len(without_face)} without, {len(errors)} "
         f"skipped); {len(prepared.pool.clip)} faces ({extraction_seconds / 60:.1f} min extracting, "
         f"{prepared.feature_seconds / 60:.1f} min features and SSIM maps)")
    return prepared


def _snapshot_logits(prepared: _Prepared, fit: PairFitConfig, in_training: np.ndarray,
                     scored: np.ndarray) -> dict[int, dict[int, np.ndarray]]:
    """{steps: {clip: face logits}} for the `scored` clips, from one fit on `in_training`."""
    models = fit_snapshots(prepared.base, prepared.pool, prepared.clips, in_training, fit, fit.snapshots)
    return {steps: {int(i): predict_pairs(model, prepared.pool, int(i), fit.use_pairs)
                    for i in np.flatnonzero(scored)}
            for steps, model in models.items()}


def _selection_auc(prepared: _Prepared, logits: dict[int, np.ndarray]) -> float:
    """Video AUC of these clips' logits under the `mean` policy, uncalibrated: how step counts
    are compared (calibration is monotone, and the policy is chosen later, on the outer scores)."""
    scores = [VideoScore.of(prepared.clips[i].video,
                            video_probability({MODEL_ID: z}, {MODEL_ID: 1.0}, prepared.clips[i].identities,
                                              SELECTION_POLICY))
              for i, z in logits.items()]
    auc = auc_of(scores)
    if auc is None:
        raise TrainingDataError("the folds inside an outer fold hold one label only: no step count can be chosen")
    return auc


@dataclass(frozen=True)
class _Nested:
    """Out-of-fold logits with the step count chosen inside each outer fold, and the plain
    out-of-fold logits of every step count (what the shipped count is chosen on)."""

    oof: OutOfFold
    chosen: dict[int, int]  # outer fold -> steps chosen on its inner folds
    per_steps: dict[int, OutOfFold]


def _nested_out_of_fold(prepared: _Prepared, folds: list[Fold], fit: PairFitConfig,
                        echo: Callable[[str], None]) -> _Nested:
    """For each outer fold: pick the step count by cross-validation over the other folds, then
    score the fold with a fit on all of them, stopped at that count."""
    fold_of = fold_index([c.video for c in prepared.clips], folds)
    nested = [np.zeros(0, np.float32)] * len(prepared.clips)
    per_steps = {steps: [np.zeros(0, np.float32)] * len(prepared.clips) for steps in fit.snapshots}
    chosen = {}
    for fold in folds:
        held_out = fold_of == fold.index
        inner: dict[int, dict[int, np.ndarray]] = {steps: {} for steps in fit.snapshots}
        for other in folds:
            if other.index == fold.index:
                continue
            scored = fold_of == other.index
            for steps, logits in _snapshot_logits(prepared, fit, ~held_out & ~scored, scored).items():
                inner[steps] |= logits
        aucs = {steps: _selection_auc(prepared, logits) for steps, logits in inner.items()}
        chosen[fold.index] = max(aucs, key=lambda steps: (aucs[steps], -steps))
        for steps, logits in _snapshot_logits(prepared, fit, ~held_out, held_out).items():
            for i, z in logits.items():
                per_steps[steps][i] = z
                if steps == chosen[fold.index]:
                    nested[i] = z
        echo(f"fold {fold.index} ({', '.join(fold.sources)}): {chosen[fold.index]} steps chosen on "
             f"the other folds (inner AUC {', '.join(f'{s}: {a:.3f}' for s, a in aucs.items())})"
             f"{'' if fit.use_pairs else '; SSIM inputs constant'}")
    return _Nested(OutOfFold({MODEL_ID: nested}, fold_of), chosen,
                   {steps: OutOfFold({MODEL_ID: logits}, fold_of) for steps, logits in per_steps.items()})


@dataclass(frozen=True)
class _Protocol:
    registry: Registry
    device: torch.device
    prepared: _Prepared
    folds: list[Fold]
    nested: _Nested
    outcome: ProtocolOutcome  # of the nested out-of-fold scores
    steps: int  # what ships: the count with the best plain out-of-fold AUC
    variants: dict[str, ProtocolMetrics]


def _protocol(config: PairRunConfig, echo: Callable[[str], None]) -> _Protocol:
    if config.folds < MIN_NESTED_FOLDS:
        raise ConfigError(f"the nested protocol needs at least {MIN_NESTED_FOLDS} folds (the step "
                          "count is chosen on two or more folds inside each outer one)")
    device = resolve_device(config.device)
    registry = Registry.load(config.registry_path)
    prepared = _prepare(config, registry, device, echo)
    folds = leave_sources_out([c.video for c in prepared.clips], config.folds)
    nested = _nested_out_of_fold(prepared, folds, config.fit, echo)
    outcome = evaluate_protocol(nested.oof, prepared.faces, folds)
    plain = {steps: evaluate_protocol(oof, prepared.faces, folds, [outcome.policy]).report.overall
             for steps, oof in nested.per_steps.items()}
    steps = max(plain, key=lambda s: (plain[s].auc or 0.0, -s))
    fold_of = nested.oof.fold_of
    ablation = replace(config.fit, use_pairs=False, snapshots=(steps,))
    without = OutOfFold({MODEL_ID: [np.zeros(0, np.float32)] * len(prepared.clips)}, fold_of)
    for fold in folds:
        held_out = fold_of == fold.index
        for i, z in _snapshot_logits(prepared, ablation, ~held_out, held_out)[steps].items():
            without.logits[MODEL_ID][i] = z
    variants = {f"{s} steps in every fold (not nested)": plain[s] for s in sorted(plain)}
    variants[f"{steps} steps, {WITHOUT_SSIM}"] = evaluate_protocol(
        without, prepared.faces, folds, [outcome.policy]).report.overall
    overall = outcome.report.overall
    echo(f"protocol ({outcome.policy}, steps chosen per fold {nested.chosen}): video AUC "
         f"{overall.auc:.3f} [{overall.auc_low:.3f}, {overall.auc_high:.3f}]; real flagged "
         f"{overall.fpr_at_threshold:.2f}, fakes caught {overall.tpr_at_threshold:.2f}, log loss "
         f"{overall.log_loss:.3f} (base rate {overall.base_rate_log_loss:.3f}); ships {steps} steps")
    return _Protocol(registry, device, prepared, folds, nested, outcome, steps, variants)


def run_pair_protocol_only(config: PairRunConfig, echo: Callable[[str], None] = print) -> str:
    """The protocol's tables as Markdown, without exporting anything."""
    run = _protocol(config, echo)
    return "\n\n".join([
        f"policy: {run.outcome.policy}", report_tables(run.outcome.report),
        table("preset", run.outcome.presets), table("policy", run.outcome.policies),
        table("variant", {"nested (reported)": run.outcome.report.overall, **run.variants}),
    ])


def run_pair_training(config: PairRunConfig, echo: Callable[[str], None] = print) -> ModelCard:
    """Cross-validate, then train, calibrate, export and (with `registry_path`) register."""
    started = time.perf_counter()
    if config.registry_path and config.out_dir.resolve() != config.registry_path.parent.resolve():
        raise ConfigError("weights must be written next to the registry that records them")
    run = _protocol(config, echo)
    prepared, outcome = run.prepared, run.outcome
    fit_started = time.perf_counter()
    model = fit_pair_model(prepared.base, prepared.pool, prepared.clips,
                           np.ones(len(prepared.clips), bool), replace(config.fit, steps=run.steps))
    shipped_oof = run.nested.per_steps[run.steps]
    temperature = temperature_on(shipped_oof, prepared.faces, MODEL_ID, np.arange(len(prepared.clips)))
    path = export_fp32(model, run.registry, MODEL_ID, config.out_dir, temperature, config.fit.seed,
                       ENSEMBLE.card_stem, f"Apache-2.0 ({INIT_MODEL} convolutions); trained on research-only data")
    member = MemberCard(
        model_id=MODEL_ID, architecture=run.registry.models[MODEL_ID].architecture,
        params=dict(run.registry.models[MODEL_ID].params),
        description=run.registry.models[MODEL_ID].description,
        init_weights=f"face branch: {INIT_MODEL} (the MesoNet authors' weights, Apache-2.0); SSIM and "
                     "statistics branches and output: random",
        trained="the face branch's 16-unit dense layer, the SSIM-map CNN, the statistics layer and "
                "the output; MesoInception-4's convolutions and batch norms stay the authors'; "
                "objective: binary cross-entropy on the logit",
        learning_rates={"head": config.fit.learning_rate}, file=path.name, sha256=sha256_file(path),
        size_bytes=path.stat().st_size, dtype="float32", fp16_check=None, temperature=temperature,
        training_seconds=time.perf_counter() - fit_started,
    )
    presets = shipped_presets(shipped_oof, prepared.faces, {MODEL_ID: temperature}, outcome.policy,
                              outcome.presets)
    card = ModelCard(
        name=ENSEMBLE.title,
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        members=[member], policy=outcome.policy, presets=presets.listing(),
        protocol=outcome.report, policies=outcome.policies, member_protocol=outcome.members,
        preset_protocol=outcome.presets, crossfit_temperatures=outcome.temperatures,
        data=data_card(config.data_dir, config.labels, [c.video for c in prepared.clips],
                       len(prepared.pool.clip), 2 * int(prepared.pool.main.sum()), run.folds,
                       prepared.without_face, prepared.errors),
        training=TrainingCard(
            command=config.command, seed=config.fit.seed, frames_per_fake_clip=config.frames,
            frames_per_real_clip=config.frames, folds=config.folds,
            views={"crop": 1, "mirror image": 1}, steps=run.steps,
            batch_size=config.fit.batch_size, sbi_fraction=0.0,
            augmentations={"mirror": "each drawn face is mirrored with probability 1/2, its SSIM "
                                     "map with it"},
            fit_mix="half the mass on real faces (every real clip alike), half on genuine fakes "
                    "shared equally by family, then source, then clip; no self-blended images "
                    "(a blend made per frame has no temporal behaviour to learn)",
        ),
        machine=machine_card(run.device, prepared.extraction_seconds, prepared.feature_seconds,
                             time.perf_counter() - started),
        limitations=PAIR_LIMITATIONS,
        variants=run.variants,
    )
    write_card(card, render_markdown(card), config.out_dir, ENSEMBLE.card_stem)
    if config.registry_path:
        register_card(config.registry_path, ENSEMBLE.name, card, (
            f"{card.data.clips} research clips ({card.data.real_clips} real, "
            f"{card.data.groups} identity groups); research-only, non-commercial "
            f"data terms; cross-validated leaving whole sources out, see "
            f"{ENSEMBLE.card_stem}.md"
        ))
        echo(f"registered {MODEL_ID} and presets in {config.registry_path}")
    echo(f"done in {(time.perf_counter() - started) / 60:.1f} min; card {ENSEMBLE.card_stem}.md")
    return card
