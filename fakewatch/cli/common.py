"""Options and helpers shared by the commands that run the detector (scan, eval, bench)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from models.config import (
    DEFAULT_FRAMES,
    DEFAULT_POLICY,
    POLICY_NAMES,
    PRECISIONS,
    PRESET_NAMES,
    DetectorConfig,
)

F = TypeVar("F", bound=Callable[..., Any])


def detector_options(command: F) -> F:
    """Add the options that choose models, device and scoring defaults."""
    options = [
        click.option("--models", "models", default=None, metavar="IDS",
                     help="Comma-separated model ids or one ensemble name (default: the registry's default ensemble)."),
        click.option("--frames", type=click.IntRange(1, 1024), default=DEFAULT_FRAMES, show_default=True,
                     help="Frames sampled evenly over each video."),
        click.option("--policy", type=click.Choice(POLICY_NAMES), default=None,
                     help="How crop scores become a video score (default: the policy the ensemble's "
                          f"presets were measured under, else {DEFAULT_POLICY})."),
        click.option("--threshold", type=click.FloatRange(0, 1), default=None,
                     help="P(fake) at or above which a video is labelled fake (default: the preset's).",),
        click.option("--preset", type=click.Choice(PRESET_NAMES), default=None,
                     help="Measured operating point of the ensemble (default: its default preset; "
                          "`fakewatch weights presets` lists them)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N]."),
        click.option("--precision", type=click.Choice(PRECISIONS), default="auto",
                     show_default=True,
                     help="Classifier precision: auto = half on CUDA, fp32 on CPU (bf16 moves scores by up to 0.05)."),
        click.option("--threads", type=click.IntRange(1), default=None,
                     help="CPU threads for torch (default: one per core, less one for the decoder thread)."),
        click.option("--registry", "registry_path", type=click.Path(dir_okay=False, path_type=Path),
                     default=None, envvar="FAKEWATCH_REGISTRY_PATH",
                     help="Weights registry TOML (default: the project's weights/registry.toml)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def detector_config(
    models: str | None, frames: int, policy: str | None, threshold: float | None, device: str,
    registry_path: Path | None, precision: str = "auto", preset: str | None = None,
) -> DetectorConfig:
    return DetectorConfig(
        registry_path=registry_path,
        models=tuple(m.strip() for m in models.split(",") if m.strip()) if models else None,
        device=device,
        frames=frames,
        policy=policy,
        threshold=threshold,
        preset=preset,
        precision=precision,
    )


def load_detector(config: DetectorConfig, threads: int | None):  # -> models.detector.Detector
    """Build, load and warm up a detector, turning load failures into a clean CLI error."""
    import torch

    from models.detector import Detector
    from models.errors import FakewatchError

    try:
        detector = Detector(config)
        detector.load()
        if threads is not None:  # after load(), which caps threads to leave a core for decoding
            torch.set_num_threads(threads)
        detector.warmup()
    except FakewatchError as error:
        raise click.ClickException(str(error)) from error
    return detector


def expand_inputs(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and every file below each folder that the service would accept, sorted.

    A folder's files are recognised by their first bytes, as the API recognises uploads, so a
    folder scan takes every format the service takes (GIF included) whatever the file names say.
    """
    from models.video.sniff import SNIFF_BYTES, sniff_container

    def is_media(path: Path) -> bool:
        with path.open("rb") as handle:
            return sniff_container(handle.read(SNIFF_BYTES)) is not None

    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_media(p)))
        else:
            found.append(path)
    return found


@contextmanager
def bench_checkout() -> Iterator[None]:
    """Import `bench` modules inside: bench/ ships with the repository, not the package, so
    outside a checkout the import fails with a clear message instead of a traceback."""
    try:
        yield
    except ModuleNotFoundError as error:
        if error.name != "bench":
            raise
        raise click.ClickException(
            "the bench/ folder is not importable: run from the repository root"
        ) from None
