"""`fakewatch train --ensemble meso-ssim` end to end on generated face clips, with the project's
registry and the MesoNet authors' weights copied to a scratch folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from models.checkpoints import sha256_file
from models.config import DetectorConfig
from models.detector import Detector
from models.registry import Registry
from models.training.card import ModelCard
from models.training.pair_fit import PairFitConfig
from models.training.pair_run import (
    ENSEMBLE,
    MODEL_ID,
    WITHOUT_SSIM,
    PairRunConfig,
    run_pair_training,
)
from tests.conftest import TOY_GROUPS, project_registry_with_mesonet

FRAMES = 4


@pytest.fixture(scope="module")
def trained(toy_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[PairRunConfig, ModelCard]:
    out = tmp_path_factory.mktemp("pair_weights")
    registry_path = project_registry_with_mesonet(out)
    config = PairRunConfig(
        data_dir=toy_data, labels=Path("labels.csv"), out_dir=out, registry_path=registry_path,
        frames=FRAMES, folds=3, fit=PairFitConfig(snapshots=(0, 3, 6), batch_size=4), device="cpu",
        cache_root=tmp_path_factory.mktemp("pair_cache"), command="fakewatch train --ensemble meso-ssim",
    )
    return config, run_pair_training(config, echo=lambda line: None)


def test_the_trained_model_is_registered_and_scores_videos(trained, toy_data: Path) -> None:
    config, card = trained
    registry = Registry.load(config.registry_path)
    entry = registry.models[MODEL_ID]
    member = card.members[0]
    assert entry.sha256 == member.sha256 == sha256_file(registry.path_of(entry))
    assert entry.temperature == pytest.approx(member.temperature, rel=1e-5)
    assert {p.name for p in registry.presets[ENSEMBLE.name].listing()} == {p.name for p in card.presets}
    detector = Detector(DetectorConfig(registry_path=config.registry_path, models=(ENSEMBLE.name,),
                                       device="cpu", frames=FRAMES))
    result = detector.detect(toy_data / "clips" / "g0_fake.mp4")
    assert result.status == "ok" and result.preset == "balanced"
    faces = [face for frame in result.frames for face in frame.faces]
    assert faces and all(set(face.model_probabilities) == {MODEL_ID} for face in faces)


def test_the_card_reports_the_protocol_and_what_ssim_adds(trained) -> None:
    config, card = trained
    stored = ModelCard.model_validate(json.loads((config.out_dir / f"{ENSEMBLE.card_stem}.json").read_text()))
    assert stored == card
    assert card.protocol.overall.videos == 2 * TOY_GROUPS
    steps = card.training.steps
    assert steps in (0, 3, 6)
    assert set(card.variants) == {f"{s} steps in every fold (not nested)" for s in (0, 3, 6)} | {
        f"{steps} steps, {WITHOUT_SSIM}"}
    assert all(v.videos == 2 * TOY_GROUPS for v in card.variants.values())
    # The shipped step count is the best plain out-of-fold one, and the one trained into the file.
    best = max(card.variants[f"{s} steps in every fold (not nested)"].auc or 0.0 for s in (0, 3, 6))
    assert card.variants[f"{steps} steps in every fold (not nested)"].auc == best
    markdown = (config.out_dir / f"{ENSEMBLE.card_stem}.md").read_text()
    for text in ("Variants under the same protocol", WITHOUT_SSIM, "no self-blended images", card.members[0].sha256):
        assert text in markdown
    assert "fp16" not in markdown  # stored in fp32, and the card does not pretend otherwise


def test_cli_refuses_options_of_the_sbi_members(toy_data: Path) -> None:
    from fakewatch.cli import main

    result = CliRunner().invoke(main, ["train", "--data", str(toy_data), "--ensemble", "meso-ssim",
                                       "--sbi-fraction", "0.3", "--no-register"])
    assert result.exit_code == 2
    assert "--sbi-fraction do not apply to meso-ssim" in result.output
