"""Training building blocks: ImageNet init, SBI, augmentations, views and their weights, calibration, registry edits."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from models.crops import CropSpec, crops_to_tensor
from models.datasets import FAKE, REAL, LabeledVideo
from models.errors import ConfigError, WeightsError
from models.registry import Registry
from models.schema import ThresholdPreset
from models.training import augment as aug
from models.training.calibration import fit_temperature
from models.training.cropcache import ClipCrops, landmarks_in_crop
from models.training.errors import TrainingDataError
from models.training.imagenet import (
    init_from_imagenet,
    load_lukemelas_state_dict,
    map_lukemelas_to_timm,
)
from models.training.members import MemberRecipe
from models.training.pool import (
    FAKE_VIEW,
    REAL_VIEW,
    SBI_VIEW,
    PoolConfig,
    TrainingClip,
    ViewPool,
    plan_views,
)
from models.training.register import update_ensemble_presets, update_model_entry
from models.training.sbi import self_blend
from models.training.top_fit import predict_top, view_weights
from models.training.trunk import Trunk, trainable_parameters, trunk_maps
from tests.conftest import REPO_ROOT

CROP = 96


def _video(name: str, label: int, group: str, subset: str = "s", family: str = "") -> LabeledVideo:
    family = family or ("none" if label == REAL else "faceswap")
    return LabeledVideo(path=Path(f"{name}.mp4"), label=label, group=group, subset=subset, family=family)


def test_imagenet_weights_map_onto_timm_and_recognise_a_cat() -> None:
    import cv2
    import timm
    from skimage.data import chelsea

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    init_from_imagenet(model)
    image = cv2.resize(chelsea(), (224, 224), interpolation=cv2.INTER_AREA)
    x = (torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        top = int(model(x).argmax())
    assert 281 <= top <= 285  # ImageNet's domestic cat classes (tabby ... Egyptian cat)


def test_imagenet_mapping_drops_the_head_for_a_headless_model() -> None:
    import timm

    headless = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    init_from_imagenet(headless)  # strict load raises if any key were left over or missing


def test_imagenet_mapping_refuses_tensors_out_of_order() -> None:
    import timm

    source = load_lukemelas_state_dict()
    keys = list(source)
    keys[1], keys[2] = keys[2], keys[1]  # _bn0.weight <-> _bn0.bias: same shape, wrong role
    shuffled = {k: source[k] for k in keys}
    target = {k: v.shape for k, v in timm.create_model("tf_efficientnet_lite0").state_dict().items()}
    with pytest.raises(WeightsError, match="line up"):
        map_lukemelas_to_timm(shuffled, target)


# --- self-blended images and augmentations -------------------------------------------------


@pytest.fixture(scope="module")
def face_crop() -> tuple[np.ndarray, np.ndarray]:
    """A 96 px crop of the astronaut's face and its five MTCNN landmarks (measured on the photo)."""
    import cv2
    from skimage.data import astronaut

    image = astronaut()[40:232, 128:320]  # 192x192 around the face
    points = np.array([[205, 102], [247, 104], [225, 129], [202, 139], [245, 142]], np.float32)
    crop = cv2.resize(image, (CROP, CROP), interpolation=cv2.INTER_AREA)
    return crop, landmarks_in_crop(points, (128, 40, 320, 232), CROP)


def test_self_blend_changes_only_the_masked_face(face_crop) -> None:
    crop, landmarks = face_crop
    for seed in range(8):
        result = self_blend(crop, landmarks, np.random.default_rng(seed))
        assert result.image.shape == crop.shape and result.image.dtype == np.uint8
        outside = result.mask == 0
        assert outside.any() and (~outside).any()
        assert np.array_equal(result.image[outside], crop[outside])
        assert np.abs(result.image.astype(int) - crop).sum() > 0
        assert result.mask[0, 0] == 0 and result.mask[-1, -1] == 0  # corners are background
        cy, cx = landmarks[2].round().astype(int)[::-1]
        assert result.mask[cy, cx] > 0  # the nose is inside


def test_self_blend_is_reproducible(face_crop) -> None:
    crop, landmarks = face_crop
    a = self_blend(crop, landmarks, np.random.default_rng(3))
    b = self_blend(crop, landmarks, np.random.default_rng(3))
    assert np.array_equal(a.image, b.image)


