"""Training building blocks: split, ImageNet init, SBI, augmentations, sampling, calibration, registry edits."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from models.datasets import FAKE, REAL, LabeledVideo
from models.errors import ConfigError, WeightsError
from models.registry import Registry
from models.training import augment as aug
from models.training.calibration import fit_temperature
from models.training.cropcache import ClipCrops, landmarks_in_crop
from models.training.errors import TrainingDataError
from models.training.imagenet import (
    init_from_imagenet,
    load_lukemelas_state_dict,
    map_lukemelas_to_timm,
)
from models.training.register import update_model_entry
from models.training.samples import BalancedSampler, TrainingClip, clip_weights
from models.training.sbi import self_blend
from models.training.split import family, split_by_group
from tests.conftest import REPO_ROOT

CROP = 96


def _video(name: str, label: int, group: str, subset: str = "s") -> LabeledVideo:
    return LabeledVideo(path=Path(f"{name}.mp4"), label=label, group=group, subset=subset)


def _research_like() -> list[LabeledVideo]:
    """Shaped like the shared data: big and small FF++ groups, real-only DFD groups, one DFDC real."""
    videos = []
    for g in range(6):
        videos += [_video(f"ffpp{g}r{i}", REAL, f"ffpp:{g}") for i in range(1 + g % 3)]
        videos += [_video(f"ffpp{g}f{i}", FAKE, f"ffpp:{g}") for i in range(2 + 2 * (g % 3))]
    videos += [_video(f"dfd{g}r", REAL, f"dfd:{g}") for g in range(4)]
    videos += [_video(f"dfd{g}f", FAKE, f"dfd:{g}") for g in range(2, 6)]
    videos += [_video(f"dfdc{g}f", FAKE, f"dfdc:{g}") for g in range(10)]
    videos.append(_video("dfdc0r", REAL, "dfdc:0"))
    return videos


# --- split ----------------------------------------------------------------------------------


def test_split_never_leaks_a_group_and_is_deterministic() -> None:
    videos = _research_like()
    for seed in range(10):
        split = split_by_group(videos, 0.25, seed)
        train_groups = {v.group for v in split.train}
        assert train_groups.isdisjoint(split.validation_groups)
        assert len(split.train) + len(split.validation) == len(videos)
        again = split_by_group(videos, 0.25, seed)
        assert again.validation == split.validation
    assert len({tuple(split_by_group(videos, 0.25, s).validation_groups) for s in range(10)}) > 1


def test_split_holds_out_every_family_with_both_labels() -> None:
    videos = _research_like()
    for seed in range(10):
        split = split_by_group(videos, 0.25, seed)
        assert {family(g) for g in split.validation_groups} == {"ffpp", "dfd", "dfdc"}
        assert {v.label for v in split.validation} == {REAL, FAKE}
        # DFDC's only real clip stays in training, so the model sees that source with both labels.
        assert "dfdc:0" not in split.validation_groups


def test_split_refuses_data_it_cannot_split() -> None:
    with pytest.raises(TrainingDataError):
        split_by_group([_video("a", REAL, "x:1"), _video("b", FAKE, "x:1")], 0.25, 0)


# --- ImageNet initialisation ----------------------------------------------------------------


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


# --- balanced sampling ----------------------------------------------------------------------


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


def test_real_and_fake_weigh_the_same_within_each_family() -> None:
    clips = [_clip(v) for v in _research_like()]
    clips.append(_clip(_video("lonely", FAKE, "other:1")))
    real, fake = clip_weights(clips)
    families = {family(c.video.group) for c in clips}
    for name in families - {"other"}:
        members = np.array([family(c.video.group) == name for c in clips])
        assert real[members].sum() == pytest.approx(fake[members].sum())
        assert real[members].sum() > 0
    # A family without real clips is not drawn from: its fakes would only teach its look.
    assert real[-1] == 0 and fake[-1] == 0


def test_sampler_draws_half_real_and_is_deterministic() -> None:
    clips = [_clip(v) for v in _research_like()]
    sampler = BalancedSampler(clips, sbi_fraction=0.5)
    draws = sampler.epoch(1, 4000, seed=0)
    kinds = Counter(d.kind for d in draws)
    assert abs(kinds["real"] / 4000 - 0.5) < 0.03
    assert abs(kinds["sbi"] / 4000 - 0.25) < 0.03
    assert all((clips[d.clip].video.label == REAL) == (d.kind in ("real", "sbi")) for d in draws)
    assert sampler.epoch(1, 50, seed=0) == sampler.epoch(1, 50, seed=0)
    assert sampler.epoch(2, 50, seed=0) != sampler.epoch(1, 50, seed=0)


def test_sampler_needs_real_clips() -> None:
    with pytest.raises(TrainingDataError):
        BalancedSampler([_clip(_video("f", FAKE, "a:1"))], 0.5)


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
