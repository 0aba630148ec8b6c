"""Adopting pretrained checkpoints: nested choice, cross-fitted presets, registry and card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from models.aggregation import CropScores
from models.comparison import ClipScores, save_clip_scores
from models.datasets import FAKE, REAL, LabeledVideo
from models.errors import ConfigError
from models.registry import Registry
from models.training.adopt import adopt, register_adoption
from models.training.errors import TrainingDataError
from models.training.register import update_ensemble_models
from models.training.scored_clips import crossfit_calibrated, raw_logits
from tests.tiny_models import write_test_registry

SOURCES = 10


def _clips(seed: int = 0) -> list[ClipScores]:
    """Ten sources of two real and two fake clips; `tiny-meso` separates them, `tiny-hybrid` is
    noise. Each clip has six faces of one person."""
    rng = np.random.default_rng(seed)
    clips = []
    for source in range(SOURCES):
        for k, label in enumerate((REAL, REAL, FAKE, FAKE)):
            video = LabeledVideo(Path(f"s{source}_{k}.mp4"), label, f"g{source}_{k}", f"src{source}",
                                 family="faceswap" if label == FAKE else "none")
            signal = rng.normal(0.6 if label == FAKE else -0.6, 1.0, 6)
            scores = CropScores(np.zeros(6, int), {
                "tiny-meso": 1 / (1 + np.exp(-4 * signal)),
                "tiny-hybrid": rng.uniform(0.01, 0.99, 6),
            })
            clips.append(ClipScores(video, scores, {"tiny-meso": 1.0, "tiny-hybrid": 1.0}))
    return clips


CANDIDATES = {"meso": ["tiny-meso"], "hybrid": ["tiny-hybrid"]}


def _scored_at(clips: list[ClipScores], temperature: float) -> list[ClipScores]:
    """The same clips as if tiny-meso had been scored under a registry temperature."""
    warmer = []
    for clip in clips:
        assert clip.scores is not None
        p = clip.scores.per_model["tiny-meso"]
        per_model = dict(clip.scores.per_model, **{"tiny-meso": 1 / (1 + ((1 - p) / p) ** (1 / temperature))})
        warmer.append(ClipScores(clip.video, CropScores(clip.scores.identities, per_model),
                                 {"tiny-meso": temperature, "tiny-hybrid": 1.0}))
    return warmer


@pytest.fixture(scope="module")
def adoption():  # -> models.training.adopt.Adoption
    return adopt(_clips(), CANDIDATES)


def test_the_informative_candidate_is_chosen_in_every_fold(adoption) -> None:
    assert adoption.chosen == "meso" and adoption.models == ("tiny-meso",)
    assert set(adoption.chosen_per_fold.values()) == {"meso"}
    assert adoption.candidates["meso"] > 0.95 and adoption.candidates["hybrid"] < 0.7
    # Each fold is scored at temperatures fitted without it: close to, not equal to, the in-sample AUC.
    assert adoption.nested.auc == pytest.approx(adoption.candidates["meso"], abs=0.02)
    assert adoption.nested.videos == 4 * SOURCES


def test_presets_are_ordered_and_their_rates_cross_fitted(adoption) -> None:
    points = {p.name: p for p in adoption.presets.listing()}
    assert points["strict"].threshold >= points["balanced"].threshold >= points["sensitive"].threshold
    assert [p.name for p in adoption.presets.listing() if p.default] == ["balanced"]
    # A squared-error-like model is overconfident: its temperature flattens the logits.
    assert adoption.temperatures["tiny-meso"] > 1.0
    for name, measured in adoption.outcome.presets.items():
        assert points[name].real_flagged == pytest.approx(measured.fpr_at_threshold, abs=1e-4)


def test_calibration_starts_from_the_models_own_logits(adoption) -> None:
    """Scores made under a registry temperature give the same shipped temperature."""
    again = adopt(_scored_at(_clips(), 3.0), {"meso": ["tiny-meso"]})
    assert again.temperatures["tiny-meso"] == pytest.approx(adoption.temperatures["tiny-meso"], rel=1e-3)


def test_candidates_are_compared_at_fitted_temperatures(adoption) -> None:
    """The default policy reads P(fake) against fixed cut-offs, so a candidate scored under
    another registry temperature must still be judged exactly as before."""
    for temperature in (0.2, 3.0):
        again = adopt(_scored_at(_clips(), temperature), CANDIDATES)
        assert again.candidates == pytest.approx(adoption.candidates, abs=1e-6)
        assert again.nested.auc == pytest.approx(adoption.nested.auc, abs=1e-6)


def test_confidently_real_crops_keep_their_logits() -> None:
    """An uncalibrated model's P(fake) of 1e-20 and 1e-30 stay two different logits."""
    video = LabeledVideo(Path("r.mp4"), REAL, "g", "src")
    clip = ClipScores(video, CropScores(np.zeros(3, int), {"m": np.array([1e-20, 1e-30, 0.5])}),
                      {"m": 2.0})
    assert raw_logits(clip, "m") == pytest.approx([2 * np.log(1e-20), 2 * np.log(1e-30), 0.0])