def test_landmarks_follow_the_letterbox() -> None:
    # A 200x100 window letterboxed into 100 px: scale 0.5, 25 px bars above and below.
    points = np.array([[10, 20], [210, 120]], np.float32)
    mapped = landmarks_in_crop(points, (10, 20, 210, 120), 100)
    assert np.allclose(mapped, [[0, 25], [100, 75]])


@pytest.mark.parametrize(
    "transform",
    [
        lambda im, rng: aug.hflip(im),
        lambda im, rng: aug.jpeg(im, 30),
        lambda im, rng: aug.h264(im, 40),
        lambda im, rng: aug.gaussian_blur(im, 1.0),
        lambda im, rng: aug.gaussian_noise(im, 8.0, rng),
        lambda im, rng: aug.downscale(im, 0.4),
        lambda im, rng: aug.color_jitter(im, rng),
        lambda im, rng: aug.cutout(im, rng),
    ],
    ids=["flip", "jpeg", "h264", "blur", "noise", "downscale", "color", "cutout"],
)
def test_each_augmentation_keeps_shape_and_dtype_and_changes_pixels(transform, face_crop) -> None:
    crop = face_crop[0]
    out = transform(crop, np.random.default_rng(0))
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert not np.array_equal(out, crop)


def test_h264_handles_odd_sizes_and_stays_close() -> None:
    image = np.random.default_rng(0).integers(0, 256, (33, 47, 3), dtype=np.uint8)
    image = aug.gaussian_blur(image, 2.0)
    out = aug.h264(image, 18)
    assert out.shape == image.shape
    assert np.abs(out.astype(int) - image).mean() < 6


def test_augment_chain_is_seeded(face_crop) -> None:
    crop = face_crop[0]
    config = aug.AugmentConfig(flip=1, color=1, blur=1, downscale=1, noise=1, compression=1, cutout=1)
    a = aug.augment(crop, np.random.default_rng(5), config)
    b = aug.augment(crop, np.random.default_rng(5), config)
    assert a.shape == crop.shape and a.dtype == np.uint8 and np.array_equal(a, b)
    nothing = aug.AugmentConfig(flip=0, color=0, blur=0, downscale=0, noise=0, compression=0, cutout=0)
    assert np.array_equal(aug.augment(crop, np.random.default_rng(5), nothing), crop)


# --- training clips, views and their weights ------------------------------------------------


def _faces(boxes: list[tuple[int, tuple[float, float, float, float]]], frames: int) -> ClipCrops:
    """A ClipCrops holding faces at (sampled frame position, box)."""
    n = len(boxes)
    return ClipCrops(
        crops=np.zeros((n, 8, 8, 3), np.uint8),
        landmarks=np.zeros((n, 5, 2), np.float32),
        boxes=np.array([box for _, box in boxes], np.float32).reshape(-1, 4),
        frame_landmarks=np.zeros((n, 5, 2), np.float32),
        confidences=np.ones(n, np.float32),
        frame_positions=np.array([position for position, _ in boxes], np.int64),
        frame_indices=np.array([10 * position for position, _ in boxes], np.int64),
        frames_sampled=frames,
    )


def _clip(video: LabeledVideo, crops: int = 3) -> TrainingClip:
    return TrainingClip(video, _faces([(i, (10, 10, 50, 60)) for i in range(crops)], crops))


def test_main_person_keeps_the_longest_track_and_drops_one_offs() -> None:
    left, right, far = (10, 10, 50, 60), (300, 10, 340, 60), (600, 300, 620, 330)
    faces = [(i, left) for i in range(20)] + [(i, right) for i in range(0, 20, 2)] + [(5, far)]
    main = _faces(faces, 20).main_person()
    assert len(main) == 20 and np.all(main.boxes[:, 0] == 10)
    assert list(main.frame_positions) == list(range(20))
    # With dense sampling a face seen once is not a person: nothing is kept, as the detector would.
    assert len(_faces([(3, far)], 20).main_person()) == 0
    # With sparse sampling it is kept.
    assert len(_faces([(3, far)], 4).main_person()) == 1


