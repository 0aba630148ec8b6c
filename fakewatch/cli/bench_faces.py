"""`fakewatch bench-faces`: how many faces the face finders find under hard conditions.

The harness lives in the repository's `bench/` folder; run this command from the repository root.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from fakewatch.cli.common import bench_checkout

# The research data sits beside the repository; it is read at run time, never copied.
DEFAULT_DATA = Path("..") / "shared" / "data"
DEFAULT_CLIPS = 10
DEFAULT_FRAMES = 10
DEFAULT_FACE_FREE_SEQUENCES = 12  # of `--frames` frames each: 120 face-free frames by default
DEFAULT_TURNED_FRAMES = 24
DEFAULT_TURNED_PER_CLIP = 8
TURNED_SCAN_FRAMES = 16  # frames sampled from each clip when looking for turned heads


@click.command("bench-faces")
@click.argument("videos", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA,
    show_default=True,
    help="Folder holding train/labels.csv, read when no VIDEOS are given.",
)
@click.option("--clips", type=click.IntRange(1), default=DEFAULT_CLIPS, show_default=True,
              help="Ground-truth clips (each with one face found in every sampled frame).")
@click.option("--frames", type=click.IntRange(1), default=DEFAULT_FRAMES, show_default=True,
              help="Frames sampled per clip.")
@click.option("--face-free", "face_free_sequences", type=click.IntRange(0),
              default=DEFAULT_FACE_FREE_SEQUENCES, show_default=True,
              help="Face-free sequences of --frames frames: up to half background strips beside the "
              "true faces, the rest collages.")
@click.option("--turned-frames", type=click.IntRange(0), default=DEFAULT_TURNED_FRAMES,
              show_default=True,
              help="Frames with one strongly turned head (a profile view) for the turned conditions.")
@click.option("--turned-per-clip", type=click.IntRange(1), default=DEFAULT_TURNED_PER_CLIP,
              show_default=True, help="At most this many turned-head frames from one clip.")
@click.option("--conditions", default=None,
              help="Comma-separated condition names (default: all; see bench/face_conditions.py).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the results as JSON here (a .md report goes next to it).")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="torch intra-op threads (default: torch's choice).")
def bench_faces(
    videos: tuple[Path, ...],
    data_dir: Path,
    clips: int,
    frames: int,
    face_free_sequences: int,
    turned_frames: int,
    turned_per_clip: int,
    conditions: str | None,
    seed: int,
    json_path: Path | None,
    threads: int | None,
) -> None:
    """Face recall per condition (dark, noisy, small, blurred, turned heads) and false faces per
    100 face-free frames, for each face finder, with the time per frame."""
    with bench_checkout():
        from bench import face_free, face_recall, face_report, face_truth
        from bench.face_conditions import CONDITIONS, FACE_FREE, TURNED_CONDITIONS
        from bench.harness import machine
    import numpy as np
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    chosen = _conditions(conditions, {**CONDITIONS, **TURNED_CONDITIONS})
    turned_chosen = [c for c in chosen if c in TURNED_CONDITIONS]
    finders, descriptions = _finders()
    root = data_dir / "train"
    if videos:
        paths, root_for_names = list(videos), None
    elif (root / "labels.csv").is_file():
        paths = [root / name for name in face_truth.candidate_files(root)]
        root_for_names = root
    else:
        raise click.ClickException(
            f"no research data at {data_dir} (expected train/labels.csv): give --data or VIDEOS"
        )
    before = machine()
    truth = face_truth.truth_clips(paths, finders["mtcnn"], clips, frames, root_for_names)
    if not truth:
        raise click.ClickException("no clip has exactly one face found in every sampled frame")
    click.echo(f"ground truth: {len(truth)} clips x {frames} frames", err=True)
    turned = (
        face_truth.turned_clips(
            paths, finders["mtcnn"], turned_frames, turned_per_clip, TURNED_SCAN_FRAMES,
            root_for_names,
        )
        if turned_chosen and turned_frames
        else []
    )
    click.echo(f"turned heads: {sum(len(c.scenes) for c in turned)} frames", err=True)
    strips = [face_free.background_sequence(clip.scenes) for clip in truth]
    backgrounds = [s for s in strips if s][: face_free_sequences // 2]
    rng = np.random.default_rng(seed)
    collages = [
        face_free.collage_sequence(rng, frames)
        for _ in range(face_free_sequences - len(backgrounds))
    ]
    sequences = backgrounds + collages
    results = {
        "machine": before,
        "finders": descriptions,
        "clips": [clip.file for clip in truth],
        "frames_per_clip": frames,
        "min_iou": face_recall.MIN_IOU,
        "turned_clips": {clip.file: len(clip.scenes) for clip in turned},
        "turned_nose_offset": face_truth.STRONGLY_TURNED_NOSE_OFFSET,
        "recall": face_recall.face_recall(finders, truth, [c for c in chosen if c in CONDITIONS], seed)
        + face_recall.face_recall(
            finders, turned, turned_chosen if turned else [], seed, TURNED_CONDITIONS
        ),
        "face_free_frames": sum(len(s) for s in sequences),
        "face_free_note": f"{len(backgrounds)} sequences of background strips beside the "
        f"ground-truth faces, {len(collages)} of collages of scikit-image photos without people; "
        "1920x1080",
        "false_faces": face_recall.false_faces(
            finders, sequences, [c for c in FACE_FREE if c in chosen], seed
        ),
        "load_average_after": list(os.getloadavg()),
    }
    table = face_report.markdown(results)
    click.echo(table)
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        json_path.with_suffix(".md").write_text(table)
        click.echo(f"wrote {json_path} (+ .md)", err=True)


def _conditions(names: str | None, known: dict) -> list[str]:
    if names is None:
        return list(known)
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise click.BadParameter(
            f"unknown {', '.join(unknown)}; known: {', '.join(known)}", param_hint="--conditions"
        )
    return chosen


def _finders():  # -> (dict[str, Finder], dict[str, str])
    """The face finders compared, by name, and a line saying what each is. `mtcnn` is the
    detector as it was before exposure normalisation and the second pass: it also picks the
    ground truth."""
    from models.face_finder import FaceFinder
    from models.faces import FaceDetector

    plain = FaceDetector(device="cpu")
    finder = FaceFinder(device="cpu")
    return {"mtcnn": plain.detect, "finder": finder.detect}, {
        "mtcnn": "MTCNN at the settings shipped before issue 11, frame by frame",
        "finder": "the detector's FaceFinder: dark frames brightened (and, left empty, searched "
        "as they are), a finer second pass on frames left empty, faces kept only with a face's "
        "landmark layout",
    }
