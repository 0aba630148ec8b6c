"""Per-family detector settings: parsing, the registry's keys, and the boxes MTCNN draws with them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from facenet_pytorch import MTCNN

from models.errors import ConfigError
from models.face_finder import FaceFinder
from models.face_settings import DFDC_THRESHOLDS, FaceSettings
from models.registry import Registry
from tests import media

WINNER = FaceSettings(scale=0.5, thresholds=(0.7, 0.8, 0.8))


def test_a_table_without_the_keys_gets_the_detectors_own() -> None:
    assert FaceSettings.from_table({"size": 224}) == FaceSettings()
    assert FaceSettings().scale is None and FaceSettings().thresholds == DFDC_THRESHOLDS
    assert FaceSettings().table() == {}


def test_both_keys_are_read_and_written_back() -> None:
    table = {"detector_scale": 0.5, "detector_thresholds": [0.85, 0.95, 0.95]}
    settings = FaceSettings.from_table(table)
    assert settings == FaceSettings(scale=0.5, thresholds=(0.85, 0.95, 0.95))
    assert settings.table() == table
    assert FaceSettings.from_table({"detector_scale": 1}).scale == 1.0  # TOML integers are numbers


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"detector_scale": "half"}, "detector_scale must be a finite number"),
        ({"detector_scale": True}, "detector_scale must be a finite number"),
        ({"detector_scale": 0}, "detector_scale must be in (0, 2.0]"),
        ({"detector_scale": 3.0}, "detector_scale must be in (0, 2.0]"),
        ({"detector_thresholds": [0.7, 0.8]}, "a list of 3 numbers"),
        ({"detector_thresholds": 0.8}, "a list of 3 numbers"),
        ({"detector_thresholds": [0.7, 0.8, 1.0]}, "strictly between 0 and 1"),
        ({"detector_thresholds": [0.7, "x", 0.8]}, "detector_thresholds must be a finite number"),
    ],
)
def test_bad_values_are_refused_saying_where(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^\[preprocessing\.x\]: .*" + _escaped(message)):
        FaceSettings.from_table(table, "[preprocessing.x]")


def _escaped(text: str) -> str:
    return "".join("\\" + c if c in "()[]." else c for c in text)


def test_the_shipped_registry_gives_each_family_its_published_settings() -> None:
    registry = Registry.load()
    winner = {e.preprocessing.detector for e in registry.resolve("dfdc-winner")}
    coccomini = {e.preprocessing.detector for e in registry.resolve("coccomini")}
    default = {e.preprocessing.detector for e in registry.resolve()}
    assert winner == {WINNER}
    assert coccomini == {FaceSettings(scale=0.5, thresholds=(0.85, 0.95, 0.95))}
    assert default == {FaceSettings()}


def test_settings_survive_a_registry_round_trip(tmp_path: Path) -> None:
    registry = Registry.load()
    registry.write(tmp_path / "registry.toml")
    again = Registry.load(tmp_path / "registry.toml")
    assert {n: s.detector for n, s in again.preprocessing.items()} == {
        n: s.detector for n, s in registry.preprocessing.items()
    }


def test_a_bad_setting_in_the_registry_names_its_table(tmp_path: Path) -> None:
    text = Registry.load().to_toml().replace("detector_scale = 0.5", "detector_scale = -1", 1)
    (tmp_path / "registry.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"\[preprocessing\.selim\] detector_scale must be"):
        Registry.load(tmp_path / "registry.toml")


@pytest.mark.slow
def test_the_winners_settings_draw_the_winners_boxes() -> None:
    """selim's pipeline ran facenet-pytorch's MTCNN (0.7/0.8/0.8) on the frame at half size for
    every resolution; a 640x360 frame is detected at full size by the detector's own settings.
    With the winner's settings the finder draws MTCNN's half-size boxes exactly."""
    image = media.face_frame(0, faces=2)
    half = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    reference = MTCNN(thresholds=list(WINNER.thresholds), keep_all=True, device="cpu").eval()
    boxes, _ = reference.detect(half)
    expected = np.asarray(sorted(np.asarray(boxes.tolist()) * 2, key=lambda b: b[0]))
    for settings, same in ((WINNER, True), (FaceSettings(), False)):
        (faces,) = FaceFinder(settings=settings).detect([image])
        found = np.asarray(sorted((f.box for f in faces), key=lambda b: b[0]))
        assert found.shape == expected.shape == (2, 4)
        difference = float(np.abs(found - expected).max())
        assert (difference < 0.01) if same else (difference > 1.0), (settings, difference)
