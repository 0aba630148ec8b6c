"""fakewatch's own trained ensembles (`fakewatch-sbi`, `embedding-svm`, `fakewatch-vit-distilled`):
files, registry entries and model cards agree, and the weights load."""

from __future__ import annotations

import json

import pytest
import torch

from models.checkpoints import load_classifier
from models.registry import Registry
from models.training.card import ModelCard
from models.training.members import TRAINED_ENSEMBLES, TrainedEnsemble
from tests.conftest import REPO_ROOT

WEIGHTS = REPO_ROOT / "weights"
MEMBER_IDS = [m for ensemble in TRAINED_ENSEMBLES.values() for m in ensemble.members]


@pytest.fixture(scope="module", params=list(TRAINED_ENSEMBLES.values()), ids=list(TRAINED_ENSEMBLES))
def trained(request: pytest.FixtureRequest) -> tuple[TrainedEnsemble, ModelCard]:
    ensemble = request.param
    card = ModelCard.model_validate(json.loads((WEIGHTS / f"{ensemble.card_stem}.json").read_text()))
    return ensemble, card


@pytest.fixture(scope="module")
def card(trained: tuple[TrainedEnsemble, ModelCard]) -> ModelCard:
    return trained[1]


def test_card_registry_and_files_agree(trained: tuple[TrainedEnsemble, ModelCard]) -> None:
    ensemble, card = trained
    registry = Registry.load()
    assert [m.model_id for m in card.members] == list(ensemble.members)
    assert list(registry.ensembles[ensemble.name]) == list(ensemble.members)
    for member in card.members:
        entry = registry.models[member.model_id]
        assert registry.check(entry).state == "ok"  # sha256 registered and matching the file
        assert entry.sha256 == member.sha256 and entry.size_bytes == member.size_bytes
        assert entry.temperature == pytest.approx(member.temperature, rel=1e-5)
        assert dict(entry.params) == member.params
        assert entry.size_bytes < 16 * 2**20  # small enough to live in the repository


def test_card_states_out_of_fold_figures_by_family_and_source(card: ModelCard) -> None:
    overall = card.protocol.overall
    assert overall.auc is not None and overall.auc_low <= overall.auc <= overall.auc_high
    assert {"faceswap", "reenactment", "lipsync", "portrait-animation"} <= set(card.protocol.by_family)
    assert len(card.protocol.by_fold) == len(card.data.folds) >= 2
    assert "non-commercial" in card.data.license
    for path in (card.training.command, *card.data.clips_without_face, *card.data.extraction_errors):
        assert not path.startswith("/")  # no machine paths in the repository


def test_registry_presets_are_the_cards(trained: tuple[TrainedEnsemble, ModelCard]) -> None:
    ensemble, card = trained
    registry = Registry.load()
    assert registry.presets[ensemble.name].listing() == card.presets
    assert [p.name for p in card.presets if p.default] == ["balanced"]


def test_the_registry_scores_each_ensemble_under_its_cards_policy(
    trained: tuple[TrainedEnsemble, ModelCard],
) -> None:
    """Presets hold only under the policy they were fitted on, which the protocol chooses."""
    ensemble, card = trained
    assert Registry.load().presets[ensemble.name].policy == card.policy


def test_the_distilled_member_names_its_teacher() -> None:
    card = ModelCard.model_validate(json.loads((WEIGHTS / "fakewatch-hybrid-vit-distilled.json").read_text()))
    assert card.training.teacher.startswith("'default'") and "mesonet-meso4-df" in card.training.teacher


@pytest.mark.parametrize("model_id", MEMBER_IDS)
def test_shipped_member_loads_and_scores(model_id: str) -> None:
    registry = Registry.load()
    entry = registry.models[model_id]
    model = load_classifier(entry, registry)
    size = entry.preprocessing.size
    with torch.inference_mode():
        logits = model(torch.zeros(2, 3, size, size))
    assert logits.shape == (2,) and torch.isfinite(logits).all()
