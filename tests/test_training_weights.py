"""The shipped default ensemble: files, registry entries and model card agree, and the weights load."""

from __future__ import annotations

import json

import pytest
import torch

from models.registry import Registry, load_classifier
from models.training.card import ModelCard
from models.training.run import CARD_STEM
from tests.conftest import REPO_ROOT

WEIGHTS = REPO_ROOT / "weights"
MEMBER_IDS = ("fakewatch-effnet-lite0", "fakewatch-hybrid-vit")


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return ModelCard.model_validate(json.loads((WEIGHTS / f"{CARD_STEM}.json").read_text()))


def test_card_registry_and_files_agree(card: ModelCard) -> None:
    registry = Registry.load()
    assert [m.model_id for m in card.members] == list(MEMBER_IDS)
    assert list(registry.ensembles[registry.default_ensemble]) == list(MEMBER_IDS)
    for member in card.members:
        entry = registry.models[member.model_id]
        assert registry.check(entry).state == "ok"  # sha256 registered and matching the file
        assert entry.sha256 == member.sha256 and entry.size_bytes == member.size_bytes
        assert entry.temperature == pytest.approx(member.temperature, rel=1e-5)
        assert dict(entry.params) == member.params
        assert entry.size_bytes < 16 * 2**20  # small enough to live in the repository


def test_card_states_validation_by_source(card: ModelCard) -> None:
    for report in [m.validation for m in card.members] + [card.ensemble_validation]:
        assert report.video.auc is not None and report.frame.auc is not None
        assert {"ffpp", "dfd", "dfdc"} <= set(report.by_family)
    assert "non-commercial" in card.data.license
    assert set(card.data.groups_train).isdisjoint(card.data.groups_validation)
    for path in (card.training.command, *card.data.clips_without_face, *card.data.extraction_errors):
        assert not path.startswith("/")  # no machine paths in the repository


@pytest.mark.parametrize("model_id", MEMBER_IDS)
def test_shipped_member_loads_and_scores(model_id: str) -> None:
    registry = Registry.load()
    entry = registry.models[model_id]
    model = load_classifier(entry, registry)
    size = entry.preprocessing.size
    with torch.inference_mode():
        logits = model(torch.zeros(2, 3, size, size))
    assert logits.shape == (2,) and torch.isfinite(logits).all()
