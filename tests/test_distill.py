"""Seed 001's distilled hybrid ViT: its two heads, its loss, its teacher and how a run wires them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional

from models.checkpoints import load_classifier
from models.crops import crops_to_tensor
from models.errors import ConfigError
from models.registry import Registry
from models.training.calibration import calibrated
from models.training.distill import distillation_loss
from models.training.members import HYBRID_VIT_DISTILLED, MEMBERS
from models.training.pool import ViewPool
from models.training.teacher import Teacher, teacher_view, window_fraction
from models.training.top_fit import FitConfig, batch_loss, fit_top
from models.zoo import build_classifier
from tests.tiny_models import TINY_64_SPEC, TINY_MEMBERS, build_tiny, write_test_registry

SIZE = TINY_64_SPEC.size


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return build_tiny("tiny-hybrid-distilled")


def test_inference_answers_with_the_distillation_head(model) -> None:
    images = torch.rand(3, 3, SIZE, SIZE)
    with torch.no_grad():
        class_logits, distillation_logits = model.heads(model.features(images))
        logits = model(images)
    assert logits.shape == class_logits.shape == (3,)
    assert torch.equal(logits, distillation_logits)
    assert not torch.allclose(class_logits, distillation_logits)  # two tokens, two heads


def test_the_distillation_token_adds_a_position_and_a_head(model) -> None:
    plain = build_classifier("hybrid_vit", **TINY_MEMBERS["tiny-hybrid"].params)
    state, plain_state = model.state_dict(), plain.state_dict()
    assert set(state) - set(plain_state) == {"dist_token", "dist_head.weight", "dist_head.bias"}
    assert state["pos_embed"].shape[1] == plain_state["pos_embed"].shape[1] + 1
    with pytest.raises(ValueError, match="built for 64x64"):
        model(torch.rand(1, 3, 96, 96))


def test_with_the_label_as_teacher_the_loss_is_plain_bce() -> None:
    torch.manual_seed(0)
    class_logits, distillation_logits = torch.randn(8), torch.randn(8)
    labels = (torch.rand(8) > 0.5).float()
    loss = distillation_loss(class_logits, distillation_logits, labels, labels)
    each = [functional.binary_cross_entropy_with_logits(z, labels) for z in (class_logits, distillation_logits)]
    assert loss == pytest.approx(float(sum(each) / 2))
    same = distillation_loss(class_logits, class_logits, labels, labels)
    assert same == pytest.approx(float(functional.binary_cross_entropy_with_logits(class_logits, labels)))


def test_the_teacher_moves_only_the_distillation_gradient() -> None:
    labels = torch.tensor([0.0, 1.0, 1.0, 0.0])

    def gradients(teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        class_logits = torch.zeros(4, requires_grad=True)
        distillation_logits = torch.zeros(4, requires_grad=True)
        distillation_loss(class_logits, distillation_logits, labels, teacher).backward()
        return class_logits.grad, distillation_logits.grad

    as_label = gradients(labels)
    soft = gradients(torch.tensor([0.4, 0.6, 0.9, 0.1]))
    assert torch.equal(as_label[0], soft[0])
    assert not torch.allclose(as_label[1], soft[1])
    # d/dz of 0.5 * BCE(z, t) at z = 0 is 0.5 * (0.5 - t) / N
    assert torch.allclose(soft[1], 0.5 * (0.5 - torch.tensor([0.4, 0.6, 0.9, 0.1])) / 4)


def test_a_member_step_on_a_toy_batch_follows_the_teacher() -> None:
    """Through the training path (`batch_loss` on trunk maps): the teacher's scores change the
    distillation head's gradients, never the class head's."""
    from dataclasses import replace

    recipe = replace(HYBRID_VIT_DISTILLED, params=dict(TINY_MEMBERS["tiny-hybrid-distilled"].params),
                     trunk_blocks=3, imagenet_init=False)
    torch.manual_seed(0)
    member = recipe.build()
    maps = member.backbone.blocks[:3](member.backbone.bn1(member.backbone.conv_stem(torch.rand(4, 3, SIZE, SIZE))))
    labels = torch.tensor([0.0, 1.0, 1.0, 0.0])

    def head_gradients(teacher: torch.Tensor) -> dict[str, torch.Tensor]:
        member.zero_grad()
        batch_loss(member, recipe, maps.detach(), labels, teacher).backward()
        return {name: p.grad.clone() for name, p in member.named_parameters()
                if name.startswith(("head.", "dist_head."))}

    as_label, soft = head_gradients(labels), head_gradients(torch.full((4,), 0.5))
    assert torch.equal(as_label["head.weight"], soft["head.weight"])
    assert not torch.allclose(as_label["dist_head.weight"], soft["dist_head.weight"])
    with pytest.raises(ConfigError, match="teacher"):
        batch_loss(member, recipe, maps, labels, None)


def test_a_distilled_fit_refuses_a_pool_without_teacher_scores() -> None:
    pool = ViewPool(maps=np.zeros((2, 1, 1, 1), np.float16), clip=np.zeros(2, np.int64), kind=np.zeros(2, np.int64))
    with pytest.raises(ConfigError, match="needs a teacher"):
        fit_top(HYBRID_VIT_DISTILLED, pool, [], np.ones(1, bool), FitConfig(steps=1))


def test_the_mesonet_window_is_the_centred_part_of_the_fakewatch_crop() -> None:
    registry = Registry.load()
    fakewatch, mesonet = registry.preprocessing["fakewatch"], registry.preprocessing["mesonet"]
    fraction = window_fraction(fakewatch, mesonet)
    assert fraction == pytest.approx(1.09 / 1.5)
    with pytest.raises(ConfigError, match="holds more than"):
        window_fraction(mesonet, fakewatch)
    crop = np.zeros((224, 224, 3), np.uint8)
    crop[40:184, 40:184] = 255  # a bright centre 144 px wide; the window is 163 px
    view = teacher_view(crop, fraction, mesonet.size)
    assert view.shape == (256, 256, 3) and view.dtype == np.uint8
    assert view[128, 128].tolist() == [255, 255, 255] and view[0, 0].tolist() == [0, 0, 0]
    assert view[0:12, :].max() == 0 and view[30:226, 30:226].min() == 255  # ~10 px border, scaled


def test_the_teacher_is_the_mean_of_its_members_calibrated_scores(tmp_path) -> None:
    registry_path = write_test_registry(tmp_path, members=("tiny-meso", "tiny-hybrid"))
    registry = Registry.load(registry_path)
    teacher = Teacher("default", registry, TINY_64_SPEC, torch.device("cpu"))
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(3)]
    expected = []
    for member in ("tiny-meso", "tiny-hybrid"):
        entry = registry.models[member]
        views = [teacher_view(c, 1.0, entry.preprocessing.size) for c in crops]
        with torch.no_grad():
            logits = build_tiny(member)(crops_to_tensor(views, entry.preprocessing)).numpy()
        expected.append(calibrated(logits, entry.temperature))
    scores = teacher(crops)
    assert scores.shape == (3,) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, np.mean(expected, axis=0), rtol=1e-5)
    assert "tiny-meso" in teacher.describe() and "tiny-hybrid" in teacher.describe()


def test_a_model_that_compares_frames_cannot_teach(tmp_path) -> None:
    registry = Registry.load(write_test_registry(tmp_path, members=("tiny-meso", "tiny-meso-ssim")))
    with pytest.raises(ConfigError, match="tiny-meso-ssim judge a face with its neighbouring frame"):
        Teacher("default", registry, TINY_64_SPEC, torch.device("cpu"))


def test_the_authors_crop_mesonets_teach_real_face_crops(face_crop_224) -> None:
    """The four shipped MesoNet checkpoints on their authors' crop (the distilled ViT's teacher)
    score a real face: probabilities, one per view."""
    registry = Registry.load()
    teacher = Teacher("mesonet-authors-crop", registry, registry.preprocessing["fakewatch"],
                      torch.device("cpu"))
    scores = teacher([face_crop_224, face_crop_224[:, ::-1].copy()])
    assert scores.shape == (2,) and np.all((scores > 0) & (scores < 1))
    assert "centred 72.7%" in teacher.describe() and "256 px" in teacher.describe()


@pytest.fixture(scope="module")
def face_crop_224() -> np.ndarray:
    import cv2
    from skimage.data import astronaut

    return cv2.resize(astronaut()[20:252, 108:340], (224, 224), interpolation=cv2.INTER_AREA)


def test_tiny_distilled_weights_round_trip_through_the_registry(tmp_path, model) -> None:
    registry_path = write_test_registry(tmp_path, members=("tiny-hybrid-distilled",))
    registry = Registry.load(registry_path)
    loaded = load_classifier(registry.models["tiny-hybrid-distilled"], registry)
    images = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(loaded(images), model(images))


def test_the_recipe_is_registered_and_trainable() -> None:
    assert MEMBERS["fakewatch-hybrid-vit-distilled"] is HYBRID_VIT_DISTILLED
    entry = Registry.load().models[HYBRID_VIT_DISTILLED.model_id]
    assert entry.architecture == HYBRID_VIT_DISTILLED.architecture and HYBRID_VIT_DISTILLED.distilled
    assert dict(entry.params) == HYBRID_VIT_DISTILLED.params


def test_the_shipped_default_is_too_wide_to_teach_the_distilled_vit() -> None:
    """The default's 2x crop holds more than the student's 1.5x one, so the docs teach with the
    authors' crop instead."""
    registry = Registry.load()
    student = registry.models["fakewatch-hybrid-vit-distilled"].preprocessing
    with pytest.raises(ConfigError, match="holds more than"):
        window_fraction(student, registry.resolve(["default"])[0].preprocessing)