def _pool_of(clips: list[TrainingClip], config: PoolConfig) -> ViewPool:
    """A pool without a trunk: the views' plan is what the weights depend on."""
    plan = np.array(plan_views(clips, config), np.int64).reshape(-1, 4)
    return ViewPool(maps=np.zeros((len(plan), 1, 1, 1), np.float16), clip=plan[:, 0], kind=plan[:, 3])


def test_views_are_planned_per_crop_by_label() -> None:
    clips = [_clip(_video("r", REAL, "a"), crops=4), _clip(_video("f", FAKE, "b"), crops=3)]
    pool = _pool_of(clips, PoolConfig(real_views=2, sbi_views=1, fake_views=3))
    kinds = Counter(zip(pool.clip.tolist(), pool.kind.tolist(), strict=True))
    assert kinds == {(0, REAL_VIEW): 8, (0, SBI_VIEW): 4, (1, FAKE_VIEW): 9}
    assert np.array_equal(pool.targets, pool.kind != REAL_VIEW)


def test_view_weights_make_the_label_independent_of_family_source_and_size() -> None:
    clips = [_clip(_video(f"r{i}", REAL, f"r:{i}", f"src{i % 3}"), crops=2 + i) for i in range(6)]
    clips += [_clip(_video(f"swap{i}", FAKE, f"s:{i}", "ffpp"), crops=5) for i in range(8)]
    clips += [_clip(_video("lips", FAKE, "l:0", "wav2lip", "lipsync"), crops=1)]
    clips += [_clip(_video("held", FAKE, "h:0", "held", "lipsync"), crops=4)]
    pool = _pool_of(clips, PoolConfig())
    training = np.array([True] * (len(clips) - 1) + [False])
    weights = view_weights(pool, clips, training, sbi_fraction=0.5)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[pool.kind == REAL_VIEW].sum() == pytest.approx(0.5)
    assert weights[pool.kind == SBI_VIEW].sum() == pytest.approx(0.25)
    per_clip = np.bincount(pool.clip, weights, minlength=len(clips))
    assert np.allclose(per_clip[:6] / per_clip[:6].sum(), 1 / 6)  # every real clip alike
    # Families share the genuine fakes equally, whatever their clip or crop counts.
    assert per_clip[6:14].sum() == pytest.approx(per_clip[14]) == pytest.approx(0.125)
    assert per_clip[15] == 0  # held out: never drawn


def test_without_genuine_fakes_the_fake_half_is_self_blended() -> None:
    clips = [_clip(_video("r", REAL, "a")), _clip(_video("f", FAKE, "b"))]
    pool = _pool_of(clips, PoolConfig())
    weights = view_weights(pool, clips, np.array([True, False]), sbi_fraction=0.5)
    assert weights[pool.kind == SBI_VIEW].sum() == pytest.approx(0.5)


