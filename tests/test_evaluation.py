"""Metrics against hand-computed values, and labeled listings in all three layouts."""

import json
import math
from pathlib import Path

import pytest

from models.datasets import FAKE, REAL, list_labeled_videos
from models.errors import ConfigError
from models.evaluation import ScoredVideo, binary_metrics, evaluate, plot_roc


def test_binary_metrics_hand_worked() -> None:
    m = binary_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], threshold=0.5)
    # Fake/real pairs ranked right: (0.4>0.1), (0.9>0.1), (0.9>0.6); wrong: (0.4<0.6) -> 3/4.
    assert m.auc == pytest.approx(0.75)
    assert m.log_loss == pytest.approx(-(2 * math.log(0.9) + 2 * math.log(0.4)) / 4)
    assert m.confusion_matrix == [[1, 1], [1, 1]]
    assert (m.accuracy, m.precision, m.recall, m.f1) == pytest.approx((0.5, 0.5, 0.5, 0.5))
    assert (m.count, m.fakes, m.reals) == (4, 2, 2)


def test_threshold_moves_the_labels_not_the_auc() -> None:
    low = binary_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], threshold=0.3)
    assert low.confusion_matrix == [[1, 1], [0, 2]]
    assert low.recall == 1.0 and low.precision == pytest.approx(2 / 3)
    assert low.auc == pytest.approx(0.75)


def test_one_class_has_no_auc_but_a_log_loss() -> None:
    m = binary_metrics([1, 1], [0.8, 0.5], threshold=0.5)
    assert m.auc is None
    assert m.log_loss == pytest.approx(-(math.log(0.8) + math.log(0.5)) / 2)


def test_no_face_videos_are_listed_not_scored(tmp_path: Path) -> None:
    videos = [
        ScoredVideo("a.mp4", FAKE, 0.9, [0.8, 1.0], "x"),
        ScoredVideo("b.mp4", REAL, 0.2, [0.2], "y"),
        ScoredVideo("c.mp4", FAKE, None, []),
    ]
    report = evaluate(videos, 0.5, {"d.mp4": "no video stream"})
    assert report.video.count == 2 and report.video.auc == 1.0
    assert report.frame.count == 3
    assert report.no_face == ["c.mp4"]
    assert report.errors == {"d.mp4": "no video stream"}
    assert set(report.video_by_subset) == {"x", "y"}
    plot_roc(videos, tmp_path / "roc.png")
    assert (tmp_path / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_labels_csv(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("file,label,group\nx/a.mp4,FAKE,g1\nb.mp4,real,g2\nc.mp4,1,\n")
    videos = list_labeled_videos(tmp_path)
    assert [(v.path.name, v.label, v.group) for v in videos] == [
        ("a.mp4", FAKE, "g1"), ("b.mp4", REAL, "g2"), ("c.mp4", FAKE, "c.mp4")
    ]
    assert videos[0].path == tmp_path / "x/a.mp4"


def test_bad_label_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("file,label\na.mp4,maybe\n")
    with pytest.raises(ConfigError, match="labels.csv:2"):
        list_labeled_videos(tmp_path)


def test_dfdc_metadata_groups_fakes_with_their_original(tmp_path: Path) -> None:
    metadata = {
        "real.mp4": {"label": "REAL", "split": "train", "original": None},
        "fake.mp4": {"label": "FAKE", "split": "train", "original": "real.mp4"},
    }
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    videos = {v.path.name: v for v in list_labeled_videos(tmp_path)}
    assert videos["fake.mp4"].label == FAKE and videos["real.mp4"].label == REAL
    assert videos["fake.mp4"].group == videos["real.mp4"].group == "real.mp4"


def test_faceforensics_layout(tmp_path: Path) -> None:
    for relative in (
        "original_sequences/youtube/c23/videos/033.mp4",
        "manipulated_sequences/Deepfakes/c23/videos/033_097.mp4",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).touch()
    videos = {v.path.name: v for v in list_labeled_videos(tmp_path)}
    assert videos["033.mp4"].label == REAL and videos["033_097.mp4"].label == FAKE
    assert videos["033.mp4"].group == videos["033_097.mp4"].group == "033"
    assert videos["033_097.mp4"].subset == "Deepfakes_c23"


def test_unlabeled_folder_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--labels"):
        list_labeled_videos(tmp_path)
