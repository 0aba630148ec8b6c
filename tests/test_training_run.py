"""`fakewatch train` end to end on tiny models and real (generated) face videos, plus the real data split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open

from models.datasets import list_labeled_videos
from models.registry import Registry, load_classifier, sha256_file
from models.training.card import ModelCard
from models.training.cropcache import CropCache, CropExtractor
from models.training.export import METADATA_KEY
from models.training.members import MemberRecipe
from models.training.run import CARD_STEM, RunConfig, run_training
from models.training.split import family, split_by_group
from models.training.trainer import TrainConfig
from tests import media
from tests.conftest import SHARED_TRAIN_DIR
from tests.tiny_models import TINY_MEMBERS, write_test_registry

GROUPS = 4
FRAMES = 3

TINY_RECIPES = (
    MemberRecipe(
        model_id="tiny-effnet", architecture="efficientnet", params=dict(TINY_MEMBERS["tiny-effnet"].params),
        backbone="encoder", frozen_blocks=1, backbone_lr=1e-3, head_lr=1e-3,
        description="test-only tiny EfficientNet", imagenet_init=False,
    ),
    MemberRecipe(
        model_id="tiny-hybrid", architecture="hybrid_vit", params=dict(TINY_MEMBERS["tiny-hybrid"].params),
        backbone="backbone", frozen_blocks=1, backbone_lr=1e-3, head_lr=1e-3,
        description="test-only tiny hybrid ViT", imagenet_init=False,
    ),
)


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight short two-person clips in four groups, one REAL and one FAKE each, with a labels.csv."""
    root = tmp_path_factory.mktemp("toy_data")
    rows = ["file,label,group,subset"]
    for group in range(GROUPS):
        for label in ("REAL", "FAKE"):
            name = f"clips/g{group}_{label.lower()}.mp4"
            media.make_face_video(root / name, faces=2, frames=6, fps=6, width=320, height=180)
            rows.append(f"{name},{label},toy:{group},toy_c23")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def _config(data: Path, out: Path, cache: Path) -> RunConfig:
    registry = write_test_registry(out, members=("tiny-effnet", "tiny-hybrid"))
    return RunConfig(
        data_dir=data, labels=Path("labels.csv"), out_dir=out, registry_path=registry,
        members=TINY_RECIPES, frames=FRAMES, validation_fraction=0.25,
        train=TrainConfig(epochs=2, samples_per_epoch=8, batch_size=4, patience=2, seed=0),
        device="cpu", workers=1, cache_root=cache, command="fakewatch train --data toy",
    )


@pytest.fixture(scope="module")
def trained(toy_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, ModelCard]:
    config = _config(toy_data, tmp_path_factory.mktemp("weights"), tmp_path_factory.mktemp("cache"))
    return config, run_training(config, echo=lambda line: None)


def test_training_writes_registered_loadable_weights(trained) -> None:
    config, card = trained
    registry = Registry.load(config.registry_path)
    spec = registry.preprocessing["tiny-64"]
    crop = torch.zeros(2, 3, spec.size, spec.size)
    for member in card.members:
        entry = registry.models[member.model_id]
        path = registry.path_of(entry)
        assert entry.sha256 == member.sha256 == sha256_file(path)
        assert entry.size_bytes == path.stat().st_size
        assert entry.temperature == pytest.approx(member.temperature, rel=1e-5)
        model = load_classifier(entry, registry)  # strict, sha256-verified
        with torch.no_grad():
            assert model(crop).shape == (2,)
        with safe_open(str(path), "pt") as weights:
            description = json.loads(weights.metadata()[METADATA_KEY])
            assert description["model_id"] == member.model_id
            assert description["temperature"] == member.temperature
            dtypes = {weights.get_tensor(k).dtype for k in weights.keys()}  # noqa: SIM118
        assert (torch.float16 in dtypes) == (member.dtype == "float16")