def test_the_trunk_split_computes_the_whole_model(face_crop) -> None:
    spec = CropSpec(name="t", size=CROP, margin=0.0, square=True, color_order="RGB", scale=255.0,
                    mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    recipe = MemberRecipe(
        model_id="tiny", architecture="efficientnet", params={"encoder": "test_efficientnet"},
        backbone="encoder", backbone_lr=1e-3, head_lr=1e-3, description="", trunk_blocks=3,
        imagenet_init=False,
    )
    torch.manual_seed(0)
    model = recipe.build().eval()
    trunk = Trunk(recipe, spec, torch.device("cpu"), seed=0)  # the same random weights, inference form
    images = [face_crop[0], face_crop[0][::-1].copy()]
    inputs = crops_to_tensor(images, spec)
    with torch.no_grad():
        whole = model(inputs).numpy()
        maps = trunk_maps(model.encoder, 3, inputs).numpy()
    cached = trunk(images)
    assert cached.dtype == np.float16 and cached.shape == maps.shape
    assert np.allclose(cached, maps, atol=2e-2 * np.abs(maps).max())
    assert np.allclose(predict_top(model, recipe, maps), whole, atol=1e-5)
    trainable = {name for name, _ in trainable_parameters(model, recipe)}
    assert "fc.weight" in trainable and "encoder.blocks.3.0.conv_pw.weight" in trainable
    assert not any(name.startswith(("encoder.conv_stem", "encoder.blocks.2")) for name in trainable)


# --- calibration ----------------------------------------------------------------------------


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_temperature_fit_recovers_a_known_temperature(true_temperature: float) -> None:
    rng = np.random.default_rng(0)
    honest = rng.normal(0.0, 2.0, 20000)
    labels = (rng.random(20000) < 1 / (1 + np.exp(-honest))).astype(int)
    fitted = fit_temperature(honest * true_temperature, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.06)


def test_temperature_fit_needs_both_labels() -> None:
    with pytest.raises(TrainingDataError):
        fit_temperature(np.ones(5), np.ones(5, dtype=int))


# --- registry edits -------------------------------------------------------------------------


def test_registry_update_touches_only_its_table(tmp_path: Path) -> None:
    path = tmp_path / "registry.toml"
    shutil.copy(REPO_ROOT / "weights" / "registry.toml", path)
    before = path.read_text().splitlines()
    params = {"encoder": "tf_efficientnet_lite0", "dropout": 0.2}
    update_model_entry(path, "fakewatch-effnet-lite0",
                       {"sha256": "ab" * 32, "size_bytes": 123, "temperature": 1.75, "params": params})
    entry = Registry.load(path).models["fakewatch-effnet-lite0"]
    assert (entry.sha256, entry.size_bytes, entry.temperature) == ("ab" * 32, 123, 1.75)
    assert dict(entry.params) == params
    after = path.read_text().splitlines()
    changed = [line for line in after if line not in before]
    assert len(changed) == 4 and all(line.split(" =")[0] in {"sha256", "size_bytes", "temperature", "params"} for line in changed)
    assert Registry.load(path).models["fakewatch-hybrid-vit"] == Registry.load(
        REPO_ROOT / "weights" / "registry.toml").models["fakewatch-hybrid-vit"]


def test_registry_update_refuses_other_keys_and_bad_results(tmp_path: Path) -> None:
    path = tmp_path / "registry.toml"
    shutil.copy(REPO_ROOT / "weights" / "registry.toml", path)
    original = path.read_text()
    with pytest.raises(ConfigError):
        update_model_entry(path, "fakewatch-effnet-lite0", {"file": "other.safetensors"})
    with pytest.raises(ConfigError):
        update_model_entry(path, "fakewatch-effnet-lite0", {"temperature": -1.0})
    assert path.read_text() == original


def test_preset_update_replaces_the_ensembles_presets_only(tmp_path: Path) -> None:
    path = tmp_path / "registry.toml"
    shutil.copy(REPO_ROOT / "weights" / "registry.toml", path)
    first = [ThresholdPreset(name="strict", threshold=0.9, real_flagged=0.05, fakes_caught=0.3),
             ThresholdPreset(name="balanced", threshold=0.7, real_flagged=0.1, fakes_caught=0.5, default=True)]
    update_ensemble_presets(path, "default", first, "confident")
    once = path.read_text()
    second = [p.model_copy(update={"threshold": p.threshold - 0.1}) for p in first]
    update_ensemble_presets(path, "default", second, "confident")
    registry = Registry.load(path)
    assert registry.presets["default"].listing() == second
    assert registry.presets["fakewatch-sbi"] == Registry.load(REPO_ROOT / "weights" / "registry.toml").presets[
        "fakewatch-sbi"]  # other ensembles untouched
    assert len(path.read_text().splitlines()) == len(once.splitlines())  # replaced, not appended
    original = Registry.load(REPO_ROOT / "weights" / "registry.toml")
    assert registry.models == original.models and registry.ensembles == original.ensembles


# --- fp16 export check -----------------------------------------------------------------------


def test_fp16_check_accepts_rounding_noise_and_refuses_lost_accuracy() -> None:
    from models.training.export import FP16_AUC_TOLERANCE, FP16_LOG_LOSS_TOLERANCE, Fp16Check

    noise = {"mean_probability_change": 0.008, "max_probability_change": 0.06}
    assert Fp16Check(**noise, frame_auc_change=0.0003, frame_log_loss_change=0.002).harmless
    assert not Fp16Check(
        **noise, frame_auc_change=-2 * FP16_AUC_TOLERANCE, frame_log_loss_change=0.0
    ).harmless
    assert not Fp16Check(
        **noise, frame_auc_change=0.0, frame_log_loss_change=2 * FP16_LOG_LOSS_TOLERANCE
    ).harmless
