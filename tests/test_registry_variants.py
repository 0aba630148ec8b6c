"""`variant_of`: one checkpoint registered on several crops without repeating its weights' record.

A variant reads as its base's entry with its own crop and calibration, writes back as the short
table it was, and can neither drift from its base nor be edited into owning weights."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from models.errors import ConfigError
from models.registry import INHERITED_FIELDS, Registry
from models.training.register import update_model_entry
from tests.test_registry_schema import write

CROP = """
[preprocessing.{name}]
size = 64
margin = {margin}
square = true
color_order = "RGB"
scale = 255.0
mean = [0.5, 0.5, 0.5]
std = [0.5, 0.5, 0.5]
"""

MODELS = """
[models.base]
architecture = "meso4"
params = { image_size = 64 }
preprocessing = "tight"
file = "base.safetensors"
format = "safetensors"
sha256 = "%s"
size_bytes = 1234
sources = ["https://example.org/base"]
license = "Apache-2.0"
training_data = "somebody's faces"
description = "the base checkpoint"
temperature = 7.5

[models.wide]
variant_of = "base"
preprocessing = "wide"
temperature = 2.5

[ensembles.default]
models = ["wide"]
""" % ("ab" * 32)

REGISTRY = ('default_ensemble = "default"\n' + CROP.format(name="tight", margin=0.25)
            + CROP.format(name="wide", margin=0.5) + MODELS)

VARIANT_TABLE = '[models.wide]\nvariant_of = "base"\npreprocessing = "wide"\ntemperature = 2.5\n'


def test_a_variant_is_its_base_checkpoint_on_its_own_crop(tmp_path: Path) -> None:
    registry = Registry.load(write(tmp_path, REGISTRY))
    base, wide = registry.models["base"], registry.models["wide"]
    assert wide.variant_of == "base" and base.variant_of is None
    assert {name: getattr(wide, name) for name in INHERITED_FIELDS} == {
        name: getattr(base, name) for name in INHERITED_FIELDS}
    assert wide.description == "the base checkpoint"
    assert wide.preprocessing.name == "wide" and wide.preprocessing.margin == 0.5
    assert wide.temperature == 2.5 and base.temperature == 7.5  # calibration is per crop
    assert registry.path_of(wide) == registry.path_of(base)
    assert [e.id for e in registry.resolve(None)] == ["wide"]


def test_an_unset_temperature_is_not_inherited(tmp_path: Path) -> None:
    registry = Registry.load(write(tmp_path, REGISTRY.replace("temperature = 2.5\n", "")))
    assert registry.models["wide"].temperature == 1.0


def test_a_variant_may_describe_itself(tmp_path: Path) -> None:
    text = REGISTRY.replace(VARIANT_TABLE, VARIANT_TABLE + 'description = "on a wide crop"\n')
    registry = Registry.load(write(tmp_path, text))
    assert registry.models["wide"].description == "on a wide crop"
    registry.write(tmp_path / "copy.toml")
    assert Registry.load(tmp_path / "copy.toml").models == registry.models


def test_a_written_variant_stays_a_short_reference(tmp_path: Path) -> None:
    registry = Registry.load(write(tmp_path, REGISTRY))
    registry.write(tmp_path / "copy.toml")
    written = tomllib.loads((tmp_path / "copy.toml").read_text(encoding="utf-8"))
    assert written["models"]["wide"] == {"variant_of": "base", "preprocessing": "wide",
                                         "temperature": 2.5}
    assert Registry.load(tmp_path / "copy.toml").models == registry.models


def test_the_project_registry_writes_its_variants_back_as_references(tmp_path: Path) -> None:
    registry = Registry.load()
    variants = [e for e in registry.models.values() if e.variant_of is not None]
    assert len(variants) >= 16  # the four MesoNet checkpoints at four wider crops
    registry.write(tmp_path / "copy.toml")
    written = tomllib.loads((tmp_path / "copy.toml").read_text(encoding="utf-8"))["models"]
    assert all("file" not in written[e.id] for e in variants)
    assert Registry.load(tmp_path / "copy.toml").models == registry.models


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('variant_of = "base"', 'variant_of = "nobody"',
         r"\[models.wide\] variant_of: unknown model 'nobody'"),
        (VARIANT_TABLE, VARIANT_TABLE + 'file = "other.safetensors"\nsha256 = "cd"\n',
         (r"\[models.wide\] unknown keys \['file', 'sha256'\]; the table needs exactly the keys "
          r"\['variant_of', 'preprocessing'\] and may hold \['temperature', 'description'\]")),
        ('preprocessing = "wide"\n', "", r"\[models.wide\] preprocessing is missing"),
        ('preprocessing = "wide"', 'preprocessing = "huge"',
         r"\[models.wide\] unknown preprocessing 'huge'"),
        ("temperature = 2.5", "temperature = 0", r"\[models.wide\] temperature must be > 0"),
        ('variant_of = "base"', "variant_of = 3", r"\[models.wide\] variant_of must be str, got 3"),
        (VARIANT_TABLE, VARIANT_TABLE + '\n[models.wider]\nvariant_of = "wide"\npreprocessing = "wide"\n',
         r"\[models.wider\] variant_of: 'wide' is itself a variant of 'base'"),
    ],
)
def test_a_malformed_variant_names_its_table_and_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in REGISTRY
    with pytest.raises(ConfigError, match=message):
        Registry.load(write(tmp_path, REGISTRY.replace(old, new, 1)))


def test_a_registry_built_in_code_cannot_let_a_variant_drift(tmp_path: Path) -> None:
    registry = Registry.load(write(tmp_path, REGISTRY))
    drifted = dataclasses.replace(registry.models["wide"], file="other.safetensors")
    with pytest.raises(ConfigError, match=r"'wide' is a variant of 'base' but differs in \['file'\]"):
        dataclasses.replace(registry, models={**registry.models, "wide": drifted})
    orphan = {"wide": registry.models["wide"]}
    with pytest.raises(ConfigError, match="which is not a model of this registry"):
        dataclasses.replace(registry, models=orphan)


def test_training_may_calibrate_a_variant_but_not_give_it_weights(tmp_path: Path) -> None:
    path = write(tmp_path, REGISTRY)
    update_model_entry(path, "wide", {"temperature": 4.0})
    registry = Registry.load(path)
    assert registry.models["wide"].temperature == 4.0 and registry.models["base"].temperature == 7.5
    with pytest.raises(ConfigError, match=r"\[models.wide\] unknown keys \['sha256'\]"):
        update_model_entry(path, "wide", {"sha256": "cd" * 32})
    assert Registry.load(path).models == registry.models  # the refused edit wrote nothing
