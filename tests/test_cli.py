"""The CLI as a user runs it: scan, eval and weights on real files with tiny real models."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakewatch.cli import main
from models.evaluation import binary_metrics
from models.schema import DetectionResult
from tests.tiny_models import write_test_registry

FAST = ["--frames", "6", "--device", "cpu", "--threads", "2"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_registry(tmp_path_factory.mktemp("cli-registry"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, face_video: Path, two_face_video: Path,
           blank_video: Path) -> Path:
    """A tiny labeled folder: two videos with faces and one without."""
    root = tmp_path_factory.mktemp("labeled")
    for source, name in ((face_video, "a.mp4"), (two_face_video, "b.mp4"), (blank_video, "c.mp4")):
        shutil.copy(source, root / name)
    (root / "labels.csv").write_text("file,label,group\na.mp4,FAKE,1\nb.mp4,REAL,2\nc.mp4,FAKE,3\n")
    return root


def run(*args: str) -> "click.testing.Result":  # noqa: F821
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def test_scan_json_is_exactly_the_result_object(registry: Path, face_video: Path) -> None:
    out = run("scan", str(face_video), "--json", "--registry", str(registry), *FAST)
    assert out.exit_code == 0, out.output
    result = DetectionResult.model_validate_json(out.stdout)
    assert result.status == "ok" and result.sampled_frames == 6
    assert json.loads(out.stdout)["frames_without_face"] == 0


def test_scan_several_prints_json_lines(registry: Path, folder: Path) -> None:
    out = run("scan", str(folder / "a.mp4"), str(folder / "c.mp4"), "--json", "--registry", str(registry), *FAST)
    lines = [DetectionResult.model_validate_json(line) for line in out.stdout.splitlines()]
    assert [(r.file, r.status) for r in lines] == [("a.mp4", "ok"), ("c.mp4", "no_face")]


def test_scan_folder_readable_and_csv(registry: Path, folder: Path, tmp_path: Path) -> None:
    submission = tmp_path / "submission.csv"
    out = run("scan", str(folder), "--csv", str(submission), "--registry", str(registry), *FAST)
    assert out.exit_code == 0, out.output
    assert "NO FACE" in out.stdout and "c.mp4" in out.stdout
    assert "person 0" in out.stdout and "person 1" in out.stdout
    assert "6 frames, 0 without a face" in out.stdout
    rows = list(csv.reader(submission.open()))
    assert rows[0] == ["filename", "label"]
    labels = dict(rows[1:])
    assert set(labels) == {"a.mp4", "b.mp4", "c.mp4"}
    assert labels["c.mp4"] == ""  # no face: no number
    assert 0.0 <= float(labels["a.mp4"]) <= 1.0


def test_scan_reports_bad_files_and_goes_on(registry: Path, bad_files: dict[str, Path], face_video: Path) -> None:
    out = run("scan", str(bad_files["text"]), str(face_video), "--registry", str(registry), *FAST)
    assert out.exit_code == 1
    assert "ERROR" in out.stderr and bad_files["text"].name in out.stderr
    assert face_video.name in out.stdout


def test_scan_without_weights_says_which_file(tmp_path: Path, face_video: Path) -> None:
    registry = write_test_registry(tmp_path)
    (tmp_path / "tiny-meso.safetensors").unlink()
    out = run("scan", str(face_video), "--registry", str(registry), *FAST)
    assert out.exit_code != 0
    assert "tiny-meso.safetensors" in out.stderr


def test_eval_numbers_match_the_scores(registry: Path, folder: Path, tmp_path: Path) -> None:
    roc = tmp_path / "roc.png"
    out = run("eval", str(folder), "--json", "--roc", str(roc), "--registry", str(registry), *FAST)
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    scanned = {
        r.file: r
        for r in map(DetectionResult.model_validate_json,
                     run("scan", str(folder), "--json", "--registry", str(registry), *FAST).stdout.splitlines())
    }
    expected = binary_metrics([1, 0], [scanned["a.mp4"].probability, scanned["b.mp4"].probability], 0.5)
    expected_video = expected.model_dump()
    assert report["video"].pop("confusion_matrix") == expected_video.pop("confusion_matrix")
    assert report["video"] == pytest.approx(expected_video)
    assert report["no_face"] == [str(folder / "c.mp4")]
    frames = sum(1 for name in ("a.mp4", "b.mp4") for f in scanned[name].frames if f.faces)
    assert report["frame"]["count"] == frames
    assert roc.read_bytes()[:4] == b"\x89PNG"
    table = run("eval", str(folder), "--roc", str(roc), "--registry", str(registry), *FAST).stdout
    assert "AUC" in table and "confusion" in table


def test_eval_compare_scores_every_model_on_the_same_faces(registry: Path, folder: Path,
                                                          tmp_path: Path) -> None:
    from models.comparison import load_clip_scores, video_scores

    scores = tmp_path / "scores.jsonl"
    out = run("eval", str(folder), "--compare", "--scores", str(scores), "--registry", str(registry),
              *FAST)
    assert out.exit_code == 0, out.output
    rows = {line.split("|")[1].strip(): line for line in out.stdout.splitlines()
            if line.startswith(("| tiny", "| default"))}
    assert set(rows) == {"tiny-meso", "tiny-hybrid", "default"}
    clips = load_clip_scores(scores)
    assert len(clips) == 3 and sum(c.scores is None for c in clips) == 1
    assert "3 clips scored, 1 without a face" in out.stdout
    # Three clips hold too few sources to cross-fit temperatures: the table says it is in-sample.
    assert "not cross-fitted" in out.stdout and "in-sample" in out.stdout
    scanned = {
        r.file: r.probability
        for r in map(DetectionResult.model_validate_json,
                     run("scan", str(folder), "--json", "--registry", str(registry), *FAST).stdout.splitlines())
    }
    ensemble = {Path(s.file).name: s.probability
                for s in video_scores(clips, ["tiny-meso", "tiny-hybrid"], "confident")}
    assert ensemble == pytest.approx({name: scanned[name] for name in ("a.mp4", "b.mp4")}, abs=1e-6)
    alone = video_scores(clips, ["tiny-meso"], "confident")
    assert [s.probability for s in alone] != [ensemble[Path(s.file).name] for s in alone]


def test_weights_list_and_verify(tmp_path: Path) -> None:
    registry = write_test_registry(tmp_path)
    listing = run("weights", "list", "--registry", str(registry))
    assert listing.exit_code == 0, listing.output
    assert "tiny-meso" in listing.stdout and "present" in listing.stdout
    assert run("weights", "verify", "--registry", str(registry)).exit_code == 0
    (registry.parent / "tiny-meso.safetensors").write_bytes(b"tampered")
    bad = run("weights", "verify", "--registry", str(registry))
    assert bad.exit_code != 0 and "tiny-meso" in bad.output


def test_console_script_runs(registry: Path, face_video: Path) -> None:
    """The installed `fakewatch` entry point, as a user types it."""
    exe = Path(sys.executable).with_name("fakewatch")
    done = subprocess.run(
        [str(exe), "scan", str(face_video), "--json", "--registry", str(registry), *FAST],
        check=False, capture_output=True, text=True, timeout=180, env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    assert DetectionResult.model_validate_json(done.stdout).status == "ok"


@pytest.mark.shared_data
def test_scan_finds_faces_in_research_clips(registry: Path, shared_train_dir: Path) -> None:
    """One clip of each source family: faces in most sampled frames."""
    rows = list(csv.DictReader((shared_train_dir / "labels.csv").open()))
    clips = [
        next(shared_train_dir / r["file"] for r in rows if r["subset"] == subset)
        for subset in ("dfdc_facecrops", "ffpp_c23", "dfd_c40")
    ]
    out = run("scan", *map(str, clips), "--json", "--registry", str(registry), "--frames", "8",
              "--device", "cpu")
    assert out.exit_code == 0, out.output
    results = [DetectionResult.model_validate_json(line) for line in out.stdout.splitlines()]
    assert [r.file for r in results] == [c.name for c in clips]
    for result in results:
        with_face = sum(1 for frame in result.frames if frame.faces)
        assert result.status == "ok" and with_face >= 0.75 * result.sampled_frames, result.file


def test_scan_folder_takes_every_format_the_service_takes(registry: Path, tmp_path: Path) -> None:
    """A folder scan recognises files by their bytes, as the API does: a GIF is scanned, a labels
    file is not, and a video named without a suffix is not skipped."""
    from tests.media import make_face_image, make_face_video

    make_face_image(tmp_path / "still.gif")
    make_face_video(tmp_path / "clip.mp4").rename(tmp_path / "clip")  # no suffix: its bytes say mp4
    (tmp_path / "labels.csv").write_text("file,label\nstill.gif,REAL\n")
    out = run("scan", str(tmp_path), "--json", "--registry", str(registry), *FAST)
    assert out.exit_code == 0, out.output
    results = [DetectionResult.model_validate_json(line) for line in out.stdout.splitlines()]
    assert sorted((r.file, r.status) for r in results) == [("clip", "ok"), ("still.gif", "ok")]
    assert all(r.threshold == 0.5 and r.preset is None for r in results)  # no presets measured
