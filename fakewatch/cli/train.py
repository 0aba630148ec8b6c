"""`fakewatch train`: train the default ensemble's members on labelled videos and register them."""

from __future__ import annotations

from pathlib import Path

import click

from models.config import DEFAULT_FRAMES
from weights import WEIGHTS_DIR


@click.command("train")
@click.option("--data", "data_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of labelled videos (labels.csv, DFDC metadata.json or FaceForensics++ layout).")
@click.option("--labels", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="labels.csv (file,label,group[,subset]) or DFDC metadata.json; relative to --data "
                   "unless it exists as given. Default: detected in --data.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=WEIGHTS_DIR,
              show_default="the project's weights/", help="Where weights and the model card go.")
@click.option("--register/--no-register", default=True, show_default=True,
              help="Record sha256, size, temperature and params in OUT/registry.toml.")
@click.option("--members", default="fakewatch-effnet-lite0,fakewatch-hybrid-vit",
              show_default=True, help="Comma-separated members to train.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the split, weights and draws.")
@click.option("--frames", type=click.IntRange(1, 256), default=DEFAULT_FRAMES, show_default=True,
              help="Frames sampled per clip for face crops (the detector's default).")
@click.option("--epochs", type=click.IntRange(1), default=8, show_default=True, help="Maximum epochs per member.")
@click.option("--samples-per-epoch", type=click.IntRange(1), default=1024, show_default=True,
              help="Balanced draws per epoch.")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--sbi-fraction", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of fake draws made as self-blended images of real faces.")
@click.option("--patience", type=click.IntRange(1), default=2, show_default=True,
              help="Stop after this many epochs without a better validation video AUC.")
@click.option("--val-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.25,
              show_default=True, help="Share of each source family's clips held out (whole groups).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch.")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True,
              help="Processes extracting faces (one decodes while another detects).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Face-crop cache root (default: ~/.cache/fakewatch/crops).")
def train(
    data_dir: Path, labels: Path | None, out_dir: Path, register: bool, members: str, seed: int,
    frames: int, epochs: int, samples_per_epoch: int, batch_size: int, sbi_fraction: float,
    patience: int, val_fraction: float, device: str, threads: int | None, workers: int,
    cache_dir: Path | None,
) -> None:
    """Train the default ensemble (EfficientNet-Lite0 + hybrid ViT) from labelled videos.

    Face crops come from the detector's own pipeline and are cached outside the repository;
    train/validation are split by group; each member keeps its best validation epoch, gets a
    temperature fitted on validation, and is written as safetensors with a model card.
    """
    import torch

    from models.errors import FakewatchError
    from models.training.members import MEMBERS
    from models.training.run import RunConfig, command_line, run_training
    from models.training.trainer import TrainConfig

    if threads is not None:
        torch.set_num_threads(threads)
    names = [m.strip() for m in members.split(",") if m.strip()]
    unknown = [name for name in names if name not in MEMBERS]
    if unknown or not names:
        raise click.ClickException(f"unknown members {unknown or names}; trainable: {', '.join(MEMBERS)}")
    registry_path = out_dir / "registry.toml" if register else None
    if registry_path is not None and not registry_path.is_file():
        raise click.ClickException(f"{registry_path} does not exist: give --no-register or an --out with a registry")
    config = RunConfig(
        data_dir=data_dir,
        labels=labels,
        out_dir=out_dir,
        registry_path=registry_path,
        members=tuple(MEMBERS[name] for name in names),
        frames=frames,
        validation_fraction=val_fraction,
        train=TrainConfig(
            epochs=epochs, samples_per_epoch=samples_per_epoch, batch_size=batch_size,
            sbi_fraction=sbi_fraction, patience=patience, seed=seed,
        ),
        device=device,
        workers=workers,
        cache_root=cache_dir,
        command=command_line(),
    )
    try:
        run_training(config, echo=click.echo)
    except FakewatchError as error:
        raise click.ClickException(str(error)) from error
