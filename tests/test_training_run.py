"""`fakewatch train` end to end on tiny models and real (generated) face videos, plus the real data folds."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open

from models.checkpoints import load_classifier, sha256_file
from models.config import POLICY_NAMES
from models.datasets import list_labeled_videos
from models.errors import ConfigError
from models.protocol.folds import leave_sources_out
from models.registry import Registry
from models.training.card import ModelCard
from models.training.cropcache import CropCache, CropExtractor
from models.training.export import METADATA_KEY
from models.training.members import HYBRID_VIT_DISTILLED, MemberRecipe, TrainedEnsemble
from models.training.operating import DEFAULT_PRESET, PRESET_MAX_FPR
from models.training.pool import PoolConfig
from models.training.run import CARD_STEM, RunConfig, run_protocol_only, run_training
from models.training.top_fit import FitConfig
from tests.conftest import SHARED_TRAIN_DIR
from tests.conftest import TOY_GROUPS as GROUPS
from tests.tiny_models import TINY_MEMBERS, write_test_registry

FRAMES = 3
REAL_FRAMES = 4
TINY_TRUNK_BLOCKS = 3  # of test_efficientnet's 5 stages

TINY_RECIPES = (
    MemberRecipe(
        model_id="tiny-effnet", architecture="efficientnet", params=dict(TINY_MEMBERS["tiny-effnet"].params),
        backbone="encoder", backbone_lr=1e-3, head_lr=1e-3, description="test-only tiny EfficientNet",
        trunk_blocks=TINY_TRUNK_BLOCKS, imagenet_init=False,
    ),
    MemberRecipe(
        model_id="tiny-hybrid", architecture="hybrid_vit", params=dict(TINY_MEMBERS["tiny-hybrid"].params),
        backbone="backbone", backbone_lr=1e-3, head_lr=1e-3, description="test-only tiny hybrid ViT",
        trunk_blocks=TINY_TRUNK_BLOCKS, imagenet_init=False,
    ),
)


def _config(data: Path, out: Path, cache: Path) -> RunConfig:
    registry = write_test_registry(out, members=("tiny-effnet", "tiny-hybrid"))
    return RunConfig(
        data_dir=data, labels=Path("labels.csv"), out_dir=out, registry_path=registry,
        members=TINY_RECIPES, frames=FRAMES, real_frames=REAL_FRAMES, folds=2,
        pool=PoolConfig(seed=0), fit=FitConfig(steps=4, batch_size=4, seed=0),
        device="cpu", workers=1, cache_root=cache, command="fakewatch train --data toy",
        ensemble=TrainedEnsemble("default", "tiny test ensemble", CARD_STEM, ("tiny-effnet", "tiny-hybrid")),
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


def test_training_writes_a_card_with_out_of_fold_figures(trained) -> None:
    config, card = trained
    stored = ModelCard.model_validate(json.loads((config.out_dir / f"{CARD_STEM}.json").read_text()))
    assert stored == card
    markdown = (config.out_dir / f"{CARD_STEM}.md").read_text()
    for section in ("How well it works on sources it never saw", "Threshold presets", "Aggregation policies"):
        assert section in markdown
    assert card.members[0].sha256 in markdown
    assert card.data.clips == 2 * GROUPS and card.data.real_clips == GROUPS
    # Every clip is scored once, out of fold; every source sits in exactly one fold.
    assert card.protocol.overall.videos == 2 * GROUPS
    assert sorted(s for sources in card.data.folds.values() for s in sources) == [
        f"source_{g}" for g in range(GROUPS)]
    assert set(card.protocol.by_family) == {"faceswap", "lipsync"}
    assert card.policy in POLICY_NAMES and set(card.policies) == set(POLICY_NAMES)
    assert set(card.member_protocol) == {"tiny-effnet", "tiny-hybrid"}
    # Real clips: 2 people x REAL_FRAMES main-person crops x (real + self-blended) views; fakes 2 views.
    assert card.data.training_views == GROUPS * (REAL_FRAMES * 2 + FRAMES * 2)
    assert {p.name for p in card.presets} == set(PRESET_MAX_FPR)
    assert [p.name for p in card.presets if p.default] == [DEFAULT_PRESET]
    strict, balanced, sensitive = (next(p for p in card.presets if p.name == n) for n in PRESET_MAX_FPR)
    assert strict.threshold >= balanced.threshold >= sensitive.threshold


def test_the_registry_carries_the_presets_and_the_detector_uses_them(trained, toy_data, tmp_path) -> None:
    """`fakewatch eval` judges at the registry's default preset and says so; `--preset` picks another."""
    from fakewatch.cli import main

    config, card = trained
    presets = Registry.load(config.registry_path).presets["default"]
    assert presets.listing() == card.presets
    for preset in ("balanced", "strict"):
        outcome = CliRunner().invoke(main, [
            "eval", str(toy_data), "--labels", str(toy_data / "labels.csv"), "--json", "--preset", preset,
            "--frames", str(FRAMES), "--registry", str(config.registry_path), "--device", "cpu",
            "--roc", str(tmp_path / "roc.png"),
        ])
        assert outcome.exit_code == 0, outcome.output
        report = json.loads(outcome.output[outcome.output.index("{"):])
        assert report["preset"] == preset
        assert report["threshold"] == pytest.approx(presets.get(preset).threshold)
        assert report["protocol"]["overall"]["videos"] == 2 * GROUPS
        assert set(report["protocol"]["by_family"]) == {"faceswap", "lipsync"}


