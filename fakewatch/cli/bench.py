"""`fakewatch bench`: time every stage of the detector against the decode floor and a naive reference.

The harness lives in the repository's `bench/` folder; run this command from the repository root.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click

from fakewatch.cli.common import bench_checkout

DEFAULT_LIMIT = 3
DEFAULT_MEMORY_RUNS = 50  # the issue: no memory growth across 50 consecutive videos
DEFAULT_REPEATS = 3
MEMORY_FRAMES = 8  # short detections: the memory check is about repetition, not size
GENERATED = ((1920, 1080, 250), (1280, 720, 250))  # width, height, frames of generated clips


@click.command()
@click.argument("videos", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the results as JSON here (a .md table and a .png plot go next to it).",
)
@click.option(
    "--frames",
    type=click.IntRange(1, 1024),
    default=32,
    show_default=True,
    help="Frames sampled per video.",
)
@click.option(
    "--reference/--no-reference",
    default=True,
    show_default=True,
    help="Also run the naive reference mode (OpenCV, MTCNN per frame, fp32, no overlap).",
)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Research clips to use when no VIDEOS are given.",
)
@click.option(
    "--repeats",
    type=click.IntRange(1),
    default=DEFAULT_REPEATS,
    show_default=True,
    help="Runs of each timed mode per video; the median run is reported.",
)
@click.option(
    "--memory-runs",
    type=click.IntRange(0),
    default=DEFAULT_MEMORY_RUNS,
    show_default=True,
    help="Consecutive detections for the memory-growth check (0 skips it).",
)
@click.option(
    "--concurrency",
    default="1,2,4",
    show_default=True,
    help="Videos in flight to measure throughput at, comma-separated ('' skips it).",
)
@click.option(
    "--concurrency-jobs",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="Videos run at each concurrency level.",
)
@click.option(
    "--registry",
    "registry_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Weights registry TOML (default: the project's).",
)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="Where the detector and the reference mode run: cpu, cuda or cuda:N.",
)
@click.option(
    "--models",
    "model_names",
    default=None,
    help="An ensemble name or comma-separated model ids (default: the registry's default ensemble).",
)
@click.option(
    "--stand-in-weights",
    is_flag=True,
    help="Time models whose weight files are missing with random weights of the same "
    "architecture (speed only: their scores mean nothing; the results name them).",
)
@click.option(
    "--reference-threads",
    type=click.IntRange(1),
    default=None,
    help="torch threads for the reference mode (default: torch's own default, one per core).",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="torch intra-op threads (default: torch's choice, one per core).",
)
def bench(
    videos: tuple[Path, ...],
    json_path: Path | None,
    frames: int,
    reference: bool,
    limit: int,
    repeats: int,
    memory_runs: int,
    concurrency: str,
    concurrency_jobs: int,
    registry_path: Path | None,
    device: str,
    model_names: str | None,
    stand_in_weights: bool,
    reference_threads: int | None,
    threads: int | None,
) -> None:
    """Benchmark the detector: stage timings, decode floor, reference mode, memory, throughput."""
    with bench_checkout():
        from bench import harness, report
        from bench.reference import ReferencePipeline
    import torch

    from models.config import DetectorConfig
    from models.detector import Detector

    # torch's default, one per core, unless asked: the naive mode does not tune threads.
    naive_threads = reference_threads or len(os.sched_getaffinity(0))
    if threads is not None:
        torch.set_num_threads(threads)
    levels = [int(x) for x in concurrency.split(",") if x.strip()]
    with tempfile.TemporaryDirectory(prefix="fakewatch-bench-") as scratch:
        registry_path, weights = _bench_registry(
            registry_path, model_names, stand_in_weights, Path(scratch)
        )
        paths = list(videos) or harness.default_videos(limit) or _generated(Path(scratch))
        click.echo(f"benchmarking {len(paths)} video(s); weights: {weights}", err=True)
        machine = harness.machine()
        detector = Detector(
            DetectorConfig(registry_path=registry_path, device=device, frames=frames)
        )
        detector.load()
        detector.warmup()
        in_effect = torch.get_num_threads()  # after the detector's own cap (models.device)
        ref = (
            ReferencePipeline(registry_path, detector.default_policy, naive_threads, device)
            if reference
            else None
        )
        rows = []
        for path in paths:
            rows.append(harness.measure_video(path, detector, frames, ref, repeats))
            click.echo(_line(rows[-1]), err=True)
        results = {
            "machine": machine,
            "weights": weights,
            "device": harness.device_description(detector.device),
            "models": [model.id for model in detector.models],
            "torch_threads": in_effect,
            "frames": frames,
            "videos": rows,
            "totals": harness.totals(rows),
            "memory": harness.memory_growth(
                detector, min(paths, key=lambda p: p.stat().st_size), memory_runs, MEMORY_FRAMES
            )
            if memory_runs
            else None,
            "concurrency": harness.concurrency(detector, paths, levels, concurrency_jobs, frames)
            if levels
            else [],
        }
        results["peak_rss_mb"] = harness.peak_rss_mb()
        results["peak_gpu_memory_mb"] = harness.peak_gpu_memory_mb(detector.device)
        results["load_average_after"] = list(os.getloadavg())
    table = report.markdown(results)
    click.echo(table)
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        json_path.with_suffix(".md").write_text(table)
        report.plot(results, json_path.with_suffix(".png"))
        click.echo(f"wrote {json_path} (+ .md, .png)", err=True)


def _bench_registry(
    registry_path: Path | None, model_names: str | None, stand_in: bool, scratch: Path
) -> tuple[Path | None, str]:
    """The registry to time and a line saying what weights it holds.

    Without --models or --stand-in-weights this is the given registry as it is; otherwise a
    registry in `scratch` whose default ensemble is the chosen models."""
    from bench.stand_in import stand_in_registry
    from models.registry import Registry

    registry = Registry.load(registry_path)
    names = [n.strip() for n in model_names.split(",")] if model_names else None
    missing = [e.file for e in registry.resolve(names) if not registry.path_of(e).is_file()]
    if missing and not stand_in:
        raise click.ClickException(
            f"weights are missing ({', '.join(missing)} in {registry.directory}); see "
            "`fakewatch weights list`, or time the architectures with --stand-in-weights"
        )
    source = registry_path or "weights/registry.toml"
    if names is None and not missing:
        return registry_path, f"trained ({source})"
    path, stand_ins = stand_in_registry(registry, names, scratch)
    if not stand_ins:
        return path, f"trained ({source}: {model_names})"
    return path, (
        f"random-weight stand-ins for {', '.join(stand_ins)} (timing only; scores meaningless)"
    )


def _generated(directory: Path) -> list[Path]:
    from bench.media import write_face_clip

    return [write_face_clip(directory / f"generated-{w}x{h}.mp4", w, h, n) for w, h, n in GENERATED]


def _line(row: dict) -> str:
    ours = row["ours"]["timings"]["total"]
    text = f"{row['file']}: floor {row['decode_floor_s']:.2f} s, ours {ours:.2f} s ({row['ratio_end_to_end_over_decode_floor']:.2f}x)"
    if "reference" in row:
        text += f", reference {row['reference']['timings']['total']:.2f} s ({row['ratio_reference_over_ours']:.2f}x slower)"
    return text
