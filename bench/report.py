"""The benchmark's JSON as a readable markdown table and a stage-breakdown plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.detector import STAGES


def markdown(results: dict[str, Any]) -> str:
    """Machine, per-video stages (ours / reference), totals, ratios, memory and concurrency."""
    m = results["machine"]
    lines = [
        f"# fakewatch benchmark: {m['cpu']}, {m['cores']} cores",
        "",
        f"- device: {results.get('device', 'cpu')}; models: {', '.join(results.get('models', []))}",
        f"- weights: {results['weights']}",
        (
            f"- frames per video: {results['frames']}; torch {m['torch']}, "
            f"{results['torch_threads']} threads; bf16 native: {m['bf16_native']}; flags: "
            + ", ".join(f for f, on in m["flags"].items() if on)
        ),
        (
            f"- load average before / after: {_load(m['load_average_1_5_15'])} / "
            f"{_load(results['load_average_after'])}"
        ),
        f"- peak RSS: {results['peak_rss_mb']:.0f} MiB" + _gpu_memory(results),
        f"- reference mode torch threads: {_reference_threads(results)}",
        "",
        "## Per video (seconds)",
        "",
        "| video | res | floor | sampled | mode | "
        + " | ".join(STAGES)
        + " | total | runs | faces | ratio |",
        "| --- | --- | ---: | ---: | --- | "
        + " | ".join("---:" for _ in STAGES)
        + " | ---: | ---: | ---: | ---: |",
    ]
    for row in results["videos"]:
        modes = [("ours", row["ours"], row["ratio_end_to_end_over_decode_floor"])]
        if "reference" in row:
            modes.append(("reference", row["reference"], row["ratio_reference_over_ours"]))
        for name, mode, ratio in modes:
            stages = " | ".join(f"{mode['timings'].get(s, 0.0):.2f}" for s in STAGES)
            lines.append(
                f"| {row['file'][:40]} | {row['resolution']} | {row['decode_floor_s']:.2f} | "
                f"{row['sampled_decode_s']:.2f} | {name} | {stages} | "
                f"{mode['timings']['total']:.2f} | {_runs(mode)} | {mode['faces']} | {ratio:.2f} |"
            )
    lines += [
        "",
        "ratio: ours = end-to-end / decode floor; reference = reference total / ours total.",
        "Each figure is the median of the runs per mode (`repeats` in the JSON, every run's time beside it).",
        "The overlapped pipeline decodes while MTCNN runs, so its stages can sum to more than its total.",
        "",
        "## Totals",
        "",
    ]
    t = results["totals"]
    lines.append(
        f"- (a) end-to-end / decode floor: **{t['ratio_end_to_end_over_decode_floor']:.2f}x** "
        f"(worst video {t['worst_ratio_end_to_end_over_decode_floor']:.2f}x)"
    )
    if "ratio_reference_over_ours" in t:
        lines.append(
            f"- (b) reference / ours: **{t['ratio_reference_over_ours']:.2f}x** at faces "
            f"{t['ours_faces']} (ours) vs {t['reference_faces']} (reference), "
            f"match within 5%: {t['faces_match']}"
        )
        lines.append(
            f"- throughput: ours {_rate(t['ours_videos_per_minute'])}, reference "
            f"{_rate(t['reference_videos_per_minute'])}"
        )
    else:
        lines.append(f"- throughput: ours {_rate(t['ours_videos_per_minute'])}")
    if results.get("memory"):
        mem = results["memory"]
        lines += [
            "",
            "## Memory",
            "",
            (
                f"{mem['runs']} consecutive detections of {mem['video']} "
                f"({mem['frames']} frames): RSS first {mem['rss_first_mb']:.0f} MiB, after "
                f"{mem['warmup_runs']} warm-up videos {mem['rss_after_warmup_mb']:.0f} MiB, "
                f"last {mem['rss_last_mb']:.0f} MiB, max {mem['rss_max_mb']:.0f} MiB; "
                f"growth after warm-up {mem['growth_mb']:+.1f} MiB."
            ),
        ]
    if results.get("concurrency"):
        lines += [
            "",
            "## Videos in flight (threads sharing one detector)",
            "",
            "| in flight | videos | wall s | videos/min |",
            "| ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {c['in_flight']} | {c['videos']} | {c['wall_s']:.1f} | {c['videos_per_minute']:.1f} |"
            for c in results["concurrency"]
        ]
    return "\n".join(lines) + "\n"


def _rate(per_minute: float) -> str:
    return f"{per_minute:.1f} videos/min ({per_minute / 60:.2f} videos/s)"


def _gpu_memory(results: dict[str, Any]) -> str:
    peak = results.get("peak_gpu_memory_mb")
    return "" if peak is None else f"; peak GPU memory (torch allocator): {peak:.0f} MiB"


def _runs(mode: dict[str, Any]) -> str:
    return " / ".join(f"{t:.2f}" for t in mode.get("total_runs_s", []))


def _reference_threads(results: dict[str, Any]) -> str:
    threads = {row["reference"]["torch_threads"] for row in results["videos"] if "reference" in row}
    return ", ".join(map(str, sorted(threads))) or "not run"


def _load(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def plot(results: dict[str, Any], path: Path) -> None:
    """Stacked bars per video and mode: each stage's seconds, with the decode floor marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, bottoms, floors = [], [], []
    series: dict[str, list[float]] = {s: [] for s in STAGES}
    for row in results["videos"]:
        for mode in ("ours", "reference"):
            if mode in row:
                labels.append(f"{row['file'][:18]}\n{mode}")
                floors.append(row["decode_floor_s"])
                for stage in STAGES:
                    series[stage].append(row[mode]["timings"].get(stage, 0.0))
    figure, axis = plt.subplots(figsize=(max(6, 1.2 * len(labels)), 4.5))
    bottoms = [0.0] * len(labels)
    for stage, values in series.items():
        axis.bar(range(len(labels)), values, bottom=bottoms, label=stage)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    axis.scatter(range(len(labels)), floors, marker="_", s=600, color="black", label="decode floor")
    axis.set_xticks(range(len(labels)), labels, fontsize=7)
    axis.set_ylabel("seconds (stages; ours overlaps decode and detection)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
