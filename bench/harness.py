"""Measure the detector: per-stage timings, decode floor, reference mode, memory, concurrency.

Every figure comes from this process on this machine; the result is one JSON-ready dict.
"""

from __future__ import annotations

import csv
import gc
import os
import platform
import resource
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import av
import torch

from models.config import DetectOptions
from models.detector import STAGES, Detector
from models.device import cpu_supports_bf16
from models.video.sampling import FrameSampling, read_sampled_frames

# The research clips sit next to the repository (../shared/data/train), listed in labels.csv.
SHARED_TRAIN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train"
# Representative first: the 1080p DFD clips (the target), then 720p FF++, then 256px crops.
SUBSET_ORDER = ("dfd_c23", "dfd_c40", "ffpp_c23", "ffpp_c40", "dfdc_facecrops")
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
T = TypeVar("T")
MEMORY_WARMUP_RUNS = 5
FACE_MATCH_TOLERANCE = 0.05  # the issue: equal faces found "within 5%"
Log = Callable[[str], None]


def default_videos(limit: int, directory: Path = SHARED_TRAIN) -> list[Path]:
    """Up to `limit` research clips, round-robin over SUBSET_ORDER (1080p first); [] if absent."""
    listing = directory / "labels.csv"
    if not listing.is_file():
        return []
    by_subset: dict[str, list[Path]] = {s: [] for s in SUBSET_ORDER}
    with listing.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["subset"] in by_subset and (directory / row["file"]).is_file():
                by_subset[row["subset"]].append(directory / row["file"])
    queues = [sorted(paths) for paths in by_subset.values() if paths]
    chosen: list[Path] = []
    while len(chosen) < limit and any(queues):
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return chosen


