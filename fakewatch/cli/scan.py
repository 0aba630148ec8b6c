"""`fakewatch scan`: score videos, print a verdict per video, JSON, or a DFDC submission CSV."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click

from fakewatch.cli.common import detector_config, detector_options, expand_inputs, load_detector


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@detector_options
@click.option("--json", "as_json", is_flag=True,
              help="Print the full result: the object for one video, JSON Lines for several.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write filename,label (label = P(fake), empty when no face) in DFDC submission format.")
def scan(
    paths: tuple[Path, ...], models: str | None, frames: int, policy: str | None, threshold: float | None,
    preset: str | None, device: str, precision: str, threads: int | None, registry_path: Path | None, as_json: bool, csv_path: Path | None,
) -> None:
    """Scan video files and/or folders of videos for deepfaked faces."""
    from tqdm import tqdm

    from models.errors import FakewatchError

    videos = expand_inputs(paths)
    if not videos:
        raise click.ClickException("no video or image files found in the given paths")
    click.echo(f"Loading models on {device}...", err=True)
    detector = load_detector(
        detector_config(models, frames, policy, threshold, device, registry_path, precision, preset),
        threads,
    )
    rows: list[tuple[str, str]] = []
    failures = 0
    for video in tqdm(videos, desc="scanning", unit="video", file=sys.stderr, disable=None):
        try:
            result = detector.detect(video)
        except FakewatchError as error:
            failures += 1
            rows.append((video.name, ""))
            _emit_error(video, error, as_json, single=len(videos) == 1)
            continue
        rows.append((video.name, "" if result.probability is None else f"{result.probability:.6f}"))
        if as_json:
            click.echo(result.model_dump_json(indent=2 if len(videos) == 1 else None))
        else:
            tqdm.write(verdict_line(video, result), file=sys.stdout)
    if csv_path is not None:
        with csv_path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["filename", "label"])
            writer.writerows(rows)
        click.echo(f"wrote {csv_path}", err=True)
    if failures:
        raise SystemExit(1)


def verdict_line(video: Path, result) -> str:  # result: models.schema.DetectionResult
    """One readable line: verdict, score, people, frames and time."""
    seconds = result.timings.get("total", 0.0)
    if result.status == "no_face":
        return f"NO FACE      -     {video}  ({result.sampled_frames} frames, {seconds:.1f} s)"
    people = ", ".join(
        f"person {i.identity}: {i.label} {i.probability:.2f}" for i in result.identities
    )
    judged_at = f"threshold {result.threshold:.3f}" + (f" ({result.preset})" if result.preset else "")
    return (
        f"{result.label.upper():<6} {result.probability:7.3f}  {video}  "
        f"({people}; {result.sampled_frames} frames, {result.frames_without_face} without a face, "
        f"{judged_at}, {seconds:.1f} s)"
    )


def _emit_error(video: Path, error: Exception, as_json: bool, single: bool) -> None:
    body = {"file": video.name, "error": {"type": type(error).__name__, "message": str(error)}}
    if as_json and not single:
        click.echo(json.dumps(body))
    click.echo(f"ERROR  {video}: {error}", err=True)
