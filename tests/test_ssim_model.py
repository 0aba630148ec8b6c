"""Seed 004's two-input model: SSIM maps between a person's consecutive crops, scored by the detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.config import DetectOptions, DetectorConfig
from models.crops import crop_face, crops_to_tensor
from models.detector import Detector, frame_sampling
from models.ensemble import Ensemble
from models.errors import ConfigError
from models.registry import Registry
from models.ssim_pairs import SSIM_SIZE, NoPairError, PairInputs, grey_view, partners
from models.video.sampling import iter_sampled_frames
from tests import media
from tests.tiny_models import TINY_MEMBERS, write_test_registry

FRAMES = 8


def _view(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((SSIM_SIZE, SSIM_SIZE)).astype(np.float32)


def test_identical_crops_give_a_map_of_ones_and_a_steady_track() -> None:
    view = _view(0)
    pairs = PairInputs.of_track([view, view.copy(), view.copy()])
    assert pairs.maps.shape == (3, 1, SSIM_SIZE, SSIM_SIZE)
    np.testing.assert_allclose(pairs.maps, 1.0, atol=1e-5)
    np.testing.assert_allclose(pairs.stats, [[1.0, 0.0]] * 3, atol=1e-5)


def test_each_face_is_compared_with_its_own_person_only() -> None:
    """Two people interleaved: the third crop of person 0 changes in one corner; only that
    crop's map (and its partner's, none after it) shows the change, and person 1 is untouched."""
    a, b = _view(1), _view(2)
    changed = a.copy()
    changed[:16, :16] = 1.0 - changed[:16, :16]
    views = [a, b, a.copy(), b.copy(), changed, b.copy()]
    identities = np.array([0, 1, 0, 1, 0, 1])
    pairs = PairInputs.of_faces(views, identities)
    np.testing.assert_allclose(pairs.maps[[0, 1, 2, 3, 5]], 1.0, atol=1e-5)
    corner, rest = pairs.maps[4, 0, :10, :10], pairs.maps[4, 0, 30:, 30:]
    assert corner.max() < 0.5 and rest.min() > 0.999
    # Person 0's pairs: (a, a) and (a, changed); person 1's statistics stay those of a still face.
    assert pairs.stats[0, 0] == pytest.approx((1.0 + pairs.maps[4].mean()) / 2, abs=1e-5)
    assert pairs.stats[0, 1] > 0.0
    np.testing.assert_allclose(pairs.stats[identities == 1], [[1.0, 0.0]] * 3, atol=1e-5)


def test_pairing_is_with_the_previous_crop_and_the_first_with_the_second() -> None:
    assert partners(4).tolist() == [1, 0, 1, 2]
    with pytest.raises(NoPairError, match="more than one sampled frame"):
        partners(1)


def test_mirrored_crops_have_mirrored_maps() -> None:
    a, b = _view(3), _view(4)
    pairs = PairInputs.of_track([a, b])
    mirrored = PairInputs.of_track([a[:, ::-1].copy(), b[:, ::-1].copy()])
    np.testing.assert_allclose(pairs.flipped().maps, mirrored.maps, atol=1e-5)


@pytest.fixture(scope="module")
def pair_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_registry(tmp_path_factory.mktemp("pair"), members=("tiny-meso", "tiny-meso-ssim"))


@pytest.fixture(scope="module")
def detector(pair_registry: Path) -> Detector:
    detector = Detector(DetectorConfig(registry_path=pair_registry, device="cpu", frames=FRAMES))
    detector.load()
    return detector


def test_the_detector_scores_each_face_against_its_neighbour(
    detector: Detector, pair_registry: Path, two_face_video: Path
) -> None:
    """The pair member's P(fake) of every face is what the model gives that face's crop with the
    SSIM inputs of the same person's crops, cut from the same frames, in sampling order."""
    result = detector.detect(two_face_video)
    faces = [(frame.index, face) for frame in result.frames for face in frame.faces]
    assert len({face.identity for _, face in faces}) == 2
    spec = TINY_MEMBERS["tiny-meso-ssim"].spec
    images = {f.index: f.image for f in iter_sampled_frames(two_face_video, frame_sampling(DetectOptions(), detector.config))}
    crops = [crop_face(images[index], (f.box.x1, f.box.y1, f.box.x2, f.box.y2), spec) for index, f in faces]
    pairs = PairInputs.of_faces([grey_view(c) for c in crops], np.array([f.identity for _, f in faces]))
    ensemble = Ensemble.load(Registry.load(pair_registry), ["tiny-meso-ssim"], torch.device("cpu"))
    expected = ensemble.predict({spec: crops_to_tensor(crops, spec)}, pairs=pairs)["tiny-meso-ssim"]
    got = np.array([f.model_probabilities["tiny-meso-ssim"] for _, f in faces])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.ptp(got) > 0  # the inputs reach the output: faces differ
    assert all(set(f.model_probabilities) == {"tiny-meso", "tiny-meso-ssim"} for _, f in faces)


