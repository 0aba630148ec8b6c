"""The face-recall benchmark: its hard conditions on real frames, and the command end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.face_conditions import CANVAS, CONDITIONS, Scene, darken, mean_brightness, shrink
from bench.face_free import background_sequence, collage_sequence
from bench.face_truth import candidate_files, hit, is_turned
from fakewatch.cli.bench_faces import bench_faces
from tests import media


def astronaut_scene() -> Scene:
    (box,) = media.pasted_head_boxes(0)
    return Scene(media.face_frame(0), tuple(float(v) for v in box))


@pytest.mark.parametrize("target", [25.0, 30.0, 40.0])
def test_darkening_reaches_the_asked_mean_brightness(target: float) -> None:
    dark = darken(target)(astronaut_scene(), np.random.default_rng(0))
    assert mean_brightness(dark.image) == pytest.approx(target, abs=1.0)


@pytest.mark.slow
@pytest.mark.parametrize("height", [60, 80])
def test_a_shrunk_face_is_that_high_in_1080p_where_the_box_says(face_detector, height: int) -> None:
    """Real MTCNN finds the shrunk face where the carried box says it is."""
    (found,) = face_detector.detect([media.face_frame(0)])
    truth = Scene(media.face_frame(0), tuple(float(v) for v in found[0].box))
    small = shrink(height)(truth, np.random.default_rng(1))
    assert small.image.shape == (CANVAS[1], CANVAS[0], 3)
    assert small.face[3] - small.face[1] == pytest.approx(height, abs=0.5)
    (again,) = face_detector.detect([small.image])
    assert hit(again, small.face, min_iou=0.5)


def test_every_condition_keeps_size_and_box_consistent() -> None:
    scene = astronaut_scene()
    for name, transform in CONDITIONS.items():
        out = transform(scene, np.random.default_rng(2))
        assert out.image.dtype == np.uint8 and out.image.ndim == 3, name
        x1, y1, x2, y2 = out.face
        assert 0 <= x1 < x2 <= out.image.shape[1] and 0 <= y1 < y2 <= out.image.shape[0], name


def test_turned_heads_are_told_by_the_nose() -> None:
    frontal = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], dtype=np.float32)
    turned = frontal.copy()
    turned[2, 0] = 66  # nose 16 px off the eyes' midline, 0.4 eye distances
    assert not is_turned(frontal) and is_turned(turned)


def test_face_free_frames_are_1080p_and_leave_the_face_out() -> None:
    scene = astronaut_scene()
    (strip,) = background_sequence([scene])
    assert strip.shape == (CANVAS[1], CANVAS[0], 3)
    collages = collage_sequence(np.random.default_rng(0), 3)
    assert [c.shape for c in collages] == [(CANVAS[1], CANVAS[0], 3)] * 3
    assert not np.array_equal(collages[0], collages[1])  # panned


def test_candidates_are_one_clip_per_group(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text(
        "file,group,subset\nb/1.mp4,g1,b\nb/2.mp4,g1,b\na/3.mp4,g2,a\nb/4.mp4,g3,b\n"
    )
    assert candidate_files(tmp_path) == ["a/3.mp4", "b/1.mp4", "b/4.mp4"]


@pytest.mark.slow
def test_bench_faces_end_to_end(
    tmp_path: Path, face_video: Path, two_face_video: Path, blank_video: Path
) -> None:
    out = tmp_path / "faces.json"
    run = CliRunner().invoke(
        bench_faces,
        [str(two_face_video), str(blank_video), str(face_video), "--clips", "2", "--frames", "3",
         "--face-free", "2", "--conditions", "clean,dark30,small80", "--threads", "1",
         "--json", str(out)],
        catch_exceptions=False,
    )
    assert run.exit_code == 0, run.output
    results = json.loads(out.read_text())
    assert results["clips"] == ["face.mp4"]  # two faces, or none: not ground truth
    assert [row["condition"] for row in results["recall"]] == ["clean", "dark30", "small80"]
    clean, dark, small = results["recall"]
    assert clean["frames"] == 3 and clean["finders"]["mtcnn"]["recall"] == 1.0
    assert dark["mean_brightness"] == pytest.approx(30, abs=1)
    assert small["median_face_height_px"] == pytest.approx(80, abs=1)
    assert [row["condition"] for row in results["false_faces"]] == ["clean", "dark30"]
    assert results["face_free_frames"] == 6
    assert out.with_suffix(".md").read_text().startswith("# fakewatch face recall")


def test_missing_research_data_says_what_to_give(tmp_path: Path) -> None:
    run = CliRunner().invoke(bench_faces, ["--data", str(tmp_path / "nowhere")])
    assert run.exit_code != 0 and "--data or VIDEOS" in run.output


@pytest.mark.shared_data
def test_research_clips_give_ground_truth(shared_train_dir: Path, face_detector) -> None:
    from bench.face_truth import truth_clips

    paths = [shared_train_dir / name for name in candidate_files(shared_train_dir)]
    (clip,) = truth_clips(paths, face_detector.detect, clips=1, frames=3, root=shared_train_dir)
    assert len(clip.scenes) == 3 and (shared_train_dir / clip.file).is_file()


@pytest.mark.slow
def test_turned_frames_are_those_with_one_strongly_turned_face(face_detector, media_dir: Path) -> None:
    """The cameraman looks through his camera (the nose about half an eye distance off the
    eyes' midline); the astronaut faces the camera. They take turns, three frames each."""
    from bench.face_truth import STRONGLY_TURNED_NOSE_OFFSET, nose_offset, turned_clips

    video = media.make_turns_video(media_dir / "turns_for_turned.mp4", frames=12)
    (clip,) = turned_clips([video], face_detector.detect, frames=10, per_clip=5, scan=12)
    assert clip.file == "turns_for_turned.mp4" and clip.turned == [True] * 5
    for scene in clip.scenes:
        (face,) = face_detector.detect([scene.image])[0]
        assert nose_offset(face.landmarks) >= STRONGLY_TURNED_NOSE_OFFSET
        assert face.box[0] == pytest.approx(scene.face[0])
    (short,) = turned_clips([video, video], face_detector.detect, frames=2, per_clip=5, scan=12)
    assert len(short.scenes) == 2  # stops once enough frames are found


def test_turned_conditions_keep_the_face_box() -> None:
    from bench.face_conditions import TURNED_CONDITIONS

    scene = astronaut_scene()
    for name, transform in TURNED_CONDITIONS.items():
        out = transform(scene, np.random.default_rng(3))
        x1, y1, x2, y2 = out.face
        assert 0 <= x1 < x2 <= out.image.shape[1] and 0 <= y1 < y2 <= out.image.shape[0], name
