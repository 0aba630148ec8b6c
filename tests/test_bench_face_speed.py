"""The interleaved A/B timing of the face finder against plain MTCNN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.face_speed import interleaved_pairs, is_bright, summary
from bench.media import write_face_clip
from fakewatch.cli.bench_face_speed import bench_face_speed
from tests import media


def test_pairs_alternate_which_finder_goes_first_and_keep_ratios() -> None:
    calls: list[str] = []

    def finder(name: str):
        def detect(frames):
            calls.append(name)
            return [[] for _ in frames]

        return detect

    clips = [[np.zeros((4, 4, 3), np.uint8)]] * 2
    records = interleaved_pairs(finder("a"), finder("b"), clips, pairs=3)
    assert calls == ["a", "b", "a", "b", "b", "a", "b", "a", "a", "b", "a", "b"]
    assert [(r["round"], r["clip"], r["first"]) for r in records] == [
        (0, 0, "baseline"), (0, 1, "baseline"), (1, 0, "candidate"), (1, 1, "candidate"),
        (2, 0, "baseline"), (2, 1, "baseline"),
    ]
    for r in records:
        assert r["wall_ratio"] == pytest.approx(r["candidate_wall_s"] / r["baseline_wall_s"])


def test_summary_gives_the_median_and_quartiles_of_the_ratios() -> None:
    records = [
        {"wall_ratio": w, "cpu_ratio": c, "baseline_faces": 2, "baseline_frames": 2,
         "candidate_faces": 2, "candidate_frames": 2, "baseline_cpu_s": 1.0, "candidate_cpu_s": c}
        for w, c in [(1.0, 1.00), (1.2, 1.02), (0.9, 1.04), (3.0, 1.06), (1.1, 1.08)]
    ]
    out = summary(records)
    assert out["pairs"] == 5
    assert out["cpu_ratio"] == {"median": pytest.approx(1.04), "q1": pytest.approx(1.02),
                                "q3": pytest.approx(1.06)}
    assert out["wall_ratio"]["median"] == pytest.approx(1.1)  # the 3.0 outlier does not move it
    assert out["candidate_faces_per_frame"] == 1.0


def test_dark_frames_are_not_bright() -> None:
    frame = media.face_frame(0)
    assert is_bright([frame]) and not is_bright([frame, (frame // 4).astype(np.uint8)])


@pytest.mark.slow
def test_bench_face_speed_end_to_end(tmp_path: Path) -> None:
    clip = write_face_clip(tmp_path / "bright.mp4", 1920, 1080, frames=6)
    out = tmp_path / "speed.json"
    run = CliRunner().invoke(
        bench_face_speed,
        [str(clip), "--frames", "2", "--pairs", "2", "--json", str(out)],
        catch_exceptions=False,
    )
    assert run.exit_code == 0, run.output
    results = json.loads(out.read_text())
    assert results["clips"] == ["bright.mp4"] and len(results["pairs"]) == 2
    s = results["summary"]
    assert s["baseline_faces_per_frame"] == s["candidate_faces_per_frame"] == 1.0
    assert 0 < s["cpu_ratio"]["q1"] <= s["cpu_ratio"]["median"] <= s["cpu_ratio"]["q3"]
    assert out.with_suffix(".md").read_text().startswith("# fakewatch face finder speed")


def test_missing_research_data_says_what_to_give(tmp_path: Path) -> None:
    run = CliRunner().invoke(bench_face_speed, ["--data", str(tmp_path / "nowhere")])
    assert run.exit_code != 0 and "--data or VIDEOS" in run.output