def test_an_image_cannot_be_judged_by_comparing_frames(detector: Detector, face_image: Path) -> None:
    with pytest.raises(NoPairError, match="more than one sampled frame"):
        detector.detect(face_image)
    # The single-crop member alone still scores it.
    result = detector.detect(face_image, DetectOptions(models=["tiny-meso"]))
    assert result.status == "ok"


def test_a_pair_member_refuses_crops_without_their_pairs(pair_registry: Path) -> None:
    ensemble = Ensemble.load(Registry.load(pair_registry), None, torch.device("cpu"))
    spec = TINY_MEMBERS["tiny-meso"].spec
    with pytest.raises(ConfigError, match="neighbouring crop"):
        ensemble.predict({spec: torch.zeros(2, 3, spec.size, spec.size)})


def test_a_still_face_and_a_moving_face_differ_in_the_track_statistics(
    detector: Detector, media_dir: Path, face_video: Path
) -> None:
    """A still photo held in front of the camera changes less between frames than a moving head."""
    still = media.encode_images(media_dir / "still.mp4", [media.face_frame(0)] * 12)
    statistics = {}
    for name, path in (("still", still), ("moving", face_video)):
        result = detector.detect(path, DetectOptions(models=["tiny-meso"]))
        images = {f.index: f.image for f in iter_sampled_frames(path, frame_sampling(DetectOptions(), detector.config))}
        spec = TINY_MEMBERS["tiny-meso-ssim"].spec
        crops = [crop_face(images[frame.index], (f.box.x1, f.box.y1, f.box.x2, f.box.y2), spec)
                 for frame in result.frames for f in frame.faces]
        statistics[name] = PairInputs.of_track([grey_view(c) for c in crops]).stats[0]
    assert statistics["still"][0] > 0.98
    assert statistics["moving"][0] < statistics["still"][0] - 0.05


def test_a_person_seen_once_is_left_out_with_a_warning(detector: Detector, media_dir: Path) -> None:
    """With few sampled frames one-off faces stay people; the pair member cannot score them, so
    they are left out of the verdict and the result says so, while the person seen throughout is
    scored."""
    background = media.gradient_background(640, 360)
    astronaut = (media.astronaut_head(), (200.0, 180.0, 200.0))
    cameraman = (media.cameraman_head(), (470.0, 180.0, 200.0))
    images = [media.paste_heads(background, [astronaut, cameraman] if i == 0 else [astronaut])
              for i in range(FRAMES)]
    path = media.encode_images(media_dir / "bystander_once.mp4", images)
    full = detector.detect(path, DetectOptions(models=["tiny-meso"]))
    assert len(full.identities) == 2  # the single-crop member scores the one-off face too
    result = detector.detect(path)
    assert result.status == "ok"
    assert len(result.identities) == 1 and result.identities[0].faces == FRAMES
    assert [w for w in result.warnings if "1 face(s) of people seen in one sampled frame" in w]


def test_the_comparison_times_a_pair_member_with_its_ssim_maps(detector: Detector) -> None:
    from models.comparison import cpu_cost

    costs = cpu_cost(detector, repeats=1)
    assert set(costs) == {"tiny-meso", "tiny-meso-ssim"}
    assert all(ms > 0 for ms in costs.values())


def test_heatmaps_cover_the_single_crop_members_only(
    detector: Detector, pair_registry: Path, face_video: Path
) -> None:
    from models.face_views import FaceRef, ViewError, face_heatmap

    result = detector.detect(face_video)
    ref = FaceRef(result.frames[0].index, 0)
    sampling = frame_sampling(DetectOptions(), detector.config)
    ensemble = detector.ensemble
    _, heat = face_heatmap(face_video, sampling, result, ref, ensemble, ["tiny-meso", "tiny-meso-ssim"])
    _, alone = face_heatmap(face_video, sampling, result, ref, ensemble, ["tiny-meso"])
    np.testing.assert_allclose(heat, alone)
    with pytest.raises(ViewError, match="single-crop models only"):
        face_heatmap(face_video, sampling, result, ref, ensemble, ["tiny-meso-ssim"])


def test_before_training_the_model_is_the_authors_mesoinception() -> None:
    """The fit starts from the MesoNet authors' model: SSIM branches weigh nothing until trained."""
    from models.checkpoints import load_classifier
    from models.registry import Registry as ProjectRegistry
    from models.training.pair_fit import start_from_authors
    from models.zoo.meso_ssim import MesoInceptionSSIM

    registry = ProjectRegistry.load()
    authors = load_classifier(registry.models["mesonet-inception4-df"], registry).eval()
    model = MesoInceptionSSIM()
    model.face.load_state_dict(authors.state_dict())
    start_from_authors(model)
    model.eval()
    crops = torch.rand(4, 3, 256, 256)
    maps, stats = torch.rand(4, 1, SSIM_SIZE, SSIM_SIZE), torch.rand(4, 2)
    with torch.no_grad():
        torch.testing.assert_close(model(crops, maps, stats), authors(crops))
