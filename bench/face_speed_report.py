"""The face-speed benchmark's JSON as a markdown report."""

from __future__ import annotations

from typing import Any


def markdown(results: dict[str, Any]) -> str:
    """Setup, the ratio candidate / baseline (median and IQR), and every pair."""
    m, s = results["machine"], results["summary"]
    load = ", ".join(f"{v:.2f}" for v in m["load_average_1_5_15"])
    load_after = ", ".join(f"{v:.2f}" for v in results["load_average_after"])
    lines = [
        f"# fakewatch face finder speed: {m['cpu']}, {m['cores']} cores",
        "",
        f"- baseline (A): {results['baseline']}",
        f"- candidate (B): {results['candidate']}",
        (f"- {len(results['clips'])} bright 1920x1080 clips x {results['frames_per_clip']} sampled "
        f"frames, each finder given a clip's frames in one call: {', '.join(results['clips'])}"),
        f"- {s['pairs']} interleaved pairs (A then B, then B then A, ...); ratio = B / A per pair",
        f"- torch threads {m['torch_threads']}; load average before / after: {load} / {load_after}",
        "",
        "| ratio B / A | median | IQR |",
        "| --- | ---: | ---: |",
    ]
    for key, label in (("cpu_ratio", "CPU time"), ("wall_ratio", "wall time")):
        r = s[key]
        lines.append(f"| {label} | {r['median']:.3f} | {r['q1']:.3f} - {r['q3']:.3f} |")
    lines += [
        "",
        (f"A: {s['baseline_ms_per_frame']:.0f} ms CPU per frame, {s['baseline_faces_per_frame']:.2f} "
        f"faces per frame; B: {s['candidate_ms_per_frame']:.0f} ms, "
        f"{s['candidate_faces_per_frame']:.2f} faces per frame (CPU time: median over pairs)."),
        "",
        "| round | clip | first | A CPU s | B CPU s | CPU ratio | wall ratio |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results["pairs"]:
        lines.append(
            f"| {r['round']} | {r['clip']} | {'A' if r['first'] == 'baseline' else 'B'} | "
            f"{r['baseline_cpu_s']:.2f} | {r['candidate_cpu_s']:.2f} | {r['cpu_ratio']:.3f} | "
            f"{r['wall_ratio']:.3f} |"
        )
    return "\n".join(lines) + "\n"
