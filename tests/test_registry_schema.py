"""The registry file's schema: each malformed file is refused with a message that names the file,
the table and the key, and a registry built in code obeys the same schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.crops import CropSpec
from models.errors import ConfigError
from models.registry import ModelEntry, Registry
from models.registry_schema import ERRORS_SHOWN
from models.zoo import ARCHITECTURES
from models.zoo.mesonet import Meso4

BASE = """
default_ensemble = "default"

[preprocessing.p]
# a comment inside a table
size = 64
margin = 0.25
square = true
color_order = "RGB"
scale = 255.0
mean = [0.5, 0.5, 0.5]
std = [0.5, 0.5, 0.5]

[models.a]
architecture = "meso4"
params = { image_size = 64 }
preprocessing = "p"
file = "a.safetensors"
format = "safetensors"
sha256 = "%s"
sources = ["https://example.org/a"]

[models."b c"]
architecture = "meso4"
preprocessing = "p"
file = "b.safetensors"
format = "safetensors"

[ensembles.default]
models = ["a", "b c"]
default_preset = "balanced"

[ensembles.default.presets.strict]
threshold = 0.8
real_flagged = 0.05
fakes_caught = 0.4

[ensembles.default.presets.balanced]
threshold = 0.6
real_flagged = 0.1
fakes_caught = 0.6

