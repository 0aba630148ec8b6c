"""Threshold presets: stored with an ensemble in the registry with the policy they were measured
under, and the order a threshold and a policy are chosen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.config import DEFAULT_POLICY, DEFAULT_THRESHOLD, DetectOptions, DetectorConfig
from models.detector import Detector
from models.errors import ConfigError
from models.presets import aggregation_policy, ensemble_presets, operating_point
from models.registry import Registry, ThresholdPresets
from models.schema import ThresholdPreset
from tests.tiny_models import write_test_registry

POINTS = {
    "strict": ThresholdPreset(name="strict", threshold=0.8, real_flagged=0.05, fakes_caught=0.4),
    "balanced": ThresholdPreset(name="balanced", threshold=0.6, real_flagged=0.1, fakes_caught=0.6),
}
PRESETS = ThresholdPresets(POINTS, "balanced", "max-identity")


def with_presets(tmp_path: Path) -> Path:
    path = write_test_registry(tmp_path)
    registry = Registry.load(path)
    Registry(registry.directory, registry.preprocessing, registry.models, registry.ensembles,
             registry.default_ensemble, {"default": PRESETS}).write(path)
    return path


def test_presets_survive_a_write_and_a_load(tmp_path: Path) -> None:
    loaded = Registry.load(with_presets(tmp_path)).presets["default"]
    assert loaded == PRESETS
    assert [p.name for p in loaded.listing() if p.default] == ["balanced"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('default_preset = "balanced"', 'default_preset = "loose"'), "not one of"),
        (lambda t: t.replace("fakes_caught = 0.4", "caught = 0.4"), "needs exactly the keys"),
        (lambda t: t.replace("threshold = 0.8", "threshold = 1.8"), "less than or equal to 1"),
        (lambda t: t.replace('default_preset = "balanced"\n', ""), "come together"),
        (lambda t: t.replace('policy = "max-identity"', 'policy = "median"'), "policy"),
    ],
)
def test_malformed_presets_are_refused_with_the_reason(tmp_path: Path, edit, message: str) -> None:
    path = with_presets(tmp_path)
    path.write_text(edit(path.read_text()))
    with pytest.raises(ConfigError, match=message):
        Registry.load(path)


def test_a_policy_without_presets_is_refused(tmp_path: Path) -> None:
    path = write_test_registry(tmp_path)
    text = path.read_text()
    ensemble_header = text.index("[ensembles.default]")
    models_line = text.index("\n", text.index("models = ", ensemble_header))
    path.write_text(text[:models_line] + '\npolicy = "mean"' + text[models_line:])
    with pytest.raises(ConfigError, match="what presets were measured under"):
        Registry.load(path)


def test_presets_belong_to_the_ensemble_loaded_as_a_whole(tmp_path: Path) -> None:
    registry = Registry.load(with_presets(tmp_path))
    assert ensemble_presets(registry, None) == PRESETS
    assert ensemble_presets(registry, ("default",)) == PRESETS
    assert ensemble_presets(registry, ("tiny-meso", "tiny-hybrid")) is None


def test_a_threshold_is_chosen_in_the_documented_order() -> None:
    config = DetectorConfig()
    assert operating_point(DetectOptions(), config, PRESETS, True).threshold == 0.6
    assert operating_point(DetectOptions(), config, PRESETS, True).preset == "balanced"
    assert operating_point(DetectOptions(preset="strict"), config, PRESETS, True).preset == "strict"
    number = operating_point(DetectOptions(threshold=0.3, preset="strict"), config, PRESETS, True)
    assert (number.threshold, number.preset) == (0.3, None)
    fixed = DetectorConfig(threshold=0.7)
    assert operating_point(DetectOptions(), fixed, PRESETS, True).threshold == 0.7
    assert operating_point(DetectOptions(preset="strict"), fixed, PRESETS, True).threshold == 0.8
    assert operating_point(DetectOptions(), DetectorConfig(preset="strict"), PRESETS, True).threshold == 0.8
    plain = operating_point(DetectOptions(), config, None, True)
    assert (plain.threshold, plain.preset) == (DEFAULT_THRESHOLD, None)


def test_a_policy_is_chosen_in_the_documented_order() -> None:
    config = DetectorConfig()
    assert aggregation_policy(DetectOptions(), config, PRESETS, True) == "max-identity"
    assert aggregation_policy(DetectOptions(policy="mean"), config, PRESETS, True) == "mean"
    assert aggregation_policy(DetectOptions(), DetectorConfig(policy="mean"), PRESETS, True) == "mean"
    # presets measured on the whole ensemble say nothing of a subset's scores, nor of no presets
    assert aggregation_policy(DetectOptions(), config, PRESETS, False) == DEFAULT_POLICY
    assert aggregation_policy(DetectOptions(), config, None, True) == DEFAULT_POLICY


def test_the_detector_scores_with_the_policy_its_presets_were_measured_under(
    tmp_path: Path, face_video: Path
) -> None:
    detector = Detector(DetectorConfig(registry_path=with_presets(tmp_path), device="cpu", frames=4))
    assert detector.detect(face_video).aggregation == "max-identity"
    assert detector.detect(face_video, DetectOptions(policy="mean")).aggregation == "mean"
    assert (detector.presets_policy, detector.default_policy) == ("max-identity", "max-identity")


def test_a_detector_says_when_its_policy_is_not_the_one_its_presets_hold_under(tmp_path: Path) -> None:
    overridden = Detector(DetectorConfig(registry_path=with_presets(tmp_path), device="cpu", policy="mean"))
    assert (overridden.presets_policy, overridden.default_policy) == ("max-identity", "mean")
    bare = Detector(DetectorConfig(registry_path=write_test_registry(tmp_path / "bare"), device="cpu"))
    assert (bare.presets_policy, bare.default_policy) == (None, DEFAULT_POLICY)


def test_presets_without_a_recorded_policy_hold_under_the_service_default() -> None:
    assert ThresholdPresets(POINTS, "balanced").measured_policy == DEFAULT_POLICY
    assert PRESETS.measured_policy == "max-identity"


def test_a_preset_where_none_was_measured_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no measured presets"):
        operating_point(DetectOptions(preset="strict"), DetectorConfig(), None, True)
    with pytest.raises(ConfigError, match="subset"):
        operating_point(DetectOptions(preset="strict"), DetectorConfig(), PRESETS, False)
    with pytest.raises(ConfigError, match="unknown threshold preset"):
        operating_point(DetectOptions(preset="sensitive"), DetectorConfig(), PRESETS, True)


def test_weights_presets_lists_each_preset_with_its_rates(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fakewatch.cli import main

    out = CliRunner().invoke(main, ["weights", "presets", "--registry", str(with_presets(tmp_path))])
    assert out.exit_code == 0, out.output
    assert "default  balanced   threshold 0.600: flags 10% of real videos, catches 60% of fakes  (default)" in out.output
    assert "strict" in out.output
    assert "default  (rates measured under aggregation 'max-identity'" in out.output
    as_json = CliRunner().invoke(
        main, ["weights", "presets", "--json", "--registry", str(with_presets(tmp_path))])
    rows = [json.loads(line) for line in as_json.output.splitlines()]
    assert {(row["name"], row["aggregation"]) for row in rows} == {
        ("strict", "max-identity"), ("balanced", "max-identity")}
