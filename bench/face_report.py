"""The face-recall benchmark's JSON as a markdown report."""

from __future__ import annotations

from typing import Any


def markdown(results: dict[str, Any]) -> str:
    """Setup, recall per condition and finder, false faces per 100 face-free frames."""
    m = results["machine"]
    finders = results["finders"]
    lines = [
        f"# fakewatch face recall: {m['cpu']}, {m['cores']} cores",
        "",
        f"- finders: {', '.join(f'`{name}` ({text})' for name, text in finders.items())}",
        (
            f"- ground truth: {len(results['clips'])} clips x {results['frames_per_clip']} sampled "
            f"frames in which plain MTCNN finds exactly one face: {', '.join(results['clips'])}"
        ),
        (
            f"- turned heads (`turned*` rows): {sum(results['turned_clips'].values())} frames in "
            "which plain MTCNN finds one face with the nose at least "
            f"{results['turned_nose_offset']} eye distances off the eyes' midline, from "
            + ", ".join(f"{name} ({n})" for name, n in results["turned_clips"].items())
        ),
        f"- face-free: {results['face_free_frames']} frames ({results['face_free_note']})",
        (
            "- a face counts as found when a detection overlaps its true box by IoU >= "
            f"{results['min_iou']}; face height is the true MTCNN box's height in the frame the "
            "detector sees"
        ),
        (
            f"- torch threads {m['torch_threads']}; load average before / after: "
            f"{_load(m['load_average_1_5_15'])} / {_load(results['load_average_after'])}"
        ),
        "",
        "## Faces found (share of frames)",
        "",
        "| condition | frames | brightness | face px | "
        + " | ".join(f"{n} | {n} turned | {n} ms/frame" for n in finders)
        + " |",
        "| --- | ---: | ---: | ---: | " + " | ".join("---: | ---: | ---:" for _ in finders) + " |",
    ]
    for row in results["recall"]:
        cells = []
        for name in finders:
            r = row["finders"][name]
            turned = "-" if r["turned_recall"] is None else f"{r['turned_recall']:.0%} of {row['turned_frames']}"
            cells.append(f"{r['recall']:.1%} | {turned} | {r['ms_per_frame']:.0f}")
        lines.append(
            f"| {row['condition']} | {row['frames']} | {row['mean_brightness']:.0f} | "
            f"{row['median_face_height_px']:.0f} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "## False faces on face-free frames (per 100 frames)",
        "",
        "| condition | frames | brightness | "
        + " | ".join(f"{n} | {n} ms/frame" for n in finders)
        + " |",
        "| --- | ---: | ---: | " + " | ".join("---: | ---:" for _ in finders) + " |",
    ]
    for row in results["false_faces"]:
        cells = [
            f"{row['finders'][n]['per_100_frames']:.1f} ({row['finders'][n]['false_faces']}) | "
            f"{row['finders'][n]['ms_per_frame']:.0f}"
            for n in finders
        ]
        lines.append(
            f"| {row['condition']} | {row['frames']} | {row['mean_brightness']:.0f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def _load(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)
