"""`fakewatch train --ensemble meso-sbi` end to end on generated face clips, with the project's
registry and the MesoNet authors' weights copied to a scratch folder; and the fit's own rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from models.checkpoints import load_classifier, sha256_file
from models.config import DetectorConfig
from models.detector import Detector
from models.registry import Registry
from models.training.blend_run import (
    ENSEMBLE,
    INIT_MODEL,
    MODEL_ID,
    BlendRunConfig,
    run_blend_training,
    start_model,
)
from models.training.blend_tune import BlendTuneConfig, BlendViews, tune_snapshots, view_weights
from models.training.card import ModelCard
from tests.conftest import TOY_GROUPS, project_registry_with_mesonet

FRAMES = 4


@pytest.fixture(scope="module")
def trained(toy_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[BlendRunConfig, ModelCard]:
    out = tmp_path_factory.mktemp("blend_weights")
    registry_path = project_registry_with_mesonet(out)
    config = BlendRunConfig(
        data_dir=toy_data, labels=Path("labels.csv"), out_dir=out, registry_path=registry_path,
        frames=FRAMES, folds=3, fit=BlendTuneConfig(steps=4, snapshots=(0, 2), batch_size=4), masks="dense",
        device="cpu",
        cache_root=tmp_path_factory.mktemp("blend_cache"), command="fakewatch train --ensemble meso-sbi",
    )
    return config, run_blend_training(config, echo=lambda line: None)


def test_the_trained_model_is_registered_and_scores_videos(trained, toy_data: Path) -> None:
    config, card = trained
    registry = Registry.load(config.registry_path)
    entry = registry.models[MODEL_ID]
    member = card.members[0]
    assert entry.sha256 == member.sha256 == sha256_file(registry.path_of(entry))
    assert entry.temperature == pytest.approx(member.temperature, rel=1e-5)
    assert {p.name for p in registry.presets[ENSEMBLE.name].listing()} == {p.name for p in card.presets}
    # Fine-tuned, so no longer the authors' model.
    authors = load_classifier(registry.models[INIT_MODEL], registry).state_dict()
    tuned = load_classifier(entry, registry).state_dict()
    assert set(tuned) == set(authors)
    assert any(not torch.equal(tuned[name], authors[name]) for name in authors if name.endswith("weight"))
    detector = Detector(DetectorConfig(registry_path=config.registry_path, models=(ENSEMBLE.name,),
                                       device="cpu", frames=FRAMES))
    result = detector.detect(toy_data / "clips" / "g0_fake.mp4")
    assert result.status == "ok" and result.preset == "balanced"
    faces = [face for frame in result.frames for face in frame.faces]
    assert faces and all(set(face.model_probabilities) == {MODEL_ID} for face in faces)


def test_the_card_reports_the_fixed_step_count_and_the_snapshots(trained) -> None:
    config, card = trained
    stored = ModelCard.model_validate(json.loads((config.out_dir / f"{ENSEMBLE.card_stem}.json").read_text()))
    assert stored == card
    assert card.protocol.overall.videos == 2 * TOY_GROUPS
    assert card.training.steps == 4  # as configured: nothing was chosen on the reported clips
    assert set(card.variants) == {"the authors' model, not fine-tuned", "2 steps in every fold"}
    assert all(v.videos == 2 * TOY_GROUPS for v in card.variants.values())
    assert card.training.views == {"real face": 1, "self-blended": 1, "genuine fake": 0}
    markdown = (config.out_dir / f"{ENSEMBLE.card_stem}.md").read_text()
    for text in ("Variants under the same protocol", "genuine fakes are never trained on", card.members[0].sha256,
                 "blend masks: dlib's 68 points: the whole face with its forehead, the inner face",
                 "iBUG 300-W, is for research only"):
        assert text in markdown


def test_batches_draw_half_blends_and_every_real_clip_alike(trained) -> None:
    config, _card = trained
    registry = Registry.load(config.registry_path)
    _start, spec = start_model(registry, torch.device("cpu"))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (8, spec.size, spec.size, 3), dtype=np.uint8)
    # Clip 0 has two faces (four views), clip 1 one face, clip 2 (outside training) one face.
    views = BlendViews(images, np.array([0, 0, 0, 0, 1, 1, 2, 2]), np.array([False, True] * 4))
    in_training = np.array([True, True, False])
    rows, probabilities = view_weights(views, in_training)
    assert set(views.clip[rows]) == {0, 1}
    assert probabilities[views.blended[rows]].sum() == pytest.approx(0.5)
    # Every clip alike within a kind, however many faces it has.
    per_clip = {c: probabilities[(views.clip[rows] == c) & ~views.blended[rows]].sum() for c in (0, 1)}
    assert per_clip[0] == pytest.approx(per_clip[1])


def test_a_fit_leaves_its_start_untouched_and_snapshot_zero_is_the_start(trained) -> None:
    config, _card = trained
    registry = Registry.load(config.registry_path)
    start, spec = start_model(registry, torch.device("cpu"))
    before = {name: value.clone() for name, value in start.state_dict().items()}
    rng = np.random.default_rng(1)
    views = BlendViews(rng.integers(0, 255, (4, spec.size, spec.size, 3), dtype=np.uint8),
                       np.zeros(4, np.int64), np.array([False, True, False, True]))
    snapshots = tune_snapshots(start, spec, views, np.array([True]), BlendTuneConfig(steps=2, snapshots=(0,), batch_size=2))
    assert set(snapshots) == {0, 2}
    assert all(torch.equal(before[name], value) for name, value in start.state_dict().items())
    assert all(torch.equal(before[name], value) for name, value in snapshots[0].state_dict().items())
    assert not all(torch.equal(before[name], value) for name, value in snapshots[2].state_dict().items())


def test_cli_refuses_options_of_the_lite_members(toy_data: Path) -> None:
    from fakewatch.cli import main

    result = CliRunner().invoke(main, ["train", "--data", str(toy_data), "--ensemble", "meso-sbi",
                                       "--real-frames", "8", "--no-register"])
    assert result.exit_code == 2
    assert "--real-frames do not apply to meso-sbi" in result.output


def test_cli_refuses_blend_masks_for_other_ensembles(toy_data: Path) -> None:
    from fakewatch.cli import main

    result = CliRunner().invoke(main, ["train", "--data", str(toy_data), "--ensemble", "fakewatch-sbi",
                                       "--blend-masks", "dense", "--no-register"])
    assert result.exit_code == 2
    assert "--blend-masks applies to meso-sbi only" in result.output


def test_cli_protocol_only_prints_the_tables_at_the_given_steps(toy_data: Path, tmp_path: Path) -> None:
    from fakewatch.cli import main

    result = CliRunner().invoke(main, [
        "train", "--data", str(toy_data), "--ensemble", "meso-sbi", "--protocol-only", "--no-register",
        "--steps", "2", "--batch-size", "2", "--frames", str(FRAMES), "--folds", "3", "--workers", "1",
        "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
    ])
    assert result.exit_code == 0, result.output
    assert "fitted and scored at (0, 2) steps" in result.output  # the default snapshots past 2 dropped
    assert "| 2 steps (reported) |" in result.output
    assert "| the authors' model, not fine-tuned |" in result.output
    assert not (tmp_path / "out").exists()  # nothing exported, no card
