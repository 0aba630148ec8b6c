"""Adopting pretrained checkpoints: nested choice, cross-fitted presets, registry and card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from models.aggregation import CropScores
from models.comparison import ClipScores, save_clip_scores
from models.datasets import FAKE, REAL, LabeledVideo
from models.registry import Registry
from models.training.adopt import adopt, register_adoption
from models.training.errors import TrainingDataError
from models.training.register import update_ensemble_models
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


CANDIDATES = {"meso": ["tiny-meso"], "hybrid": ["tiny-hybrid"], "both": ["tiny-meso", "tiny-hybrid"]}


@pytest.fixture(scope="module")
def adoption():  # -> models.training.adopt.Adoption
    return adopt(_clips(), CANDIDATES)


def test_the_informative_candidate_is_chosen_in_every_fold(adoption) -> None:
    assert adoption.chosen == "meso" and adoption.models == ("tiny-meso",)
    assert set(adoption.chosen_per_fold.values()) == {"meso"}
    assert adoption.candidates["meso"] > adoption.candidates["both"] > adoption.candidates["hybrid"]
    assert adoption.nested.auc == pytest.approx(adoption.candidates["meso"])
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
    warmer = []
    for clip in _clips():
        assert clip.scores is not None
        logits = np.log(clip.scores.per_model["tiny-meso"] / (1 - clip.scores.per_model["tiny-meso"]))
        per_model = dict(clip.scores.per_model, **{"tiny-meso": 1 / (1 + np.exp(-logits / 3.0))})
        warmer.append(ClipScores(clip.video, CropScores(clip.scores.identities, per_model),
                                 {"tiny-meso": 3.0, "tiny-hybrid": 1.0}))
    again = adopt(warmer, {"meso": ["tiny-meso"]})
    assert again.temperatures["tiny-meso"] == pytest.approx(adoption.temperatures["tiny-meso"], rel=1e-3)


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
            "--candidate", "both=tiny-meso,tiny-hybrid"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "chose meso" in result.output
    card = (tmp_path / "default-ensemble.md").read_text()
    assert "nested choice" in card and "tiny-meso" in card
    assert Registry.load(path).ensembles["default"] == ("tiny-meso",)
    bad = CliRunner().invoke(main, [*args[:5], "--candidate", "x=nope"])
    assert bad.exit_code != 0 and "unknown model ids" in bad.output