def test_a_candidate_that_was_not_scored_is_refused() -> None:
    with pytest.raises(TrainingDataError, match="not scored"):
        adopt(_clips(), {"other": ["tiny-effnet"]})


def test_adoption_is_registered_as_the_ensemble(adoption, tmp_path: Path) -> None:
    path = write_test_registry(tmp_path, members=("tiny-meso", "tiny-hybrid"))
    register_adoption(path, "default", adoption)
    registry = Registry.load(path)
    assert registry.ensembles["default"] == ("tiny-meso",)
    assert registry.presets["default"].listing() == adoption.presets.listing()
    assert registry.models["tiny-meso"].temperature == pytest.approx(adoption.temperatures["tiny-meso"],
                                                                     rel=1e-5)


def test_a_list_written_over_several_lines_is_replaced(tmp_path: Path) -> None:
    path = write_test_registry(tmp_path, members=("tiny-meso", "tiny-hybrid"))
    text = path.read_text()
    assert 'models = ["tiny-meso", "tiny-hybrid"]' in text
    path.write_text(text.replace('models = ["tiny-meso", "tiny-hybrid"]',
                                 'models = [\n    "tiny-meso",\n    "tiny-hybrid",\n]'))
    update_ensemble_models(path, "default", ["tiny-hybrid"])
    assert Registry.load(path).ensembles["default"] == ("tiny-hybrid",)


def test_weights_adopt_command_writes_registry_and_card(tmp_path: Path) -> None:
    from fakewatch.cli import main

    path = write_test_registry(tmp_path, members=("tiny-meso", "tiny-hybrid"))
    scores = tmp_path / "scores.jsonl"
    save_clip_scores(_clips(), scores)
    args = ["weights", "adopt", str(scores), "--registry", str(path), "--candidate", "meso=tiny-meso",
            "--candidate", "hybrid=tiny-hybrid"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "chose meso" in result.output
    card = (tmp_path / "default-ensemble.md").read_text()
    assert "nested choice" in card and "tiny-meso" in card
    assert Registry.load(path).ensembles["default"] == ("tiny-meso",)
    bad = CliRunner().invoke(main, [*args[:5], "--candidate", "x=nope"])
    assert bad.exit_code != 0 and "unknown model ids" in bad.output


def test_compared_scores_are_calibrated_on_other_sources_only() -> None:
    """`eval --compare` recalibrates every clip at a temperature fitted on the other folds, the
    same whatever temperature the registry held when the clips were scored."""
    from models.protocol.folds import leave_sources_out
    from models.training.calibration import fit_temperature

    clips = _clips()
    recalibrated = crossfit_calibrated(_scored_at(clips, 3.0))
    assert crossfit_calibrated(clips)[0].temperatures == pytest.approx(recalibrated[0].temperatures)
    folds = leave_sources_out([clip.video for clip in clips])
    held_out = folds[0]
    others = [clip for clip in clips if clip.video not in held_out.videos]
    expected = fit_temperature(np.concatenate([raw_logits(c, "tiny-meso") for c in others]),
                               np.concatenate([np.full(6, c.video.label) for c in others]))
    for before, after in zip(clips, recalibrated, strict=True):
        if before.video in held_out.videos:
            assert after.temperatures["tiny-meso"] == pytest.approx(expected, rel=1e-6)
            logits = raw_logits(before, "tiny-meso")
            assert after.scores.per_model["tiny-meso"] == pytest.approx(1 / (1 + np.exp(-logits / expected)))
    assert len({round(c.temperatures["tiny-meso"], 9) for c in recalibrated}) == len(folds)


def test_too_few_sources_are_not_cross_fitted() -> None:
    with pytest.raises(ConfigError, match="too few"):
        crossfit_calibrated(_clips()[:8])