[ensembles.only-a]
models = ["a"]
""" % ("ab" * 32)

A_HEADER = "[models.a]\n"
A_FORMAT = 'format = "safetensors"\nsha256'
B_FILE = 'file = "b.safetensors"\n'
STRICT_THRESHOLD = "threshold = 0.8"

# (what to replace, with what, the table the message names, the rest of the message)
MALFORMED = [
    ("unknown key", "[models.\"b c\"]\n", "[models.\"b c\"]\ntemprature = 2.0\n",
     '[models."b c"]', "unknown keys ['temprature']; the table needs exactly the keys"),
    ("unknown top-level key", 'default_ensemble = "default"\n',
     'default_ensemble = "default"\nversion = 2\n', None, "unknown top-level keys ['version']"),
    ("unknown preprocessing key", "size = 64\n", "size = 64\nshear = 0.1\n",
     "[preprocessing.p]", "unknown keys ['shear']"),
    ("wrong type: str for int", "size = 64", 'size = "64"', "[preprocessing.p]",
     "size must be int, got '64'"),
    ("wrong type: float for int", "size = 64", "size = 64.5", "[preprocessing.p]",
     "size must be int, got 64.5"),
    ("wrong type: bool for number", "margin = 0.25", "margin = true", "[preprocessing.p]",
     "margin must be a finite number, got True"),
    ("not finite", "scale = 255.0", "scale = nan", "[preprocessing.p]",
     "scale must be a finite number"),
    ("wrong type: int for bool", "square = true", "square = 1", "[preprocessing.p]",
     "square must be bool, got 1"),
    ("not a colour order", 'color_order = "RGB"', 'color_order = "YUV"', "[preprocessing.p]",
     "color_order must be one of 'RGB' or 'BGR', got 'YUV'"),
    ("two means", "mean = [0.5, 0.5, 0.5]", "mean = [0.5, 0.5]", "[preprocessing.p]",
     "mean must be a list of 3 numbers"),
    ("zero std", "std = [0.5, 0.5, 0.5]", "std = [0.5, 0.0, 0.5]", "[preprocessing.p]",
     "std[1] must be > 0"),
    ("missing file key", B_FILE, "", '[models."b c"]', "file is missing"),
    ("bad sha256", 'sha256 = "abab', 'sha256 = "ABAB', "[models.a]",
     "sha256 must be 64 lowercase hex digits, got 'ABAB"),
    ("short sha256", 'sha256 = "abab', 'sha256 = "ab"\nx = "', "[models.a]",
     "sha256 must be 64 lowercase hex digits"),
    ("file outside the directory", 'file = "a.safetensors"', 'file = "../a.safetensors"',
     "[models.a]", "file must be a path inside the registry's directory"),
    ("unknown format", A_FORMAT, 'format = "onnx"\nsha256', "[models.a]",
     "format 'onnx' is not one of"),
    ("unknown architecture", 'architecture = "meso4"\nparams', 'architecture = "xception"\nparams',
     "[models.a]", "unknown architecture 'xception'; known: ["),
    ("params not a table", "params = { image_size = 64 }", "params = 64", "[models.a]",
     "params must be a table, got 64"),
    ("sources not strings", 'sources = ["https://example.org/a"]', "sources = [1]", "[models.a]",
     "sources[0] must be str, got 1"),
    ("negative size", A_HEADER, A_HEADER + "size_bytes = -3\n", "[models.a]",
     "size_bytes must be > 0, got -3"),
    ("zero temperature", A_HEADER, A_HEADER + "temperature = 0\n", "[models.a]",
     "temperature must be > 0"),
    ("unknown preprocessing", 'preprocessing = "p"\nfile = "a', 'preprocessing = "q"\nfile = "a',
     "[models.a]", "unknown preprocessing 'q'; known: ['p']"),
    ("ensemble naming unknown model", 'models = ["a"]', 'models = ["a", "c"]', "[ensembles.only-a]",
     "models: ensemble 'only-a' lists unknown model ids ['c']"),
    ("ensemble without models", 'models = ["a"]', "models = []", "[ensembles.only-a]",
     "models: ensemble 'only-a' has no models"),
    ("ensemble naming a model twice", 'models = ["a"]', 'models = ["a", "a"]', "[ensembles.only-a]",
     "models: ensemble 'only-a' lists a model twice: ['a', 'a']"),
    ("ensemble named like a model", "[ensembles.only-a]", "[ensembles.a]", "[ensembles.a]",
     "'a' is both a model id and an ensemble name"),
    ("unknown default ensemble", 'default_ensemble = "default"', 'default_ensemble = "best"', None,
     "default_ensemble 'best' is not one of the ensembles ['default', 'only-a']"),
    ("preset out of range", STRICT_THRESHOLD, "threshold = 1.5", "[ensembles.default.presets.strict]",
     "threshold must be less than or equal to 1"),
    ("negative preset rate", "real_flagged = 0.05", "real_flagged = -0.05",
     "[ensembles.default.presets.strict]", "real_flagged must be greater than or equal to 0"),
    ("preset key missing", "fakes_caught = 0.4\n", "", "[ensembles.default.presets.strict]",
     "fakes_caught is missing"),
    ("unknown default preset", 'default_preset = "balanced"', 'default_preset = "loose"',
     "[ensembles.default]", "default_preset 'loose' is not one of its presets ['strict', 'balanced']"),
    ("presets without a default", 'default_preset = "balanced"\n', "", "[ensembles.default]",
     "'presets' and 'default_preset' come together"),
    ("detector scale out of range", "size = 64\n", "size = 64\ndetector_scale = 1.5\n",
     "[preprocessing.p]", "detector_scale must be less than or equal to 1"),
    ("two detector thresholds", "size = 64\n", "size = 64\ndetector_thresholds = [0.6, 0.7]\n",
     "[preprocessing.p]", "detector_thresholds must be a list of 3 numbers"),
    ("detector threshold of 1", "size = 64\n", "size = 64\ndetector_thresholds = [0.6, 0.7, 1.0]\n",
     "[preprocessing.p]", "detector_thresholds[2] must be < 1"),
    ("a table where a value goes", 'default_ensemble = "default"',
     'default_ensemble = { name = "default" }', None, "default_ensemble must be str"),
    ("a value where tables go", 'models = ["a"]', 'models = ["a"]\ndefault_preset = "x"\npresets = 3',
     "[ensembles.only-a]", "presets must be a table, got 3"),
]


def write(directory: Path, text: str) -> Path:
    path = directory / "registry.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_base_file_is_valid(tmp_path: Path) -> None:
    registry = Registry.load(write(tmp_path, BASE))
    assert list(registry.models) == ["a", "b c"]
    assert registry.presets["default"].default == "balanced"


@pytest.mark.parametrize(("old", "new", "table", "message"),
                         [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED])
def test_a_malformed_file_names_file_table_and_key(
    tmp_path: Path, old: str, new: str, table: str | None, message: str
) -> None:
    assert old in BASE
    path = write(tmp_path, BASE.replace(old, new, 1))
    with pytest.raises(ConfigError) as error:
        Registry.load(path)
    text = str(error.value)
    assert text.startswith(f"{path}: ")
    expected = f"{table} {message}" if table else f"{path}: {message}"
    assert expected in text, text


def test_every_problem_is_listed_not_only_the_first(tmp_path: Path) -> None:
    broken = BASE.replace("size = 64", 'size = "64"').replace("square = true", "square = 1")
    broken = broken.replace(B_FILE, "")
    with pytest.raises(ConfigError) as error:
        Registry.load(write(tmp_path, broken))
    for problem in ("[preprocessing.p] size must be int", "[preprocessing.p] square must be bool",
                    '[models."b c"] file is missing'):
        assert problem in str(error.value)


def test_a_file_broken_everywhere_lists_its_first_problems(tmp_path: Path) -> None:
    extra = "".join(f"unknown_{i} = 1\n" for i in range(3))
    tables = "".join(f"\n[models.m{i}]\n{extra}" for i in range(ERRORS_SHOWN + 5))
    with pytest.raises(ConfigError) as error:
        Registry.load(write(tmp_path, BASE + tables))
    assert str(error.value).count("[models.m") == ERRORS_SHOWN
    assert "more" in str(error.value).split("; ")[-1]


def test_detector_settings_are_optional_and_validated(tmp_path: Path) -> None:
    """issue 11's per-family MTCNN settings: accepted when in range, not required."""
    text = BASE.replace("size = 64\n", "size = 64\ndetector_scale = 0.5\n"
                        "detector_thresholds = [0.85, 0.95, 0.95]\n")
    registry = Registry.load(write(tmp_path, text))
    assert registry.preprocessing["p"].size == 64


def test_architectures_come_from_the_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = BASE.replace('architecture = "meso4"\nparams', 'architecture = "meso5"\nparams')
    with pytest.raises(ConfigError, match="unknown architecture 'meso5'"):
        Registry.load(write(tmp_path, text))
    monkeypatch.setitem(ARCHITECTURES, "meso5", Meso4)
    assert Registry.load(write(tmp_path, text)).models["a"].architecture == "meso5"


def test_a_registry_built_in_code_obeys_the_file_schema(tmp_path: Path) -> None:
    spec = CropSpec("p", 64, 0.25, True, "RGB", 255.0, (0.5,) * 3, (0.5,) * 3)
    entry = ModelEntry(id="m", architecture="meso4", params={}, preprocessing=spec,
                       file="../outside.safetensors", format="safetensors")
    with pytest.raises(ConfigError, match=r"\[models.m\] file must be a path inside"):
        Registry(tmp_path, {"p": spec}, {"m": entry}, {"default": ("m",)}, "default")
    with pytest.raises(ConfigError, match=r"\[ensembles.default\] models: ensemble 'default' lists "
                                          r"unknown model ids \['x'\]"):
        Registry(tmp_path, {"p": spec}, {}, {"default": ("x",)}, "default")