def test_training_writes_a_card_with_validation_figures(trained) -> None:
    config, card = trained
    stored = ModelCard.model_validate(json.loads((config.out_dir / f"{CARD_STEM}.json").read_text()))
    assert stored == card
    markdown = (config.out_dir / f"{CARD_STEM}.md").read_text()
    assert "tiny-effnet" in markdown and "video AUC" in markdown and card.members[0].sha256 in markdown
    assert card.data.clips == 2 * GROUPS
    assert card.data.clips_validation == 2  # one whole group
    assert set(card.data.groups_train).isdisjoint(card.data.groups_validation)
    # Both people are found in every frame; only the main one's crops are kept.
    assert card.data.crops_validation == 2 * FRAMES
    for member in card.members:
        assert 1 <= member.best_epoch <= member.epochs_run <= 2
        assert member.validation.video.count == 2 and member.validation.video.fakes == 1
        assert member.validation.frame.count == 2 * FRAMES
    assert card.ensemble_validation.video.count == 2
    assert "self-blended" in card.training.balancing or card.training.sbi_fraction > 0


def test_fakewatch_eval_reports_the_cards_detector_figures(trained, toy_data, tmp_path) -> None:
    """The card's "as the detector scores them" section is what `fakewatch eval` prints on the
    validation groups: every person tracked (two per toy clip), default policy."""
    from fakewatch.cli import main

    config, card = trained
    view = card.detector_validation
    assert view.frames_per_clip == FRAMES and view.policy == "max-identity"
    groups = [arg for g in card.data.groups_validation for arg in ("--group", g)]
    outcome = CliRunner().invoke(main, [
        "eval", str(toy_data), "--labels", str(toy_data / "labels.csv"), *groups, "--json",
        "--frames", str(FRAMES), "--registry", str(config.registry_path), "--device", "cpu",
        "--roc", str(tmp_path / "roc.png"),
    ])
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.output[outcome.output.index("{"):])
    for level in ("video", "frame"):
        ours, theirs = getattr(view.report, level), report[level]
        assert ours.count == theirs["count"] and ours.fakes == theirs["fakes"]
        assert ours.log_loss == pytest.approx(theirs["log_loss"], abs=1e-4)
        assert ours.accuracy == pytest.approx(theirs["accuracy"])
    assert view.report.frame.count == 2 * FRAMES  # two clips, a face in every frame
    assert "As the detector scores them" in (config.out_dir / f"{CARD_STEM}.md").read_text()


def test_training_is_deterministic_and_reuses_the_crop_cache(trained, toy_data, tmp_path) -> None:
    config, card = trained
    cache = CropCache(CropExtractor(Registry.load(config.registry_path).preprocessing["tiny-64"], FRAMES),
                      config.cache_root)
    videos = list_labeled_videos(toy_data, toy_data / "labels.csv")
    assert all(cache.has(v.path) for v in videos)
    again = run_training(_config(toy_data, tmp_path / "weights", config.cache_root), echo=lambda line: None)
    assert again.machine.extraction_seconds < 1.0  # everything came from the cache
    assert [m.sha256 for m in again.members] == [m.sha256 for m in card.members]


def test_cli_refuses_unknown_members_and_missing_registry(toy_data, tmp_path) -> None:
    from fakewatch.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["train", "--data", str(toy_data), "--out", str(tmp_path)])
    assert result.exit_code != 0 and "registry.toml does not exist" in result.output
    write_test_registry(tmp_path, members=("tiny-effnet",))
    result = runner.invoke(main, ["train", "--data", str(toy_data), "--members", "nope", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "unknown members" in result.output


@pytest.mark.shared_data
def test_research_data_split_holds_out_every_source() -> None:
    if not (SHARED_TRAIN_DIR / "labels.csv").is_file():
        pytest.skip("shared research data not present")
    videos = list_labeled_videos(SHARED_TRAIN_DIR, SHARED_TRAIN_DIR / "labels.csv")
    split = split_by_group(videos, 0.25, seed=0)
    assert {family(g) for g in split.validation_groups} == {"ffpp", "dfd", "dfdc"}
    assert {v.label for v in split.validation} == {0, 1}
    assert {v.group for v in split.train}.isdisjoint(split.validation_groups)
    assert 0.2 < len(split.validation) / len(videos) < 0.4