def test_training_is_deterministic_and_reuses_the_crop_cache(trained, toy_data, tmp_path) -> None:
    config, card = trained
    spec = Registry.load(config.registry_path).preprocessing["tiny-64"]
    caches = {0: CropCache(CropExtractor(spec, REAL_FRAMES), config.cache_root),
              1: CropCache(CropExtractor(spec, FRAMES), config.cache_root)}
    videos = list_labeled_videos(toy_data, toy_data / "labels.csv")
    assert all(caches[v.label].has(v.path) for v in videos)
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


def test_protocol_only_reports_and_writes_nothing(trained, toy_data, tmp_path) -> None:
    config, _card = trained
    out = tmp_path / "weights"
    fresh = _config(toy_data, out, config.cache_root)
    registry_before = fresh.registry_path.read_text()
    files_before = sorted(out.iterdir())
    tables = run_protocol_only(fresh, echo=lambda line: None)
    assert "| overall | 8 (4) |" in tables and "| lipsync |" in tables and "preset" in tables
    assert fresh.registry_path.read_text() == registry_before and sorted(out.iterdir()) == files_before


TINY_DISTILLED = MemberRecipe(
    model_id="tiny-hybrid-distilled", architecture="hybrid_vit_distilled",
    params=dict(TINY_MEMBERS["tiny-hybrid-distilled"].params), backbone="backbone", backbone_lr=1e-3,
    head_lr=1e-3, description="test-only tiny distilled hybrid ViT", trunk_blocks=TINY_TRUNK_BLOCKS,
    imagenet_init=False, distilled=True,
)


def test_a_distilled_member_trains_from_its_teacher(trained, toy_data, tmp_path) -> None:
    """The teacher scores the views, the card and the registry say who taught, the weights load."""
    out = tmp_path / "weights"
    registry_path = write_test_registry(out, members=("tiny-meso", "tiny-hybrid-distilled"))
    config = replace(_config(toy_data, tmp_path / "sbi", trained[0].cache_root), out_dir=out, registry_path=registry_path,
                     members=(TINY_DISTILLED,), teacher="tiny-meso",
                     ensemble=TrainedEnsemble("default", "tiny distilled", "tiny-distilled",
                                              ("tiny-hybrid-distilled",)))
    card = run_training(config, echo=lambda line: None)
    assert card.training.teacher.startswith("'tiny-meso'")
    assert "teacher 'tiny-meso'" in (out / "tiny-distilled.md").read_text()
    registry = Registry.load(registry_path)
    entry = registry.models["tiny-hybrid-distilled"]
    assert entry.sha256 == card.members[0].sha256 and "distilled from 'tiny-meso'" in entry.training_data
    model = load_classifier(entry, registry)
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(images), model.heads(model.features(images))[1])
    for members, teacher, message in (((TINY_DISTILLED,), None, "learn from a teacher"),
                                      (TINY_RECIPES[:1], "tiny-meso", "no member to train is distilled")):
        with pytest.raises(ConfigError, match=message):
            run_protocol_only(replace(config, members=members, teacher=teacher), echo=lambda line: None)


def test_cli_passes_the_teacher_and_ensemble(toy_data, tmp_path, monkeypatch) -> None:
    from fakewatch.cli import main
    from models.training import run

    seen: list[RunConfig] = []
    monkeypatch.setattr(run, "run_training", lambda config, echo: seen.append(config))
    write_test_registry(tmp_path, members=("tiny-effnet",))
    base = ["train", "--data", str(toy_data), "--out", str(tmp_path)]
    runner = CliRunner()
    result = runner.invoke(main, [*base, "--teacher", "default", "--ensemble", "fakewatch-vit-distilled"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, base)
    assert result.exit_code == 0, result.output
    distilled, plain = seen
    assert distilled.teacher == "default" and distilled.members == (HYBRID_VIT_DISTILLED,)
    assert distilled.ensemble.card_stem == "fakewatch-hybrid-vit-distilled"
    assert plain.teacher is None and plain.ensemble.card_stem == "fakewatch-sbi"


def test_cli_refuses_a_distilled_member_without_teacher(toy_data) -> None:
    from fakewatch.cli import main

    result = CliRunner().invoke(main, ["train", "--data", str(toy_data), "--no-register",
                                       "--members", "fakewatch-hybrid-vit-distilled", "--device", "cpu"])
    assert result.exit_code != 0 and "learn from a teacher" in result.output


@pytest.mark.shared_data
def test_research_data_folds_hold_out_whole_sources() -> None:
    if not (SHARED_TRAIN_DIR / "labels.csv").is_file():
        pytest.skip("shared research data not present")
    videos = list_labeled_videos(SHARED_TRAIN_DIR, SHARED_TRAIN_DIR / "labels.csv")
    folds = leave_sources_out(videos, 5)
    for fold in folds:
        assert {v.label for v in fold.videos} == {0, 1}
        rest = [v for f in folds if f is not fold for v in f.videos]
        assert fold.groups.isdisjoint({v.group for v in rest})
        assert set(fold.sources).isdisjoint({v.subset for v in rest})
    ffpp = [f for f in folds if any(v.subset.startswith("ffpp") for v in f.videos)]
    assert len(ffpp) == 1  # both compressions of FaceForensics++ are one source unit
