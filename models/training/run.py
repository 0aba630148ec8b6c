"""One training run end to end: list, split, extract, train each member, calibrate, export, card, register.

Everything a run decides is derived from its `RunConfig`, so the same data, command and seed give
the same split, draws and initial weights.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import timm
import torch

from models.config import DEFAULT_FRAMES, DEFAULT_POLICY
from models.crops import CropSpec
from models.datasets import REAL, LabeledVideo, list_labeled_videos
from models.device import resolve_device
from models.errors import ConfigError
from models.registry import Registry
from models.training.calibration import (
    balanced_weights,
    calibrated,
    fit_temperature,
    log_loss_at,
)
from models.training.card import (
    DATA_LICENSE,
    DataCard,
    DetectorValidation,
    MachineCard,
    MemberCard,
    ModelCard,
    TrainingCard,
    write_card,
)
from models.training.cropcache import ClipCrops, CropCache, CropExtractor, fill_cache
from models.training.detector_view import ScoringMember, detector_report
from models.training.errors import TrainingDataError
from models.training.export import export_member, half_copy
from models.training.members import EFFNET_LITE0, HYBRID_VIT, MemberRecipe
from models.training.register import update_model_entry
from models.training.samples import MAX_OVERSAMPLE, TrainingClip
from models.training.split import split_by_group
from models.training.trainer import TrainConfig, fit_member
from models.training.validation import ClipScores, validation_report

CARD_STEM = "fakewatch-default"
ENSEMBLE_NAME = "fakewatch default ensemble"
LIMITATIONS = [
    (
        "Validation is a handful of held-out groups; its figures are noisy and picked the epoch "
        "and the temperature, so they are optimistic."
    ),
    (
        "Each source family holds few identities; unseen people, sources and manipulation "
        "methods will score lower."
    ),
]


@dataclass(frozen=True)
class RunConfig:
    """What `fakewatch train` was asked to do.

    Attributes:
        data_dir: folder of labelled videos.
        labels: labels.csv or DFDC metadata.json (None: detected in `data_dir`).
        out_dir: where weights and the card are written.
        registry_path: registry whose member entries are updated (None: don't register).
        members: the members to train; each needs an entry in the registry.
        frames: frames sampled per clip for crops.
        validation_fraction: share of each source family's clips held out, by whole group.
        train: per-member training settings (seed included).
        device: "auto", "cpu" or "cuda[:N]".
        workers: processes extracting faces.
        cache_root: crop cache root (None: the user cache folder).
        command: the command line, recorded in the card.
    """

    data_dir: Path
    labels: Path | None
    out_dir: Path
    registry_path: Path | None
    members: tuple[MemberRecipe, ...] = (EFFNET_LITE0, HYBRID_VIT)
    frames: int = DEFAULT_FRAMES
    validation_fraction: float = 0.25
    train: TrainConfig = field(default_factory=TrainConfig)
    device: str = "auto"
    workers: int = 1
    cache_root: Path | None = None
    command: str = ""


def _cpu_name() -> str:
    """The CPU model as Linux names it, else what Python's platform module knows."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    name = names[0] if names else platform.processor() or platform.machine()
    return f"{name} ({os.cpu_count()} cores)"


def _relative(path: Path, root: Path) -> str:
    """A path as the card may show it: relative to the data folder, never a machine path."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return path.name


def _labels_path(labels: Path | None, data_dir: Path) -> Path | None:
    """`--labels` as given when it exists, else relative to the data folder."""
    if labels is None or labels.is_file():
        return labels
    inside = data_dir / labels
    if not labels.is_absolute() and inside.is_file():
        return inside
    raise TrainingDataError(f"labels file {labels} not found (nor in {data_dir})")


def _check_members(recipes: tuple[MemberRecipe, ...], registry: Registry) -> CropSpec:
    """The one crop spec the members share, from their registry entries."""
    if not recipes:
        raise ConfigError("no members to train")
    missing = [r.model_id for r in recipes if r.model_id not in registry.models]
    if missing:
        raise ConfigError(f"the registry has no entries {missing} for the members' weights")
    specs = {registry.models[r.model_id].preprocessing for r in recipes}
    if len(specs) != 1:
        raise ConfigError("the members must share one preprocessing spec to share crops")
    return specs.pop()


def _clips(videos: list[LabeledVideo], cache: CropCache, failed: set[Path]) -> list[TrainingClip]:
    return [TrainingClip(v, cache.get(v.path).main_person()) for v in videos if v.path not in failed]


def _counts(train: list[TrainingClip], validation: list[TrainingClip]) -> dict[str, dict[str, int]]:
    counts: Counter[tuple[str, str]] = Counter()
    for part, clips in (("train", train), ("validation", validation)):
        for clip in clips:
            label = "REAL" if clip.video.label == REAL else "FAKE"
            counts[(clip.video.subset or "-", f"{part} {label}")] += 1
    table: dict[str, dict[str, int]] = {}
    for (subset, column), count in sorted(counts.items()):
        table.setdefault(subset, {})[column] = count
    return table


@dataclass(frozen=True)
class _Prepared:
    """The run's clips with their crops, split, and what extraction reported."""

    videos: list[LabeledVideo]
    validation_groups: list[str]
    train: list[TrainingClip]
    validation: list[TrainingClip]
    validation_faces: list[tuple[LabeledVideo, ClipCrops]]  # every face, as the detector sees it
    errors: dict[Path, str]
    extraction_seconds: float

    @property
    def scored(self) -> list[TrainingClip]:
        """Validation clips with at least one face: the ones a score exists for."""
        return [c for c in self.validation if len(c.crops)]


def _prepare(config: RunConfig, spec: CropSpec, device: torch.device, echo: Callable[[str], None]) -> _Prepared:
    """List, split by group, and extract (or load) every clip's crops."""
    videos = list_labeled_videos(config.data_dir, _labels_path(config.labels, config.data_dir))
    missing = [str(v.path) for v in videos if not v.path.is_file()]
    if missing:
        raise TrainingDataError(f"{len(missing)} labelled video(s) not found, e.g. {missing[0]}")
    split = split_by_group(videos, config.validation_fraction, config.train.seed)
    echo(f"{len(videos)} clips: {len(split.train)} train, {len(split.validation)} validation "
         f"(groups {', '.join(split.validation_groups)})")
    cache = CropCache(CropExtractor(spec, config.frames, str(device)), config.cache_root)
    started = time.perf_counter()
    errors = fill_cache(cache, [v.path for v in videos], config.workers)
    seconds = time.perf_counter() - started
    for path, error in errors.items():
        echo(f"skipped {path}: {error}")
    validation_faces = [(v, cache.get(v.path)) for v in split.validation if v.path not in errors]
    prepared = _Prepared(
        videos=videos,
        validation_groups=split.validation_groups,
        train=_clips(split.train, cache, set(errors)),
        validation=[TrainingClip(v, crops.main_person()) for v, crops in validation_faces],
        validation_faces=validation_faces,
        errors=errors,
        extraction_seconds=seconds,
    )
    echo(f"crops: {sum(len(c.crops) for c in prepared.train)} train, "
         f"{sum(len(c.crops) for c in prepared.validation)} validation "
         f"({seconds / 60:.1f} min extracting)")
    return prepared


def _train_member(
    recipe: MemberRecipe, prepared: _Prepared, spec: CropSpec, config: RunConfig,
    device: torch.device, echo: Callable[[str], None],
) -> tuple[MemberCard, list[np.ndarray], ScoringMember]:
    """Fit, calibrate and export one member: its card, calibrated validation probabilities, and
    the member as the detector will run it (the exported weights)."""
    scored = prepared.scored
    labels = np.concatenate([np.full(len(c.crops), c.video.label) for c in scored])
    fit = fit_member(recipe, prepared.train, scored, spec, config.train, device, echo)
    logits = np.concatenate(fit.val_logits)
    temperature = fit_temperature(logits, labels)
    probabilities = [calibrated(z, temperature) for z in fit.val_logits]
    report = validation_report([ClipScores(c.video, p) for c, p in zip(scored, probabilities, strict=True)])
    weights = balanced_weights(labels)
    metadata = {"seed": config.train.seed, "card": f"{CARD_STEM}.json", "preprocessing": spec.name,
                "license": "weights: MIT; trained on research-only data"}
    exported = export_member(
        fit.model, recipe, temperature, (np.concatenate([c.crops.crops for c in scored]), labels),
        spec, config.out_dir, metadata,
    )
    echo(f"{recipe.model_id}: kept epoch {fit.best_epoch}, temperature {temperature:.3f}, "
         f"video AUC {report.video.auc}, frame AUC {report.frame.auc}, {exported.dtype} "
         f"{exported.path.name}")
    frozen = f"stem and blocks 0-{recipe.frozen_blocks - 1}" if recipe.frozen_blocks else "stem"
    card = MemberCard(
        model_id=recipe.model_id,
        architecture=recipe.architecture,
        params=recipe.params,
        description=recipe.description,
        init_weights=recipe.init_weights,
        frozen=f"backbone {frozen} (batch-norm statistics kept)",
        learning_rates={"backbone": recipe.backbone_lr, "head": recipe.head_lr},
        file=exported.path.name,
        sha256=exported.sha256,
        size_bytes=exported.size_bytes,
        dtype=exported.dtype,
        fp16_check=vars(exported.fp16),
        temperature=temperature,
        epochs_run=len(fit.history),
        best_epoch=fit.best_epoch,
        history=list(fit.history),
        training_seconds=fit.seconds,
        validation_uncalibrated_log_loss={
            "frame_balanced": log_loss_at(logits, labels, weights, 1.0),
            "frame_balanced_calibrated": log_loss_at(logits, labels, weights, temperature),
        },
        validation=report,
    )
    exported_model = half_copy(fit.model, recipe) if exported.dtype == "float16" else fit.model
    return card, probabilities, ScoringMember(recipe.model_id, exported_model.eval(), temperature)


def _data_card(config: RunConfig, prepared: _Prepared) -> DataCard:
    train, validation = prepared.train, prepared.validation
    labels = config.labels.name if config.labels else "layout"
    return DataCard(
        source=f"{config.data_dir.resolve().name}/ ({labels})",
        license=DATA_LICENSE,
        clips=len(prepared.videos),
        clips_train=len(train),
        clips_validation=len(validation),
        crops_train=sum(len(c.crops) for c in train),
        crops_validation=sum(len(c.crops) for c in validation),
        groups_train=sorted({c.video.group for c in train}),
        groups_validation=prepared.validation_groups,
        clips_by_subset=_counts(train, validation),
        clips_without_face=[
            _relative(c.video.path, config.data_dir) for c in train + validation if not len(c.crops)
        ],
        extraction_errors={_relative(p, config.data_dir): e for p, e in prepared.errors.items()},
    )


def _training_card(config: RunConfig) -> TrainingCard:
    return TrainingCard(
        command=config.command,
        seed=config.train.seed,
        frames_per_clip=config.frames,
        validation_fraction=config.validation_fraction,
        epochs_max=config.train.epochs,
        samples_per_epoch=config.train.samples_per_epoch,
        batch_size=config.train.batch_size,
        patience=config.train.patience,
        sbi_fraction=config.train.sbi_fraction,
        balancing=(
            "half real, half fake draws; within each source family (group prefix) real and "
            f"genuine-fake draws weigh the same; real clips oversampled at most {MAX_OVERSAMPLE:g}x; "
            "only the main person's crops of each clip"
        ),
        augmentations=config.train.augment.describe(),
        selection="epoch with the best validation video AUC (ties: frame AUC)",
        calibration="per member temperature on validation crops, class-balanced log loss",
        video_score="mean of the main person's crop probabilities over the sampled frames",
    )


def _machine_card(device: torch.device, extraction_seconds: float, total_seconds: float) -> MachineCard:
    return MachineCard(
        device=str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        cpu=_cpu_name(),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        timm=timm.__version__,
        extraction_seconds=extraction_seconds,
        total_seconds=total_seconds,
    )


def _register(registry_path: Path, card: ModelCard, prepared: _Prepared) -> None:
    """Record each member's file, calibration and data in its own registry table."""
    subsets = ", ".join(sorted({v.subset for v in prepared.videos if v.subset}))
    training_data = (
        f"{len(prepared.videos)} research clips ({subsets}): {len(prepared.train)} to train on, "
        f"with self-blended images of their real faces; {len(prepared.validation)} in whole "
        f"held-out groups for validation. Research-only, non-commercial data terms; see "
        f"{CARD_STEM}.md"
    )
    for member in card.members:
        update_model_entry(
            registry_path,
            member.model_id,
            {
                "sha256": member.sha256,
                "size_bytes": member.size_bytes,
                "temperature": round(member.temperature, 6),
                "params": member.params,
                "description": member.description,
                "training_data": training_data,
            },
        )


def run_training(config: RunConfig, echo: Callable[[str], None] = print) -> ModelCard:
    """Train, calibrate, export and (when `registry_path` is set) register every member."""
    started = time.perf_counter()
    device = resolve_device(config.device)
    spec = _check_members(config.members, Registry.load(config.registry_path))
    if config.registry_path and config.out_dir.resolve() != config.registry_path.parent.resolve():
        raise ConfigError("weights must be written next to the registry that records them")
    prepared = _prepare(config, spec, device, echo)
    members, calibrated, scoring = zip(
        *(_train_member(recipe, prepared, spec, config, device, echo) for recipe in config.members),
        strict=True,
    )
    ensemble = validation_report(
        [ClipScores(c.video, np.mean([p[i] for p in calibrated], axis=0))
         for i, c in enumerate(prepared.scored)]
    )
    echo(f"ensemble: video AUC {ensemble.video.auc}, video log loss {ensemble.video.log_loss:.3f}, "
         f"frame AUC {ensemble.frame.auc}")
    as_detected = detector_report(prepared.validation_faces, scoring, spec)
    if as_detected.video is not None:
        echo(f"as the detector scores them: video AUC {as_detected.video.auc}, video log loss "
             f"{as_detected.video.log_loss:.3f}")
    card = ModelCard(
        name=ENSEMBLE_NAME,
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        members=list(members),
        ensemble_validation=ensemble,
        detector_validation=DetectorValidation(
            policy=DEFAULT_POLICY, frames_per_clip=config.frames, report=as_detected
        ),
        data=_data_card(config, prepared),
        training=_training_card(config),
        machine=_machine_card(device, prepared.extraction_seconds, time.perf_counter() - started),
        limitations=LIMITATIONS,
    )
    write_card(card, config.out_dir, CARD_STEM)
    if config.registry_path:
        _register(config.registry_path, card, prepared)
        echo(f"registered {', '.join(m.model_id for m in card.members)} in {config.registry_path}")
    echo(f"done in {(time.perf_counter() - started) / 60:.1f} min; card {CARD_STEM}.md")
    return card


def command_line() -> str:
    """This process's command line as the card records it: absolute paths shortened to their
    last part, so no machine's layout ends up in the repository."""
    args = [f".../{Path(arg).name}" if Path(arg).is_absolute() else arg for arg in sys.argv[1:]]
    return " ".join(shlex.quote(arg) for arg in ["fakewatch", *args])
