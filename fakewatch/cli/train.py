"""`fakewatch train`: train one of fakewatch's own ensembles (`fakewatch-sbi`, `embedding-svm`,
`fakewatch-vit-distilled`, `meso-ssim`, `meso-sbi`) and register it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from click.core import ParameterSource

from models.config import DEFAULT_FRAMES

PAIR_ENSEMBLE = "meso-ssim"
BLEND_ENSEMBLE = "meso-sbi"
# Options of the SBI-trained Lite members that the MesoNet-based ensembles have no use for.
NOT_FOR_PAIRS = ("members", "real_frames", "sbi_fraction", "teacher", "steps")
NOT_FOR_BLENDS = ("members", "real_frames", "sbi_fraction", "teacher")


@click.command("train")
@click.option("--data", "data_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of labelled videos (labels.csv, DFDC metadata.json or FaceForensics++ layout).")
@click.option("--labels", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="labels.csv (file,label,group[,subset]) or DFDC metadata.json; relative to --data "
                   "unless it exists as given. Default: detected in --data.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              show_default="the project's weights/", help="Where weights and the model card go.")
@click.option("--register/--no-register", default=True, show_default=True,
              help="Record sha256, size, temperature and params in OUT/registry.toml.")
@click.option("--ensemble", "ensemble_name", type=click.Choice(["fakewatch-sbi", "embedding-svm",
                                                    "fakewatch-vit-distilled", PAIR_ENSEMBLE,
                                                    BLEND_ENSEMBLE]),
              default="fakewatch-sbi", show_default=True,
              help="The registry ensemble to train: its members, presets and model card "
                   "(fakewatch-sbi: Lite0 + hybrid ViT; embedding-svm: seed 002's triplet embedding + SVM; "
                   "fakewatch-vit-distilled: seed 001's "
                   "distilled hybrid ViT, needs --teacher; meso-ssim: seed 004's MesoInception-4 "
                   "with SSIM maps between a person's consecutive crops; meso-sbi: MesoInception-4 "
                   "fine-tuned end to end on real faces against their self-blended images).")
@click.option("--members", default=None, show_default="the ensemble's members",
              help="Comma-separated members to train.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the views, weights and draws.")
@click.option("--frames", type=click.IntRange(1, 256), default=DEFAULT_FRAMES, show_default=True,
              help="Frames sampled per fake clip (the detector's default).")
@click.option("--real-frames", type=click.IntRange(1, 512), default=64, show_default=True,
              help="Frames sampled per real clip: each real face also becomes a self-blended fake.")
@click.option("--folds", type=click.IntRange(2), default=5, show_default=True,
              help="Leave-sources-out folds of the protocol.")
@click.option("--steps", type=click.IntRange(1), default=600, show_default=True,
              help="Optimiser steps of every fit (one per fold and member, then the final ones); "
                   "meso-ssim chooses its own by nested cross-validation; meso-sbi's default is 200.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True,
              help="Views per step (meso-sbi's default: 32).")
@click.option("--sbi-fraction", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of the fake mass given to self-blended views of real faces.")
@click.option("--blend-masks", type=click.Choice(["five-point", "dense"]), default="five-point",
              show_default=True,
              help="meso-sbi only: shape the self-blend masks from MTCNN's five points or from "
                   "dlib's 68 (needs the train extras).")
@click.option("--protocol-only", is_flag=True,
              help="Run the protocol and print its tables; write no weights, card or registry.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch.")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True,
              help="Processes extracting faces (one decodes while another detects).")
@click.option("--teacher", default=None,
              help="Registry ensemble or model id that scores every training view for distilled "
                   "members (e.g. default); needed exactly when one is trained.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Face-crop cache root (default: ~/.cache/fakewatch/crops).")
@click.pass_context
def train(
    ctx: click.Context, data_dir: Path, labels: Path | None, out_dir: Path | None, register: bool, ensemble_name: str,
    members: str | None, seed: int,
    frames: int, real_frames: int, folds: int, steps: int, batch_size: int, sbi_fraction: float,
    blend_masks: str, protocol_only: bool, device: str, threads: int | None, workers: int, teacher: str | None,
    cache_dir: Path | None,
) -> None:
    """Train one of fakewatch's own ensembles from labelled videos.

    Runs the leave-sources-out protocol first (every member fitted once per fold, scored on the
    sources it left out), chooses the aggregation policy and the threshold presets on those
    out-of-fold scores, then fits each member on everything, calibrates, exports safetensors and
    writes a model card with the protocol's tables. A distilled member
    (`fakewatch-hybrid-vit-distilled`) also learns a `--teacher`'s score of every view.
    `meso-ssim` samples --frames from every clip and trains on genuine clips only; `meso-sbi`
    samples --frames from every clip and trains on the real ones and their self-blended images.
    """
    import torch

    from models.training.members import MEMBERS, TRAINED_ENSEMBLES
    from models.training.pool import PoolConfig
    from models.training.run import RunConfig, command_line, run_protocol_only, run_training
    from models.training.top_fit import FitConfig
    from weights import WEIGHTS_DIR  # imported here: the API image ships no weights package

    out_dir = out_dir or WEIGHTS_DIR
    if threads is not None:
        torch.set_num_threads(threads)
    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) is not ParameterSource.DEFAULT

    for name, refused in ((PAIR_ENSEMBLE, NOT_FOR_PAIRS), (BLEND_ENSEMBLE, NOT_FOR_BLENDS)):
        wrong = [f"--{option.replace('_', '-')}" for option in refused if given(option)]
        if ensemble_name == name and wrong:
            raise click.UsageError(f"{', '.join(wrong)} do not apply to {name}")
    if given("blend_masks") and ensemble_name != BLEND_ENSEMBLE:
        raise click.UsageError(f"--blend-masks applies to {BLEND_ENSEMBLE} only")
    if ensemble_name == BLEND_ENSEMBLE:
        _train_blends(data_dir, labels, out_dir, register, seed, frames, folds,
                      steps if given("steps") else None, batch_size if given("batch_size") else None,
                      blend_masks, protocol_only, device, workers, cache_dir)
        return
    if ensemble_name == PAIR_ENSEMBLE:
        _train_pairs(data_dir, labels, out_dir, register, seed, frames, folds, batch_size,
                     protocol_only, device, workers, cache_dir)
        return
    ensemble = TRAINED_ENSEMBLES[ensemble_name]
    names = [m.strip() for m in members.split(",") if m.strip()] if members else list(ensemble.members)
    unknown = [name for name in names if name not in MEMBERS]
    if unknown or not names:
        raise click.ClickException(f"unknown members {unknown or names}; trainable: {', '.join(MEMBERS)}")
    registry_path = _registry_path(out_dir, register)  # --protocol-only reads it only
    config = RunConfig(
        data_dir=data_dir,
        labels=labels,
        out_dir=out_dir,
        registry_path=registry_path,
        members=tuple(MEMBERS[name] for name in names),
        frames=frames,
        real_frames=real_frames,
        folds=folds,
        pool=PoolConfig(seed=seed),
        fit=FitConfig(steps=steps, batch_size=batch_size, sbi_fraction=sbi_fraction, seed=seed),
        device=device,
        workers=workers,
        cache_root=cache_dir,
        command=command_line(),
        ensemble=ensemble,
        teacher=teacher,
    )
    _run(protocol_only, run_protocol_only, run_training, config)


def _registry_path(out_dir: Path, register: bool) -> Path | None:
    """OUT/registry.toml, which must exist when the run registers what it trains."""
    registry_path = out_dir / "registry.toml" if register else None
    if registry_path is not None and not registry_path.is_file():
        raise click.ClickException(f"{registry_path} does not exist: give --no-register or an --out with a registry")
    return registry_path


def _train_pairs(data_dir: Path, labels: Path | None, out_dir: Path, register: bool, seed: int,
                 frames: int, folds: int, batch_size: int, protocol_only: bool,
                 device: str, workers: int, cache_dir: Path | None) -> None:
    """Seed 004's two-input MesoInception-4 (`models.training.pair_run`)."""
    from models.training.pair_fit import PairFitConfig
    from models.training.pair_run import PairRunConfig, run_pair_protocol_only, run_pair_training
    from models.training.run import command_line

    registry_path = _registry_path(out_dir, register)
    config = PairRunConfig(
        data_dir=data_dir, labels=labels, out_dir=out_dir, registry_path=registry_path, frames=frames, folds=folds,
        fit=PairFitConfig(batch_size=batch_size, seed=seed),
        device=device, workers=workers, cache_root=cache_dir, command=command_line(),
    )
    _run(protocol_only, run_pair_protocol_only, run_pair_training, config)