def machine() -> dict[str, object]:
    """CPU, cores, relevant ISA flags, torch build and threads, load average now."""
    model, flags = platform.processor(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "flags": {flag: flag in flags for flag in CPU_FLAGS},
        "bf16_native": cpu_supports_bf16(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "av": av.__version__,
        "load_average_1_5_15": list(os.getloadavg()),
    }


def decode_floor(path: Path) -> float:
    """Seconds to decode every frame of the video straight through, converting none (PyAV)."""
    started = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass
    return time.perf_counter() - started


def sampled_decode(path: Path, frames: int) -> float:
    """Seconds for the project's own sampled decode (decode through, convert sampled frames)."""
    started = time.perf_counter()
    read_sampled_frames(path, FrameSampling(count=frames))
    return time.perf_counter() - started


def rss_mb() -> float:
    """Resident memory of this process now, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise OSError("no VmRSS in /proc/self/status")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def peak_gpu_memory_mb(device: torch.device) -> float | None:
    """Most GPU memory torch's allocator held at once in this process, MiB; None on CPU."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def device_description(device: torch.device) -> str:
    """"cpu", or the GPU's name and memory, for the results' header."""
    if device.type != "cuda":
        return "cpu"
    properties = torch.cuda.get_device_properties(device)
    return f"{properties.name}, {properties.total_memory / 2**30:.0f} GiB (torch {torch.version.cuda} CUDA)"


def _median_run(
    run: Callable[[], T], repeats: int, seconds: Callable[[T], float]
) -> tuple[T, list[float]]:
    """Run `repeats` times; the run with the median time, and every run's time (in order).

    Other processes on a small machine move single timings by 20% or more; the median of a few
    runs, with the spread alongside, is what a ratio should be built from."""
    runs = [run() for _ in range(repeats)]
    times = [seconds(r) for r in runs]
    median = sorted(range(repeats), key=times.__getitem__)[(repeats - 1) // 2]
    return runs[median], times


def measure_video(
    path: Path, detector: Detector, frames: int, reference: object | None, repeats: int = 1
) -> dict[str, object]:
    """Every timing for one video, each the median of `repeats` runs: floors, our stages, and
    the reference mode when given."""
    path.read_bytes()  # page cache warm for every mode alike
    floor, floor_runs = _median_run(lambda: decode_floor(path), repeats, lambda t: t)
    sampled, _ = _median_run(lambda: sampled_decode(path, frames), repeats, lambda t: t)
    result, ours_runs = _median_run(
        lambda: detector.detect(path, DetectOptions(frames=frames)), repeats,
        lambda r: r.timings["total"],
    )
    ours_faces = sum(len(f.faces) for f in result.frames)
    row: dict[str, object] = {
        "file": path.name,
        "resolution": f"{result.video.width}x{result.video.height}",
        "repeats": repeats,
        "decode_floor_s": floor,
        "decode_floor_runs_s": floor_runs,
        "sampled_decode_s": sampled,
        "ours": {
            "timings": {stage: result.timings.get(stage, 0.0) for stage in (*STAGES, "total")},
            "total_runs_s": ours_runs,
            "faces": ours_faces,
            "sampled_frames": result.sampled_frames,
            "probability": result.probability,
        },
        "ratio_end_to_end_over_decode_floor": result.timings["total"] / floor,
        "ratio_end_to_end_over_sampled_decode": result.timings["total"] / sampled,
    }
    if reference is not None:
        ref, ref_runs = _median_run(
            lambda: reference.run(path, frames), repeats, lambda r: r["timings"]["total"]
        )
        row["reference"] = {**ref, "total_runs_s": ref_runs}
        row["ratio_reference_over_ours"] = ref["timings"]["total"] / result.timings["total"]
        row["faces_match"] = _faces_match(ours_faces, ref["faces"])
    return row


def _faces_match(ours: int, reference: int) -> bool:
    return abs(ours - reference) <= FACE_MATCH_TOLERANCE * max(ours, reference, 1)


def memory_growth(detector: Detector, video: Path, runs: int, frames: int) -> dict[str, object]:
    """RSS after each of `runs` consecutive detections of one video; growth is counted from the
    end of warm-up (`MEMORY_WARMUP_RUNS`: allocator pools and lazy initialisation settle in the
    first few videos), so that it measures a leak, not a start."""
    samples = []
    for _ in range(runs):
        detector.detect(video, DetectOptions(frames=frames))
        gc.collect()
        samples.append(rss_mb())
    settled = samples[min(MEMORY_WARMUP_RUNS, len(samples)) - 1]
    return {
        "video": video.name,
        "runs": runs,
        "frames": frames,
        "warmup_runs": min(MEMORY_WARMUP_RUNS, len(samples)),
        "rss_first_mb": samples[0],
        "rss_after_warmup_mb": settled,
        "rss_last_mb": samples[-1],
        "rss_max_mb": max(samples),
        "growth_mb": samples[-1] - settled,
    }


def concurrency(
    detector: Detector, videos: Sequence[Path], levels: Sequence[int], jobs: int, frames: int
) -> list[dict[str, object]]:
    """Throughput with 1, 2, 4... videos in flight (threads sharing one loaded detector)."""
    work = [videos[i % len(videos)] for i in range(jobs)]
    rows = []
    for level in levels:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=level) as pool:
            list(pool.map(lambda v: detector.detect(v, DetectOptions(frames=frames)), work))
        wall = time.perf_counter() - started
        rows.append(
            {
                "in_flight": level,
                "videos": jobs,
                "wall_s": wall,
                "videos_per_minute": 60 * jobs / wall,
            }
        )
    return rows


def totals(rows: Sequence[dict[str, object]]) -> dict[str, object]:
    """Sums over videos and the overall ratios."""
    ours_total = sum(r["ours"]["timings"]["total"] for r in rows)
    floor_total = sum(r["decode_floor_s"] for r in rows)
    summary: dict[str, object] = {
        "videos": len(rows),
        "decode_floor_s": floor_total,
        "sampled_decode_s": sum(r["sampled_decode_s"] for r in rows),
        "ours": {
            stage: sum(r["ours"]["timings"][stage] for r in rows) for stage in (*STAGES, "total")
        },
        "ours_faces": sum(r["ours"]["faces"] for r in rows),
        "ours_videos_per_minute": 60 * len(rows) / ours_total,
        "ratio_end_to_end_over_decode_floor": ours_total / floor_total,
        "worst_ratio_end_to_end_over_decode_floor": max(
            r["ratio_end_to_end_over_decode_floor"] for r in rows
        ),
    }
    if rows and all("reference" in r for r in rows):
        ref_total = sum(r["reference"]["timings"]["total"] for r in rows)
        summary["reference"] = {
            stage: sum(r["reference"]["timings"].get(stage, 0.0) for r in rows)
            for stage in (*STAGES, "total")
        }
        summary["reference_faces"] = sum(r["reference"]["faces"] for r in rows)
        summary["reference_videos_per_minute"] = 60 * len(rows) / ref_total
        summary["ratio_reference_over_ours"] = ref_total / ours_total
        summary["faces_match"] = _faces_match(summary["ours_faces"], summary["reference_faces"])
    return summary
