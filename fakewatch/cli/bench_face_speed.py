"""`fakewatch bench-face-speed`: the face finder's time against plain MTCNN, interleaved A/B.

The harness lives in the repository's `bench/` folder; run this command from the repository root.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from fakewatch.cli.common import bench_checkout

DEFAULT_DATA = Path("..") / "shared" / "data"
DEFAULT_CLIPS = 4
DEFAULT_FRAMES = 32  # the detector's default frames per video
DEFAULT_PAIRS = 6


@click.command("bench-face-speed")
@click.argument("videos", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_DATA, show_default=True,
              help="Folder holding train/labels.csv, read when no VIDEOS are given.")
@click.option("--clips", type=click.IntRange(1), default=DEFAULT_CLIPS, show_default=True,
              help="Bright 1080p clips to time (the first of the folder's 1920x1080 clips).")
@click.option("--frames", type=click.IntRange(1), default=DEFAULT_FRAMES, show_default=True,
              help="Frames sampled per clip; each finder gets a clip's frames in one call.")
@click.option("--pairs", type=click.IntRange(1), default=DEFAULT_PAIRS, show_default=True,
              help="Rounds over the clips; each round times both finders on every clip.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the results as JSON here (a .md report goes next to it).")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="torch intra-op threads (the detector's per-stage setting on CPU).")
def bench_face_speed(
    videos: tuple[Path, ...],
    data_dir: Path,
    clips: int,
    frames: int,
    pairs: int,
    json_path: Path | None,
    threads: int,
) -> None:
    """Time the detector's face finder against plain MTCNN on bright 1080p clips in interleaved
    pairs: per pair the ratio finder / MTCNN, then its median and interquartile range."""
    with bench_checkout():
        from bench import face_speed, face_speed_report
        from bench.harness import machine
    import torch

    from models.face_finder import FaceFinder
    from models.faces import FaceDetector
    from models.video.sampling import FrameSampling, read_sampled_frames

    torch.set_num_threads(threads)
    root = data_dir / "train"
    if videos:
        paths = list(videos)
    elif (root / "labels.csv").is_file():
        paths = face_speed.bright_full_hd_files(root)
    else:
        raise click.ClickException(
            f"no research data at {data_dir} (expected train/labels.csv): give --data or VIDEOS"
        )
    chosen, names = [], []
    for path in paths:
        if len(chosen) == clips:
            break
        _, sampled = read_sampled_frames(path, FrameSampling(count=frames))
        images = [frame.image for frame in sampled]
        if images and images[0].shape[:2] == (1080, 1920) and face_speed.is_bright(images):
            chosen.append(images)
            names.append(path.name)
    if not chosen:
        raise click.ClickException("no bright 1920x1080 clip among the videos")
    baseline, candidate = FaceDetector(device="cpu"), FaceFinder(device="cpu")
    for finder in (baseline, candidate):  # warm both before any timing
        finder.detect(chosen[0][:2])
    before = machine()
    records = face_speed.interleaved_pairs(baseline.detect, candidate.detect, chosen, pairs)
    results = {
        "machine": before,
        "load_average_after": list(os.getloadavg()),
        "baseline": "plain MTCNN at the settings shipped before issue 11 (models.faces.FaceDetector)",
        "candidate": "the detector's FaceFinder (models.face_finder.FaceFinder)",
        "clips": names,
        "frames_per_clip": frames,
        "summary": face_speed.summary(records),
        "pairs": records,
    }
    report = face_speed_report.markdown(results)
    click.echo(report)
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        json_path.with_suffix(".md").write_text(report)
        click.echo(f"wrote {json_path} (+ .md)", err=True)
