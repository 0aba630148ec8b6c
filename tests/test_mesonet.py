"""MesoNet-4 and MesoInception-4 with the authors' Keras weights, read without TensorFlow."""

from __future__ import annotations

from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch

from models.checkpoints import load_classifier
from models.errors import WeightsError
from models.keras_weights import read_keras_weights
from models.registry import Registry
from models.zoo.mesonet import Meso4, MesoInception4
from tests.keras_h5 import write_keras_weights
from tests.tiny_models import seeded_model

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"
MESONET_IDS = ["mesonet-meso4-df", "mesonet-meso4-f2f", "mesonet-inception4-df",
               "mesonet-inception4-f2f"]


@pytest.mark.parametrize(("architecture", "params"), [
    ("meso4", {"image_size": 64}), ("meso4", {"image_size": 64, "hidden_activation": True}),
    ("meso_inception4", {"image_size": 64}),
])
def test_keras_file_round_trips_bit_for_bit(architecture: str, params: dict, tmp_path: Path) -> None:
    original = seeded_model(architecture, params, 64, seed=7)
    path = tmp_path / "weights.h5"
    write_keras_weights(original, path, first_number=5)
    fresh = seeded_model(architecture, params, 64, seed=8)
    state = read_keras_weights(path, fresh, negate_output=True)
    fresh.load_state_dict(state, strict=True)
    for key, value in original.state_dict().items():
        if not key.endswith("num_batches_tracked"):  # a training counter Keras does not keep
            assert torch.equal(fresh.state_dict()[key], value), key
    images = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(fresh(images), original(images))


def test_inception_branches_are_matched_by_keras_order_not_by_shape(tmp_path: Path) -> None:
    """Branches 2 and 3 have identical shapes (1x1 3->4, then 3x3 4->4): only the order Keras
    stores them in tells them apart, so swapping them in the file must change the model."""
    original = seeded_model("meso_inception4", {"image_size": 64}, 64, seed=3)
    path = tmp_path / "swapped.h5"
    block = original.inception1
    block.reduce2, block.reduce3 = block.reduce3, block.reduce2
    write_keras_weights(original, path)
    block.reduce2, block.reduce3 = block.reduce3, block.reduce2
    loaded = MesoInception4(image_size=64).eval()
    loaded.load_state_dict(read_keras_weights(path, loaded, negate_output=True))
    assert not torch.equal(loaded.inception1.reduce2.weight, original.inception1.reduce2.weight)


def test_output_convention_is_turned_into_p_fake(tmp_path: Path) -> None:
    model = seeded_model("meso4", {"image_size": 64}, 64, seed=4)
    path = tmp_path / "w.h5"
    write_keras_weights(model, path)  # the file's last layer predicts P(real)
    as_saved = Meso4(image_size=64).eval()
    as_saved.load_state_dict(read_keras_weights(path, as_saved, negate_output=False))
    as_fake = Meso4(image_size=64).eval()
    as_fake.load_state_dict(read_keras_weights(path, as_fake, negate_output=True))
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        p_real, p_fake = torch.sigmoid(as_saved(images)), torch.sigmoid(as_fake(images))
    assert torch.allclose(p_real + p_fake, torch.ones(2))


def test_mismatched_files_are_refused_with_the_layer_named(tmp_path: Path) -> None:
    meso4_file = tmp_path / "meso4.h5"
    write_keras_weights(seeded_model("meso4", {"image_size": 64}, 64, seed=1), meso4_file)
    with pytest.raises(WeightsError, match="weighted Keras layers"):
        read_keras_weights(meso4_file, MesoInception4(image_size=64), negate_output=True)
    with pytest.raises(WeightsError, match="dense_5 gives weight of shape"):
        read_keras_weights(meso4_file, Meso4(image_size=128), negate_output=True)
    not_hdf5 = tmp_path / "text.h5"
    not_hdf5.write_text("not a weights file")
    with pytest.raises(WeightsError, match="cannot read .* as HDF5"):
        read_keras_weights(not_hdf5, Meso4(), negate_output=True)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as file:
        file.create_dataset("x", data=np.zeros(3))
    with pytest.raises(WeightsError, match="not a Keras weights file"):
        read_keras_weights(plain, Meso4(), negate_output=True)


@pytest.mark.parametrize("model_id", MESONET_IDS)
def test_shipped_authors_weights_verify_and_load(model_id: str) -> None:
    registry = Registry.load()
    entry = registry.models[model_id]
    assert registry.check(entry).state == "ok"
    assert (registry.path_of(entry).parent / "LICENSE").is_file()
    assert (registry.path_of(entry).parent / "NOTICE").is_file()
    model = load_classifier(entry, registry)
    assert model(torch.rand(1, 3, 256, 256)).shape == (1,)


@pytest.mark.skipif(not SHARED_IMAGES.is_dir(), reason="../shared/data/images is absent")
@pytest.mark.parametrize("model_id", ["mesonet-meso4-df", "mesonet-inception4-df"])
def test_deepfake_weights_put_the_authors_test_faces_on_their_side(model_id: str) -> None:
    """The four faces shipped with the MesoNet data: their deepfake weights call the two `fake`
    ones fake and the two `real` ones real (256 px, /255, as the authors fed them)."""
    registry = Registry.load()
    model = load_classifier(registry.models[model_id], registry)
    for label in ("fake", "real"):
        for image_path in sorted((SHARED_IMAGES / label).glob("*.jpg")):
            rgb = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB)
            x = torch.from_numpy(cv2.resize(rgb, (256, 256))).permute(2, 0, 1)[None].float() / 255
            with torch.no_grad():
                p_fake = torch.sigmoid(model(x)).item()
            assert (p_fake > 0.5) == (label == "fake"), (image_path.name, p_fake)