def _train_blends(data_dir: Path, labels: Path | None, out_dir: Path, register: bool, seed: int,
                  frames: int, folds: int, steps: int | None, batch_size: int | None, masks: str,
                  protocol_only: bool, device: str, workers: int, cache_dir: Path | None) -> None:
    """MesoInception-4 fine-tuned on self-blended images (`models.training.blend_run`); steps and
    batch size keep that run's own defaults unless given."""
    from models.training.blend_run import (
        BlendRunConfig,
        run_blend_protocol_only,
        run_blend_training,
    )
    from models.training.blend_tune import BlendTuneConfig
    from models.training.run import command_line

    registry_path = _registry_path(out_dir, register)
    defaults = BlendTuneConfig()
    steps = steps or defaults.steps
    fit = BlendTuneConfig(steps=steps, snapshots=tuple(s for s in defaults.snapshots if s <= steps),
                          batch_size=batch_size or defaults.batch_size, seed=seed)
    config = BlendRunConfig(
        data_dir=data_dir, labels=labels, out_dir=out_dir, registry_path=registry_path, frames=frames,
        folds=folds, fit=fit, masks=masks, device=device, workers=workers, cache_root=cache_dir, command=command_line(),
    )
    _run(protocol_only, run_blend_protocol_only, run_blend_training, config)


def _run(protocol_only: bool, protocol: Callable[..., str], training: Callable[..., object],
         config: object) -> None:
    """Print the protocol's tables, or train; a FakewatchError becomes the CLI's error message."""
    from models.errors import FakewatchError

    try:
        if protocol_only:
            click.echo(protocol(config, echo=click.echo))
        else:
            training(config, echo=click.echo)
    except FakewatchError as error:
        raise click.ClickException(str(error)) from error
