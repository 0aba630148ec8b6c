"""The Detector end to end: real videos, real MTCNN, tiny real classifiers loaded from disk."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from models.config import DEFAULT_POLICY, DetectOptions, DetectorConfig
from models.crops import crop_face, crops_to_tensor
from models.detector import Detector
from models.ensemble import Ensemble
from models.errors import ConfigError, MissingWeightsError, VideoError
from models.registry import Registry
from models.video.sampling import FrameSampling, read_sampled_frames
from tests import media
from tests.tiny_models import write_test_registry

FRAMES = 8


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_registry(tmp_path_factory.mktemp("tiny-registry"))


@pytest.fixture(scope="session")
def detector(tiny_registry: Path) -> Detector:
    detector = Detector(DetectorConfig(registry_path=tiny_registry, device="cpu", frames=FRAMES))
    detector.load()
    detector.warmup()
    return detector


def test_face_video_scores_every_frame(detector: Detector, face_video: Path) -> None:
    result = detector.detect(face_video)
    assert result.status == "ok"
    assert result.sampled_frames == FRAMES == len(result.frames)
    assert all(len(frame.faces) == 1 for frame in result.frames)
    assert [i.identity for i in result.identities] == [0]
    timestamps = [frame.timestamp for frame in result.frames]
    assert timestamps == sorted(timestamps)
    assert {m.id for m in result.models} == {"tiny-meso", "tiny-hybrid"}
    assert all(len(m.sha256) == 64 for m in result.models)
    for frame in result.frames:
        face = frame.faces[0]
        assert set(face.model_probabilities) == {"tiny-meso", "tiny-hybrid"}
        assert face.probability == pytest.approx(np.mean(list(face.model_probabilities.values())))
        assert face.box.width > 20 and face.detection_confidence > 0.9
    # Default policy: the video is its most fake person; one person here.
    assert result.probability == pytest.approx(result.identities[0].probability)
    assert result.label == ("fake" if result.probability >= result.threshold else "real")
    assert set(result.timings) == {"decode", "detect_faces", "crop", "classify", "aggregate", "total"}
    assert result.file == face_video.name


def test_two_people_are_two_identities(detector: Detector, two_face_video: Path) -> None:
    result = detector.detect(two_face_video, DetectOptions(policy="max-identity"))
    assert [i.identity for i in result.identities] == [0, 1]
    assert result.probability == pytest.approx(max(i.probability for i in result.identities))
    for identity in result.identities:
        assert identity.faces >= FRAMES - 1
        assert identity.first_timestamp < identity.last_timestamp


def test_people_taking_turns_in_one_spot_are_two_identities(
    detector: Detector, media_dir: Path
) -> None:
    path = media.make_turns_video(media_dir / "turns.mp4")  # sampled: astronaut, then cameraman...
    result = detector.detect(path, DetectOptions(policy="max-identity"))
    assert [[face.identity for face in frame.faces] for frame in result.frames] == [[0], [1]] * 4
    assert [i.faces for i in result.identities] == [4, 4]


@pytest.mark.slow
def test_a_dim_room_clip_with_a_small_face_is_scored(detector: Detector, media_dir: Path) -> None:
    """The issue's missed clips, made: 1080p, mean brightness 30, a 50 px face in the shadow,
    sensor noise and compression. Plain MTCNN finds no face in it; the detector scores her."""
    from bench.face_conditions import DIM_ROOM, Scene, chain, face_shadow, shrink
    from models.faces import FaceDetector

    plain = FaceDetector()
    (faces,) = plain.detect([media.face_frame(0)])
    standing = shrink(50)(
        Scene(media.face_frame(0), tuple(float(v) for v in faces[0].box)), np.random.default_rng(0)
    )
    dim = chain(face_shadow(), DIM_ROOM)
    images = [dim(standing, np.random.default_rng(seed)).image for seed in range(FRAMES)]
    path = media.encode_images(media_dir / "dim_room.mp4", images)
    _, decoded = read_sampled_frames(path, FrameSampling(count=FRAMES))
    assert plain.detect([frame.image for frame in decoded]) == [[]] * FRAMES
    result = detector.detect(path)
    assert result.status == "ok" and result.frames_without_face == 0
    assert [i.identity for i in result.identities] == [0]


def test_each_face_keeps_the_scores_of_its_own_crop(
    detector: Detector, tiny_registry: Path, two_face_video: Path
) -> None:
    """Faces are classified batch by batch while the video decodes; each must still get the
    scores of the crop made from its own frame and box."""
    result = detector.detect(two_face_video)
    _, frames = read_sampled_frames(two_face_video, FrameSampling(count=FRAMES))
    ensemble = Ensemble.load(Registry.load(tiny_registry), None, torch.device("cpu"))
    faces = [(frame, face) for frame in result.frames for face in frame.faces]
    assert len(faces) >= 2 * FRAMES - 2
    images = {frame.index: frame.image for frame in frames}
    crops = {
        spec: crops_to_tensor(
            [
                crop_face(images[frame.index], np.array([f.box.x1, f.box.y1, f.box.x2, f.box.y2]), spec)
                for frame, f in faces
            ],
            spec,
        )
        for spec in ensemble.specs
    }
    expected = ensemble.predict(crops)
    for row, (_, face) in enumerate(faces):
        for model_id, probability in face.model_probabilities.items():
            assert probability == pytest.approx(expected[model_id][row], abs=1e-4)


def test_padded_batches_score_each_crop_as_unpadded(tiny_registry: Path) -> None:
    """On a GPU each batch is padded to a bucket size (cuDNN plans per shape); the padding
    crops must change no real crop's score and never be returned."""
    ensemble = Ensemble.load(Registry.load(tiny_registry), None, torch.device("cpu"))
    ensemble.batch_size = 16  # buckets 8 and 16: 21 crops are one full and one padded batch
    crops = {
        spec: torch.rand(21, 3, spec.size, spec.size, generator=torch.Generator().manual_seed(1))
        for spec in ensemble.specs
    }
    plain = ensemble.predict(crops)
    ensemble.pad_batches = True
    padded = ensemble.predict(crops)
    for model_id, expected in plain.items():
        assert padded[model_id].shape == (21,)
        assert np.allclose(padded[model_id], expected, atol=1e-5)


