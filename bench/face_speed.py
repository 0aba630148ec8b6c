"""What the face finder costs over plain MTCNN on bright 1080p frames, measured in interleaved pairs.

On a shared machine a run of A followed by a run of B measures the other processes' load as much
as the change: here every pair runs both finders back to back on the same frames (which goes
first alternates), and only the ratio B / A within a pair is kept. Load that drifts over
seconds to minutes then cancels out, and the median ratio with its interquartile range says
what B costs relative to A. Wall time and this process's CPU time are both recorded; with torch
at one thread, CPU time is the less noisy of the two.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.face_conditions import mean_brightness
from models.exposure import DARK_MEAN
from models.faces import Face

Finder = Callable[[Sequence[np.ndarray]], list[list[Face]]]
FULL_HD = (1920, 1080)


def bright_full_hd_files(data_dir: Path) -> list[Path]:
    """The 1920x1080 clips of a labels.csv folder, sorted by name."""
    with (data_dir / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return sorted(
        data_dir / row["file"]
        for row in rows
        if (int(row["width"]), int(row["height"])) == FULL_HD and (data_dir / row["file"]).is_file()
    )


def is_bright(frames: Sequence[np.ndarray]) -> bool:
    """Whether every frame is bright enough that exposure normalisation leaves it alone."""
    return all(mean_brightness(frame) >= DARK_MEAN for frame in frames)


def interleaved_pairs(
    baseline: Finder, candidate: Finder, clips: Sequence[Sequence[np.ndarray]], pairs: int
) -> list[dict[str, Any]]:
    """`pairs` rounds over `clips`: each round times both finders on every clip's frames, the
    baseline first in even rounds and the candidate first in odd ones. One record per clip and
    round: seconds (wall, CPU) of each and their ratios candidate / baseline, and the faces
    each found."""
    records = []
    for round_number in range(pairs):
        for clip_number, frames in enumerate(clips):
            order = ("baseline", "candidate") if round_number % 2 == 0 else ("candidate", "baseline")
            timed = {}
            for name in order:
                finder = baseline if name == "baseline" else candidate
                timed[name] = _timed(finder, frames)
            records.append(
                {
                    "round": round_number,
                    "clip": clip_number,
                    "first": order[0],
                    **{f"{name}_{key}": value for name, run in timed.items() for key, value in run.items()},
                    "wall_ratio": timed["candidate"]["wall_s"] / timed["baseline"]["wall_s"],
                    "cpu_ratio": timed["candidate"]["cpu_s"] / timed["baseline"]["cpu_s"],
                }
            )
    return records


def summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median and interquartile range of the wall and CPU ratios, and the total faces found."""
    out: dict[str, Any] = {"pairs": len(records)}
    for key in ("wall_ratio", "cpu_ratio"):
        values = np.array([r[key] for r in records], dtype=np.float64)
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        out[key] = {"median": float(median), "q1": float(q1), "q3": float(q3)}
    for name in ("baseline", "candidate"):
        out[f"{name}_faces_per_frame"] = float(
            np.mean([r[f"{name}_faces"] / r[f"{name}_frames"] for r in records])
        )
        out[f"{name}_ms_per_frame"] = float(
            1000 * np.median([r[f"{name}_cpu_s"] / r[f"{name}_frames"] for r in records])
        )
    return out


def _timed(finder: Finder, frames: Sequence[np.ndarray]) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    found = finder(frames)
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "frames": len(frames),
        "faces": sum(len(faces) for faces in found),
    }
