"""One training run end to end: list, extract, render the views once, cross-validate, fit, export.

1. Crops of every clip with the detector's own face pipeline (cached outside the repository):
   `real_frames` per real clip, since each real face also gives a self-blended fake, and the
   detector's `frames` per fake clip.
2. The training views (augmented real, self-blended and genuine fake crops) are rendered once and
   passed once through the frozen ImageNet trunk (`trunk.py`, `pool.py`), and once through the
   teacher when a member is distilled (`teacher.py`).
3. The leave-sources-out protocol (`models.protocol`): each member is fitted once per fold on the
   other folds and scores the fold's clips; temperatures, the aggregation policy and the preset
   thresholds are chosen on those out-of-fold scores, cross-fitted (`crossval.py`, `operating.py`).
4. Each member is fitted once more on every clip with the same fixed schedule, calibrated with a
   temperature fitted on all out-of-fold logits, exported, and registered with the presets.

Everything a run decides is derived from its `RunConfig`: the same data, command and seed give the
same folds, views and initial weights.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import timm
import torch

from models.config import DEFAULT_FRAMES
from models.crops import CropSpec
from models.datasets import REAL, LabeledVideo, list_labeled_videos
from models.device import resolve_device
from models.errors import ConfigError
from models.protocol.folds import DEFAULT_FOLDS, Fold, leave_sources_out
from models.protocol.tables import report_tables, table
from models.registry import Registry
from models.training.card import (
    DataCard,
    MachineCard,
    MemberCard,
    ModelCard,
    TrainingCard,
    render_markdown,
    write_card,
)
from models.training.cropcache import ClipCrops, CropCache, CropExtractor, fill_cache
from models.training.crossval import ClipFaces, OutOfFold, out_of_fold, temperature_on
from models.training.errors import TrainingDataError
from models.training.export import export_member
from models.training.fit import fit_member, fitted_recipe
from models.training.members import (
    MEMBERS,
    OBJECTIVES,
    TRAINED_ENSEMBLES,
    MemberRecipe,
    TrainedEnsemble,
)
from models.training.operating import ProtocolOutcome, evaluate_protocol, shipped_presets
from models.training.pool import PoolConfig, TrainingClip, ViewPool, build_pool
from models.training.register import register_card
from models.training.teacher import Teacher
from models.training.top_fit import FitConfig
from models.training.trunk import Trunk

DEFAULT_ENSEMBLE = TRAINED_ENSEMBLES["fakewatch-sbi"]
CARD_STEM = DEFAULT_ENSEMBLE.card_stem
DEFAULT_REAL_FRAMES = 64
FP16_CHECK_CROPS = 2048  # crops scored to decide whether fp16 weights are harmless


@dataclass(frozen=True)
class RunConfig:
    """What `fakewatch train` was asked to do.

    Attributes:
        data_dir: folder of labelled videos.
        labels: labels.csv or DFDC metadata.json (None: detected in `data_dir`).
        out_dir: where weights and the card are written.
        registry_path: registry whose member and ensemble entries are updated (None: don't).
        members: the members to train; each needs an entry in the registry.
        frames: frames sampled per fake clip (the detector's default).
        real_frames: frames sampled per real clip.
        folds: leave-sources-out folds of the protocol.
        pool: views per crop and their augmentations.
        fit: steps, batch and mix of every fit.
        device: "auto", "cpu" or "cuda[:N]".
        workers: processes extracting faces.
        cache_root: crop cache root (None: the user cache folder).
        command: the command line, recorded in the card.
        ensemble: the registry ensemble whose presets the run sets, and its card's name.
        teacher: registry ensemble or model id scoring every view for distilled members (needed
            exactly when a member is distilled).
    """

    data_dir: Path
    labels: Path | None
    out_dir: Path
    registry_path: Path | None
    members: tuple[MemberRecipe, ...] = tuple(MEMBERS[m] for m in DEFAULT_ENSEMBLE.members)
    frames: int = DEFAULT_FRAMES
    real_frames: int = DEFAULT_REAL_FRAMES
    folds: int = DEFAULT_FOLDS
    pool: PoolConfig = field(default_factory=PoolConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    device: str = "auto"
    workers: int = 1
    cache_root: Path | None = None
    command: str = ""
    ensemble: TrainedEnsemble = DEFAULT_ENSEMBLE
    teacher: str | None = None


def cpu_name() -> str:
    """The CPU model as Linux names it, else what Python's platform module knows."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    name = names[0] if names else platform.processor() or platform.machine()
    return f"{name} ({os.cpu_count()} cores)"


def relative_path(path: Path, root: Path) -> str:
    """A path as the card may show it: relative to the data folder, never a machine path."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return path.name


def labelled_videos(data_dir: Path, labels: Path | None) -> list[LabeledVideo]:
    """The labelled clips of a training run, every one of which must exist."""
    videos = list_labeled_videos(data_dir, labels_path(labels, data_dir))
    missing = [str(v.path) for v in videos if not v.path.is_file()]
    if missing:
        raise TrainingDataError(f"{len(missing)} labelled video(s) not found, e.g. {missing[0]}")
    return videos


def labels_path(labels: Path | None, data_dir: Path) -> Path | None:
    """`--labels` as given when it exists, else relative to the data folder."""
    if labels is None or labels.is_file():
        return labels
    inside = data_dir / labels
    if not labels.is_absolute() and inside.is_file():
        return inside
    raise TrainingDataError(f"labels file {labels} not found (nor in {data_dir})")


def _check_members(recipes: tuple[MemberRecipe, ...], registry: Registry, teacher: str | None) -> CropSpec:
    """The one crop spec the members share, from their registry entries."""
    if not recipes:
        raise ConfigError("no members to train")
    distilled = [r.model_id for r in recipes if r.distilled]
    if distilled and teacher is None:
        raise ConfigError(f"{distilled} learn from a teacher: name one (a registry ensemble or model)")
    if teacher is not None and not distilled:
        raise ConfigError(f"teacher {teacher!r} given, but no member to train is distilled")
    missing = [r.model_id for r in recipes if r.model_id not in registry.models]
    if missing:
        raise ConfigError(f"the registry has no entries {missing} for the members' weights")
    specs = {registry.models[r.model_id].preprocessing for r in recipes}
    if len(specs) != 1:
        raise ConfigError("the members must share one preprocessing spec to share crops")
    if len({(r.backbone_name, r.trunk_blocks, r.imagenet_init) for r in recipes}) != 1:
        raise ConfigError("the members must share one backbone and trunk to share trunk maps")
    return specs.pop()


@dataclass(frozen=True)
class _Prepared:
    """The run's clips with a tracked face, their crops as trunk maps, and the training views."""

    videos: list[LabeledVideo]
    clips: list[TrainingClip]  # main person's crops, for training views
    faces: list[ClipFaces]  # every tracked face, as the detector scores them
    pool: ViewPool
    teacher: str | None  # how the teacher scored the views, for the card
    without_face: list[LabeledVideo]
    errors: dict[Path, str]
    extraction_seconds: float
    rendering_seconds: float


def _extract(config: RunConfig, spec: CropSpec, device: torch.device, videos: list[LabeledVideo],
             echo: Callable[[str], None]) -> tuple[dict[Path, ClipCrops], dict[Path, str], float]:
    started = time.perf_counter()
    crops: dict[Path, ClipCrops] = {}
    errors: dict[Path, str] = {}
    for frames, wanted in ((config.real_frames, True), (config.frames, False)):
        cache = CropCache(CropExtractor(spec, frames, str(device)), config.cache_root)
        paths = [v.path for v in videos if (v.label == REAL) == wanted]
        errors |= fill_cache(cache, paths, config.workers)
        crops |= {path: cache.get(path) for path in paths if path not in errors}
    for path, error in errors.items():
        echo(f"skipped {path}: {error}")
    return crops, errors, time.perf_counter() - started


def _prepare(config: RunConfig, spec: CropSpec, device: torch.device, registry: Registry,
             echo: Callable[[str], None]) -> _Prepared:
    videos = labelled_videos(config.data_dir, config.labels)
    crops, errors, extraction_seconds = _extract(config, spec, device, videos, echo)
    started = time.perf_counter()
    trunk = Trunk(config.members[0], spec, device, config.fit.seed)
    usable = [v for v in videos if v.path in crops and len(crops[v.path].tracked()[0])]
    clips = [TrainingClip(v, crops[v.path].main_person()) for v in usable]
    faces = [ClipFaces.of(v, crops[v.path], trunk) for v in usable]
    teacher = None if config.teacher is None else Teacher(config.teacher, registry, spec, device)
    pool = build_pool(clips, trunk, config.pool, teacher)
    prepared = _Prepared(
        videos=usable, clips=clips, faces=faces, pool=pool,
        teacher=None if teacher is None else teacher.describe(),
        without_face=[v for v in videos if v.path in crops and v not in usable],
        errors=errors, extraction_seconds=extraction_seconds,
        rendering_seconds=time.perf_counter() - started,
    )
    echo(f"{len(usable)} clips with a tracked face ({len(prepared.without_face)} without, "
         f"{len(errors)} unreadable); {sum(len(f.maps) for f in faces)} faces; {len(pool.clip)} "
         f"training views ({extraction_seconds / 60:.1f} min extracting, "
         f"{prepared.rendering_seconds / 60:.1f} min rendering)")
    return prepared


def _final_member(
    recipe: MemberRecipe, prepared: _Prepared, oof: OutOfFold, spec: CropSpec, config: RunConfig,
    echo: Callable[[str], None],
) -> MemberCard:
    """Fit on every clip, calibrate on all out-of-fold logits, export."""
    started = time.perf_counter()
    model = fit_member(recipe, prepared.pool, prepared.clips, np.ones(len(prepared.clips), bool), config.fit)
    recipe = fitted_recipe(recipe, model)
    temperature = temperature_on(oof, prepared.faces, recipe.model_id, np.arange(len(prepared.clips)))
    rng = np.random.default_rng(config.fit.seed)
    check = [(c.crops.crops[i], c.video.label) for c in prepared.clips for i in range(len(c.crops))]
    picked = rng.choice(len(check), size=min(FP16_CHECK_CROPS, len(check)), replace=False)
    exported = export_member(
        model, recipe, temperature,
        (np.stack([check[i][0] for i in picked]), np.array([check[i][1] for i in picked])),
        spec, config.out_dir,
        {"seed": config.fit.seed, "card": f"{config.ensemble.card_stem}.json", "preprocessing": spec.name,
         "license": "weights: MIT; trained on research-only data"},
    )
    echo(f"{recipe.model_id}: temperature {temperature:.3f}, {exported.dtype} {exported.path.name}")
    return MemberCard(
        model_id=recipe.model_id, architecture=recipe.architecture, params=recipe.params,
        description=recipe.description, init_weights=recipe.init_weights,
        trained=f"backbone stages {recipe.trunk_blocks} on, head convolution and classifier; stem "
                f"and stages 0-{recipe.trunk_blocks - 1} keep ImageNet weights and statistics; "
                f"objective: {OBJECTIVES[recipe.objective]}",
        learning_rates={"backbone": recipe.backbone_lr, "head": recipe.head_lr},
        file=exported.path.name, sha256=exported.sha256, size_bytes=exported.size_bytes,
        dtype=exported.dtype, fp16_check=vars(exported.fp16), temperature=temperature,
        training_seconds=time.perf_counter() - started,
    )


def data_card(data_dir: Path, labels: Path | None, videos: list[LabeledVideo], faces: int,
              training_views: int, folds: list[Fold], without_face: list[LabeledVideo],
              errors: dict[Path, str]) -> DataCard:
    """The card's Data section for a run on `videos` (the clips with a tracked face)."""
    by_subset: dict[str, dict[str, int]] = {}
    for video in videos:
        column = "REAL" if video.label == REAL else f"FAKE {video.family or 'unknown'}"
        row = by_subset.setdefault(video.subset or "-", {})
        row[column] = row.get(column, 0) + 1
    return DataCard(
        source=f"{data_dir.resolve().name}/ ({labels.name if labels else 'layout'})",
        clips=len(videos),
        real_clips=sum(v.label == REAL for v in videos),
        groups=len({v.group for v in videos}),
        faces=faces,
        training_views=training_views,
        folds={f"{fold.index}": fold.sources for fold in folds},
        clips_by_subset=dict(sorted(by_subset.items())),
        clips_without_face=[relative_path(v.path, data_dir) for v in without_face],
        extraction_errors={relative_path(p, data_dir): e for p, e in errors.items()},
    )


def _training_card(config: RunConfig, teacher: str | None) -> TrainingCard:
    return TrainingCard(
        teacher=teacher,
        command=config.command, seed=config.fit.seed, frames_per_fake_clip=config.frames,
        frames_per_real_clip=config.real_frames, folds=config.folds,
        views={"real": config.pool.real_views, "self-blended": config.pool.sbi_views,
               "genuine fake": config.pool.fake_views},
        steps=config.fit.steps, batch_size=config.fit.batch_size, sbi_fraction=config.fit.sbi_fraction,
        augmentations=config.pool.augment.describe(),
    )


def machine_card(device: torch.device, extraction_seconds: float, rendering_seconds: float,
                 total_seconds: float) -> MachineCard:
    """The card's Machine section: where and how long the run took."""
    return MachineCard(
        device=str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        cpu=cpu_name(), threads=torch.get_num_threads(), torch=torch.__version__,
        timm=timm.__version__, extraction_seconds=extraction_seconds,
        rendering_seconds=rendering_seconds, total_seconds=total_seconds,
    )


def _register(registry_path: Path, config: RunConfig, card: ModelCard) -> None:
    """Record each member's file and calibration in its table, and the presets in the ensemble's."""
    taught = f", distilled from '{config.teacher}'" if config.teacher else ""
    register_card(registry_path, config.ensemble.name, card, (
        f"{card.data.clips} research clips ({card.data.real_clips} real, {card.data.groups} identity "
        f"groups) with self-blended images of their real faces{taught}; research-only, "
        f"non-commercial data terms; cross-validated leaving whole sources out, see {config.ensemble.card_stem}.md"
    ))


@dataclass(frozen=True)
class _Protocol:
    spec: CropSpec
    device: torch.device
    prepared: _Prepared
    folds: list[Fold]
    oof: OutOfFold
    outcome: ProtocolOutcome


def _protocol(config: RunConfig, echo: Callable[[str], None]) -> _Protocol:
    """Extract, render, and run the leave-sources-out protocol."""
    device = resolve_device(config.device)
    registry = Registry.load(config.registry_path)
    spec = _check_members(config.members, registry, config.teacher)
    prepared = _prepare(config, spec, device, registry, echo)
    folds = leave_sources_out(prepared.videos, config.folds)
    oof = out_of_fold(config.members, prepared.pool, prepared.clips, prepared.faces, folds,
                      config.fit, echo)
    outcome = evaluate_protocol(oof, prepared.faces, folds)
    overall = outcome.report.overall
    echo(f"protocol ({outcome.policy}): video AUC {overall.auc:.3f} [{overall.auc_low:.3f}, "
         f"{overall.auc_high:.3f}], real flagged {overall.fpr_at_threshold:.2f}, fakes caught "
         f"{overall.tpr_at_threshold:.2f}, log loss {overall.log_loss:.3f} (base rate "
         f"{overall.base_rate_log_loss:.3f})")
    return _Protocol(spec, device, prepared, folds, oof, outcome)


def run_protocol_only(config: RunConfig, echo: Callable[[str], None] = print) -> str:
    """The protocol's tables as Markdown (the card's figures, without exporting anything)."""
    outcome = _protocol(config, echo).outcome
    return "\n\n".join([
        f"policy: {outcome.policy}", report_tables(outcome.report),
        table("preset", outcome.presets), table("policy", outcome.policies),
        table("member", outcome.members),
    ])


def run_training(config: RunConfig, echo: Callable[[str], None] = print) -> ModelCard:
    """Cross-validate, then train, calibrate, export and (with `registry_path`) register."""
    started = time.perf_counter()
    if config.registry_path and config.out_dir.resolve() != config.registry_path.parent.resolve():
        raise ConfigError("weights must be written next to the registry that records them")
    run = _protocol(config, echo)
    spec, device, prepared, folds, oof, outcome = (
        run.spec, run.device, run.prepared, run.folds, run.oof, run.outcome)
    members = [_final_member(r, prepared, oof, spec, config, echo) for r in config.members]
    presets = shipped_presets(oof, prepared.faces, {m.model_id: m.temperature for m in members},
                              outcome.policy, outcome.presets)
    card = ModelCard(
        name=config.ensemble.title,
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        members=members,
        policy=outcome.policy,
        presets=presets.listing(),
        protocol=outcome.report,
        policies=outcome.policies,
        member_protocol=outcome.members,
        preset_protocol=outcome.presets,
        crossfit_temperatures=outcome.temperatures,
        data=data_card(config.data_dir, config.labels, prepared.videos,
                       sum(len(f.maps) for f in prepared.faces), len(prepared.pool.clip), folds,
                       prepared.without_face, prepared.errors),
        training=_training_card(config, prepared.teacher),
        machine=machine_card(device, prepared.extraction_seconds, prepared.rendering_seconds,
                             time.perf_counter() - started),
    )
    write_card(card, render_markdown(card), config.out_dir, config.ensemble.card_stem)
    if config.registry_path:
        _register(config.registry_path, config, card)
        echo(f"registered {', '.join(m.model_id for m in card.members)} and presets in "
             f"{config.registry_path}")
    echo(f"done in {(time.perf_counter() - started) / 60:.1f} min; card {config.ensemble.card_stem}.md")
    return card


def command_line() -> str:
    """This process's command line as the card records it: absolute paths shortened to their
    last part, so no machine's layout ends up in the repository."""
    args = [f".../{Path(arg).name}" if Path(arg).is_absolute() else arg for arg in sys.argv[1:]]
    return " ".join(shlex.quote(arg) for arg in ["fakewatch", *args])