def test_no_face_is_explicit(detector: Detector, blank_video: Path) -> None:
    result = detector.detect(blank_video)
    assert result.status == "no_face"
    assert result.probability is None and result.label is None
    assert result.identities == [] and len(result.frames) == FRAMES
    assert result.frames_without_face == FRAMES


def test_frames_without_a_face_are_counted(detector: Detector, media_dir: Path) -> None:
    """The person leaves halfway: the result says how many sampled frames were not judged."""
    path = media.make_face_video(media_dir / "leaves.mp4", frames=24, faceless_from=12)
    result = detector.detect(path)
    assert result.status == "ok"
    empty = [frame.index for frame in result.frames if not frame.faces]
    assert empty and all(index >= 12 for index in empty)
    assert result.frames_without_face == len(empty) == sum(1 for f in result.frames if f.index >= 12)
    assert json.loads(result.model_dump_json())["frames_without_face"] == len(empty)


def test_image_is_a_one_frame_video(detector: Detector, face_image: Path) -> None:
    result = detector.detect(face_image)
    assert result.status == "ok" and result.sampled_frames == 1 and result.video.is_image


@pytest.mark.parametrize("kind", ["empty", "text", "audio_only", "garbage", "no_frames"])
def test_bad_files_raise_video_error(detector: Detector, bad_files: dict[str, Path], kind: str) -> None:
    with pytest.raises(VideoError):
        detector.detect(bad_files[kind])


def test_options_override_defaults(detector: Detector, face_video: Path) -> None:
    full = detector.detect(face_video)
    one = detector.detect(face_video, DetectOptions(models=["tiny-meso"], frames=4, policy="mean", threshold=0.0))
    assert {m.id for m in one.models} == {"tiny-meso"}
    assert one.sampled_frames == 4 and one.aggregation == "mean" and one.label == "fake"
    assert all(set(f.faces[0].model_probabilities) == {"tiny-meso"} for f in one.frames)
    assert full.aggregation == DEFAULT_POLICY == "confident"


def test_results_are_deterministic(detector: Detector, face_video: Path) -> None:
    first, second = detector.detect(face_video), detector.detect(face_video)
    assert first.probability == second.probability
    assert first.frames == second.frames


def test_progress_reports_each_stage(detector: Detector, face_video: Path) -> None:
    seen: list[str] = []
    detector.detect(face_video, progress=lambda stage, fraction: seen.append(stage))
    assert seen[0] == "decode" and seen[-1] == "done"
    assert {"detect_faces", "crop", "classify", "aggregate"} <= set(seen)


def test_unknown_model_or_policy_is_refused(detector: Detector, face_video: Path) -> None:
    with pytest.raises(ConfigError, match="not loaded"):
        detector.detect(face_video, DetectOptions(models=["nope"]))
    with pytest.raises(ValidationError, match="max-identity"):  # options name the known policies
        DetectOptions(policy="median")
    with pytest.raises(ConfigError, match="policy"):
        Detector(DetectorConfig(policy="median", device="cpu"))


def test_missing_weights_name_the_file(tiny_registry: Path, tmp_path: Path) -> None:
    registry = write_test_registry(tmp_path)
    (tmp_path / "tiny-hybrid.safetensors").unlink()
    with pytest.raises(MissingWeightsError, match="tiny-hybrid.safetensors"):
        Detector(DetectorConfig(registry_path=registry, device="cpu")).load()


def test_decoder_takes_every_core_only_when_the_models_are_on_a_gpu() -> None:
    from models.detector import decoder_threads

    assert decoder_threads(torch.device("cpu")) == 1  # torch needs the other core
    assert decoder_threads(torch.device("cuda")) == 0  # FFmpeg: one thread per core


def test_a_cut_off_video_is_scored_with_its_decoded_fraction(
    detector: Detector, face_video: Path, tmp_path: Path
) -> None:
    whole = detector.detect(face_video)
    assert whole.decoded_fraction == 1.0 and whole.warnings == []
    cut = media.make_truncated_video(face_video, tmp_path / "cut.mp4", keep_fraction=0.6)
    result = detector.detect(cut)
    assert result.decoded_fraction < 0.7
    assert any("ends early" in warning for warning in result.warnings)
