"""Seed 002's member: semi-hard triplet mining, the SVM as torch tensors, and a fitted tiny member
through the registry loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from models.checkpoints import load_classifier, save_safetensors
from models.crops import crops_to_tensor
from models.datasets import FAKE, REAL, LabeledVideo
from models.errors import ConfigError
from models.registry import ModelEntry, Registry
from models.training.cropcache import ClipCrops
from models.training.fit import fit_member, fitted_recipe
from models.training.members import EMBEDDING_SVM, TRIPLET_SVM, MemberRecipe
from models.training.pool import FAKE_VIEW, REAL_VIEW, TrainingClip, ViewPool
from models.training.svm import fit_calibrated_svm, svm_state, torch_svm
from models.training.top_fit import FitConfig, predict_top
from models.training.triplet import pairwise_distances, semi_hard_negatives, semi_hard_triplet_loss
from models.training.trunk import Trunk
from models.zoo import build_classifier
from models.zoo.inference_form import to_inference_form
from tests.tiny_models import TINY_64_SPEC, TINY_BACKBONE

TINY_RECIPE = MemberRecipe(
    model_id="tiny-embedding-svm", architecture="embedding_svm",
    params={"backbone": TINY_BACKBONE, "embedding_dim": 16, "dropout": 0.0, "kernel": "rbf",
            "support_vectors": 1},
    backbone="backbone", backbone_lr=1e-3, head_lr=1e-3, description="test-only tiny embedding + SVM",
    trunk_blocks=3, imagenet_init=False, objective=TRIPLET_SVM,
)


# ---------------------------------------------------------------------------------- triplet mining

def test_semi_hard_mining_takes_the_closest_negative_beyond_the_positive() -> None:
    # 1-D embeddings: anchor 0, positive 0.5; negatives at 0.3 (too hard), 0.8 and 1.5.
    points = torch.tensor([[0.0], [0.5], [0.3], [0.8], [1.5]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    mined = semi_hard_negatives(pairwise_distances(points), labels)
    assert mined[0, 1] == pytest.approx(0.8, abs=1e-5)  # not 0.3 (harder) nor 1.5 (easier)
    # from the positive's side (anchor 0.5, positive 0): 0.8 is at 0.3 < 0.5, 0.3 at 0.2, 1.5 at 1.0
    assert mined[1, 0] == pytest.approx(1.0, abs=1e-5)


def test_without_a_semi_hard_negative_the_farthest_negative_is_used() -> None:
    points = torch.tensor([[0.0], [2.0], [0.5], [1.0]])  # both negatives closer than the positive
    labels = torch.tensor([0, 0, 1, 1])
    mined = semi_hard_negatives(pairwise_distances(points), labels)
    assert mined[0, 1] == pytest.approx(1.0, abs=1e-5)


def test_triplet_loss_value_and_its_zero_when_classes_are_a_margin_apart() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    apart = torch.tensor([[0.0], [0.1], [3.0], [3.1]])
    assert semi_hard_triplet_loss(apart, labels, margin=1.0).item() == pytest.approx(0.0, abs=1e-6)
    close = torch.tensor([[0.0], [0.4], [0.6], [1.0]])
    # every pair has d(a, p) 0.4 and mines a negative at 0.6 (pair (2, 3): none beyond, farthest)
    assert semi_hard_triplet_loss(close, labels, margin=1.0).item() == pytest.approx(0.8, abs=1e-5)


def test_triplet_loss_is_zero_with_a_gradient_when_a_batch_has_one_label() -> None:
    embeddings = torch.randn(4, 3, requires_grad=True)
    loss = semi_hard_triplet_loss(embeddings, torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and embeddings.grad is not None


def test_triplet_loss_pulls_classes_apart() -> None:
    torch.manual_seed(0)
    embeddings = torch.randn(16, 8, requires_grad=True)
    labels = torch.arange(16) % 2
    optimiser = torch.optim.Adam([embeddings], lr=0.05)
    first = None
    for _ in range(60):
        loss = semi_hard_triplet_loss(torch.nn.functional.normalize(embeddings, dim=1), labels)
        first = loss.item() if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert first > 0.5 and loss.item() < 0.01


# ---------------------------------------------------------------------------------- SVM as tensors

@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_torch_svm_equals_scikit_learn(kernel: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 12))
    y = (x[:, 0] + x[:, 1] ** 2 - 1 + 0.5 * rng.normal(size=300) > 0).astype(np.int64)
    calibrated = fit_calibrated_svm(x[:200], y[:200], rng.uniform(0.5, 2.0, 200), kernel)
    module = torch_svm(calibrated)
    test = torch.from_numpy(x[200:]).float()
    with torch.no_grad():
        decision = module.decision(test).numpy()
        probability = torch.sigmoid(module(test)).numpy()
    svc = calibrated.calibrated_classifiers_[0].estimator
    np.testing.assert_allclose(decision, svc.decision_function(x[200:]), atol=1e-4)
    np.testing.assert_allclose(probability, calibrated.predict_proba(x[200:])[:, 1], atol=1e-5)
    assert module.support_vectors.shape == svc.support_vectors_.shape


def test_svm_state_refuses_labels_other_than_zero_and_one() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 4))
    calibrated = fit_calibrated_svm(x, (x[:, 0] > 0).astype(np.int64) + 1, np.ones(60), "rbf")
    with pytest.raises(ValueError, match="labels 0"):
        svm_state(calibrated)


def test_unknown_kernel_and_empty_svm_are_refused() -> None:
    with pytest.raises(ConfigError, match="kernel"):
        build_classifier("embedding_svm", backbone=TINY_BACKBONE, kernel="poly")
    with pytest.raises(ConfigError, match="support vector"):
        build_classifier("embedding_svm", backbone=TINY_BACKBONE, support_vectors=0)


def test_the_project_recipe_is_the_dacon_design() -> None:
    model = build_classifier(EMBEDDING_SVM.architecture, **EMBEDDING_SVM.params)  # no ImageNet load
    assert model.dense.in_features == 1280 and model.dense.out_features == 512
    assert model.dropout.p == 0.4 and model.svm.kernel == "rbf"


# ---------------------------------------------------------------------------------- a fitted member

def _images(rng: np.random.Generator, fake: bool, count: int) -> list[np.ndarray]:
    """Smooth faces-sized images; fakes carry a fine checkerboard, the artefact to learn."""
    base = rng.uniform(60, 200, size=(count, 1, 1, 3)) + np.linspace(0, 40, 64)[None, :, None, None]
    images = np.broadcast_to(base, (count, 64, 64, 3)).copy()
    if fake:
        images += 40 * ((np.indices((64, 64)).sum(0) % 2) - 0.5)[None, :, :, None]
    return list(np.clip(images + rng.normal(0, 3, images.shape), 0, 255).astype(np.uint8))


def _clip(name: str, label: int, crops: int) -> TrainingClip:
    video = LabeledVideo(path=Path(f"{name}.mp4"), label=label, group=name, subset=name,
                         family="none" if label == REAL else "faceswap")
    faces = ClipCrops(
        crops=np.zeros((crops, 8, 8, 3), np.uint8), landmarks=np.zeros((crops, 5, 2), np.float32),
        boxes=np.tile(np.array([10, 10, 50, 60], np.float32), (crops, 1)),
        frame_landmarks=np.zeros((crops, 5, 2), np.float32), confidences=np.ones(crops, np.float32),
        frame_positions=np.arange(crops), frame_indices=np.arange(crops), frames_sampled=crops,
    )
    return TrainingClip(video, faces)


@pytest.fixture(scope="module")
def fitted() -> tuple[torch.nn.Module, MemberRecipe, Trunk, list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    trunk = Trunk(TINY_RECIPE, TINY_64_SPEC, torch.device("cpu"), seed=0)
    clips = [_clip(f"c{i}", REAL if i % 2 == 0 else FAKE, 12) for i in range(6)]
    images = [image for clip in clips for image in _images(rng, clip.video.label == FAKE, 12)]
    kinds = np.repeat([REAL_VIEW if c.video.label == REAL else FAKE_VIEW for c in clips], 12)
    pool = ViewPool(maps=trunk(images), clip=np.repeat(np.arange(6), 12), kind=kinds)
    model = fit_member(TINY_RECIPE, pool, clips, np.ones(6, bool),
                       FitConfig(steps=30, batch_size=16, sbi_fraction=0.0, seed=0))
    test_images = _images(rng, False, 10) + _images(rng, True, 10)
    return model, fitted_recipe(TINY_RECIPE, model), trunk, test_images, np.repeat([0, 1], 10)


def test_a_fitted_member_scores_unseen_fakes_higher(fitted) -> None:
    model, recipe, trunk, images, labels = fitted
    logits = predict_top(model, recipe, trunk(images))
    assert roc_auc_score(labels, logits) > 0.9
    assert recipe.params["support_vectors"] == model.svm.support_vectors.shape[0] > 1


def test_a_fitted_member_round_trips_through_the_registry(fitted, tmp_path: Path) -> None:
    model, recipe, _, images, _ = fitted
    file = "tiny-embedding-svm.safetensors"
    sha = save_safetensors(model, tmp_path / file)
    entry = ModelEntry(
        id=recipe.model_id, architecture=recipe.architecture, params=dict(recipe.params),
        preprocessing=TINY_64_SPEC, file=file, format="safetensors", sha256=sha,
        size_bytes=(tmp_path / file).stat().st_size, license="test-only",
        training_data="synthetic images", description=recipe.description,
    )
    Registry(tmp_path, {TINY_64_SPEC.name: TINY_64_SPEC}, {entry.id: entry}, {"default": (entry.id,)},
             "default").write(tmp_path / "registry.toml")
    registry = Registry.load(tmp_path / "registry.toml")
    loaded = load_classifier(registry.models[entry.id], registry)
    batch = crops_to_tensor(images, TINY_64_SPEC)
    with torch.no_grad():
        expected = model.eval()(batch)
        assert torch.equal(loaded(batch), expected)
        np.testing.assert_allclose(to_inference_form(loaded)(batch).numpy(), expected.numpy(), atol=1e-4)
    assert len(set(expected.tolist())) > 10  # the SVM's buffers made it: scores differ per image


def test_every_trained_ensemble_is_offered_by_the_cli_and_registered() -> None:
    from fakewatch.cli.train import BLEND_ENSEMBLE, PAIR_ENSEMBLE, train
    from models.training import blend_run, pair_run
    from models.training.members import MEMBERS, TRAINED_ENSEMBLES

    option = next(p for p in train.params if p.name == "ensemble_name")
    assert (PAIR_ENSEMBLE, BLEND_ENSEMBLE) == (pair_run.ENSEMBLE.name, blend_run.ENSEMBLE.name)
    own_runs = (pair_run.ENSEMBLE, blend_run.ENSEMBLE)
    assert set(option.type.choices) == set(TRAINED_ENSEMBLES) | {e.name for e in own_runs}
    registry = Registry.load()
    for ensemble in TRAINED_ENSEMBLES.values():
        assert set(ensemble.members) <= set(MEMBERS)
        assert [e.id for e in registry.resolve([ensemble.name])] == list(ensemble.members)
    for ensemble in own_runs:
        assert [e.id for e in registry.resolve([ensemble.name])] == list(ensemble.members)
