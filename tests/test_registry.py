"""The weight registry: parsing, and loading checkpoints we build in each public layout.

Public checkpoints cannot be downloaded here, so every format is proven with a random-weight
model saved exactly as its authors saved theirs, reloaded through the production loader and
compared output for output.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch import nn

from models.checkpoints import DATAPARALLEL_PREFIX, load_classifier, save_safetensors, sha256_file
from models.errors import ConfigError, MissingWeightsError, WeightsError
from models.registry import ModelEntry, Registry
from models.zoo import build_classifier
from tests.test_zoo import SMALL_CROSS_VIT, SMALL_EFFICIENT_VIT
from tests.tiny_models import (
    TINY_64_SPEC,
    TINY_MEMBERS,
    build_tiny,
    seeded_model,
    write_test_registry,
)

SPEC = TINY_64_SPEC
B0 = {"encoder": "tf_efficientnet_b0"}
SELIM_B0_FILE = "final_111_DeepFakeClassifier_tf_efficientnet_b0_0_36"  # no extension, as published
SOURCE = "https://example.org/weights/checkpoint"
TINY_HYBRID = TINY_MEMBERS["tiny-hybrid"].params


def make_entry(
    architecture: str, params: dict[str, object], file: str, fmt: str, **extra: object
) -> ModelEntry:
    return ModelEntry(
        id="m",
        architecture=architecture,
        params=params,
        preprocessing=SPEC,
        file=file,
        format=fmt,
        **extra,
    )


def registry_of(directory: Path, *entries: ModelEntry) -> Registry:
    return Registry(
        directory,
        {SPEC.name: SPEC},
        {e.id: e for e in entries},
        {"default": tuple(e.id for e in entries)},
        "default",
    )


def load_through_registry(directory: Path, entry: ModelEntry, verify: bool = True) -> nn.Module:
    return load_classifier(entry, registry_of(directory, entry), verify=verify)


def save_selim(model: nn.Module, path: Path, bce_best: object = np.float64(0.1932)) -> None:
    """selim's layout: DataParallel keys inside {'epoch', 'state_dict', 'bce_best'}."""
    state = {DATAPARALLEL_PREFIX + k: v for k, v in model.state_dict().items()}
    torch.save({"epoch": 37, "state_dict": state, "bce_best": bce_best}, path)


def assert_same_scores(original: nn.Module, loaded: nn.Module, size: int) -> None:
    images = torch.rand(3, 3, size, size)
    with torch.no_grad():
        expected, actual = original.eval()(images), loaded(images)
    assert torch.equal(actual, expected)
    assert len(set(actual.tolist())) == 3


@pytest.fixture(scope="module")
def selim_b0() -> nn.Module:
    return seeded_model("efficientnet", B0, 64, seed=11)


# --- round trips, one per public format -----------------------------------------------------


@pytest.mark.parametrize("bce_best", [np.float64(0.1932), 0.1932], ids=["numpy", "float"])
def test_selim_checkpoint_round_trip(tmp_path: Path, selim_b0: nn.Module, bce_best: object) -> None:
    path = tmp_path / SELIM_B0_FILE
    save_selim(selim_b0, path, bce_best)
    saved = torch.load(path, weights_only=False)["state_dict"]
    for key in (
        "encoder.conv_stem.weight",
        "encoder.blocks.3.1.bn1.running_mean",
        "encoder.classifier.weight",
        "fc.weight",
        "fc.bias",
    ):
        assert DATAPARALLEL_PREFIX + key in saved
    entry = make_entry("efficientnet", B0, SELIM_B0_FILE, "selim", sha256=sha256_file(path))
    loaded = load_through_registry(tmp_path, entry)
    assert not loaded.training
    assert_same_scores(selim_b0, loaded, 64)


def test_coccomini_efficient_vit_round_trip(tmp_path: Path) -> None:
    model = seeded_model("efficient_vit", SMALL_EFFICIENT_VIT, 64, seed=12)
    torch.save(model.state_dict(), tmp_path / "efficient_vit.pth")
    entry = make_entry("efficient_vit", SMALL_EFFICIENT_VIT, "efficient_vit.pth", "coccomini")
    assert_same_scores(model, load_through_registry(tmp_path, entry), 64)


def test_coccomini_cross_efficient_vit_round_trip(tmp_path: Path) -> None:
    model = seeded_model("cross_efficient_vit", SMALL_CROSS_VIT, 64, seed=13)
    torch.save(model.state_dict(), tmp_path / "cross_efficient_vit.pth")
    roots = {k.split(".")[0] for k in torch.load(tmp_path / "cross_efficient_vit.pth")}
    assert roots == {
        "sm_image_embedder",
        "lg_image_embedder",
        "multi_scale_encoder",
        "sm_mlp_head",
        "lg_mlp_head",
    }
    entry = make_entry(
        "cross_efficient_vit", SMALL_CROSS_VIT, "cross_efficient_vit.pth", "coccomini"
    )
    assert_same_scores(model, load_through_registry(tmp_path, entry), 64)


@pytest.mark.parametrize("member", ["tiny-hybrid", "tiny-hybrid-distilled", "tiny-meso"])
def test_safetensors_round_trip(tmp_path: Path, member: str) -> None:
    tiny = TINY_MEMBERS[member]
    model = build_tiny(member)
    sha = save_safetensors(model, tmp_path / "m.safetensors", {"trained_on": "nothing"})
    assert sha == sha256_file(tmp_path / "m.safetensors")
    with safe_open(str(tmp_path / "m.safetensors"), framework="pt") as stored:
        assert stored.metadata() == {"trained_on": "nothing"}
    entry = make_entry(
        tiny.architecture, dict(tiny.params), "m.safetensors", "safetensors", sha256=sha
    )
    assert_same_scores(model, load_through_registry(tmp_path, entry), tiny.spec.size)


def test_saving_the_same_weights_twice_gives_the_same_sha256(tmp_path: Path) -> None:
    model = build_tiny("tiny-meso")
    metadata = {"architecture": "meso4", "params": "{}", "license": "MIT", "run": "7"}
    shas = {save_safetensors(model, tmp_path / f"{i}.safetensors", metadata) for i in range(6)}
    assert len(shas) == 1
    with safe_open(str(tmp_path / "0.safetensors"), framework="pt") as stored:
        assert stored.metadata() == metadata


# --- what goes wrong, and what the user is told ---------------------------------------------


def test_missing_and_unexpected_keys_are_named(tmp_path: Path, selim_b0: nn.Module) -> None:
    state = {DATAPARALLEL_PREFIX + k: v for k, v in selim_b0.state_dict().items() if k != "fc.bias"}
    state["module.extra.weight"] = torch.zeros(1)
    torch.save({"epoch": 1, "state_dict": state, "bce_best": 0.5}, tmp_path / "ckpt")
    entry = make_entry("efficientnet", B0, "ckpt", "selim")
    with pytest.raises(
        WeightsError, match="1 missing keys: fc.bias; 1 unexpected keys: extra.weight"
    ):
        load_through_registry(tmp_path, entry)


def test_long_key_lists_are_cut_with_counts(tmp_path: Path, selim_b0: nn.Module) -> None:
    torch.save(selim_b0.state_dict(), tmp_path / "effnet.pth")
    entry = make_entry("meso4", {}, "effnet.pth", "coccomini")
    with pytest.raises(WeightsError) as caught:
        load_through_registry(tmp_path, entry)
    message = str(caught.value)
    n_meso, n_b0 = len(build_tiny("tiny-meso").state_dict()), len(selim_b0.state_dict())
    assert f"{n_meso} missing keys: blocks.0.conv.weight" in message
    assert f"({n_meso - 5} more)" in message
    assert f"{n_b0} unexpected keys: encoder.conv_stem.weight" in message
    assert "model 'm'" in message and "architecture meso4" in message


def test_shape_mismatch_is_reported(tmp_path: Path) -> None:
    save_safetensors(build_tiny("tiny-hybrid"), tmp_path / "h.safetensors")
    wider = dict(TINY_HYBRID, dim=48)
    entry = make_entry("hybrid_vit", wider, "h.safetensors", "safetensors")
    with pytest.raises(
        WeightsError, match=r"shape mismatches: .*\(1, 1, 32\) \(model has \(1, 1, 48\)\)"
    ):
        load_through_registry(tmp_path, entry)


def test_selim_file_registered_as_coccomini_is_refused(tmp_path: Path, selim_b0: nn.Module) -> None:
    save_selim(selim_b0, tmp_path / "ckpt")
    entry = make_entry("efficientnet", B0, "ckpt", "coccomini")
    with pytest.raises(WeightsError, match="plain state dict"):
        load_through_registry(tmp_path, entry)


def test_plain_state_dict_registered_as_selim_is_refused(
    tmp_path: Path, selim_b0: nn.Module
) -> None:
    torch.save(selim_b0.state_dict(), tmp_path / "plain.pth")
    entry = make_entry("efficientnet", B0, "plain.pth", "selim")
    with pytest.raises(
        WeightsError, match="not a selim checkpoint: expected a dict with 'state_dict'"
    ):
        load_through_registry(tmp_path, entry)


@pytest.mark.parametrize("fmt", ["selim", "coccomini", "safetensors"])
def test_unreadable_files_are_weights_errors(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "junk").write_bytes(b"this is not a checkpoint at all")
    entry = make_entry("meso4", {}, "junk", fmt)
    with pytest.raises(WeightsError, match="cannot read"):
        load_through_registry(tmp_path, entry)


def test_truncated_checkpoint_is_a_weights_error(tmp_path: Path, selim_b0: nn.Module) -> None:
    save_selim(selim_b0, tmp_path / "full")
    data = (tmp_path / "full").read_bytes()
    (tmp_path / "cut").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="cannot read"):
        load_through_registry(tmp_path, make_entry("efficientnet", B0, "cut", "selim"))


def test_checkpoints_holding_arbitrary_objects_are_refused(tmp_path: Path) -> None:
    torch.save(
        {"state_dict": {"fc.weight": torch.zeros(1)}, "hook": logging.Logger}, tmp_path / "c"
    )
    with pytest.raises(WeightsError, match="weights_only=True"):
        load_through_registry(tmp_path, make_entry("meso4", {}, "c", "selim"))


def test_missing_file_says_where_it_belongs_and_where_to_get_it(tmp_path: Path) -> None:
    entry = make_entry("meso4", {}, "meso.safetensors", "safetensors", sources=(SOURCE,))
    with pytest.raises(MissingWeightsError) as caught:
        load_through_registry(tmp_path, entry)
    message = str(caught.value)
    assert "'meso.safetensors'" in message and str(tmp_path / "meso.safetensors") in message
    assert SOURCE in message and "model 'm'" in message


def test_missing_own_model_says_it_has_no_download(tmp_path: Path) -> None:
    entry = make_entry("meso4", {}, "meso.safetensors", "safetensors")
    with pytest.raises(MissingWeightsError, match="no download source is registered"):
        load_through_registry(tmp_path, entry)


def test_sha256_mismatch_is_refused_unless_verification_is_off(tmp_path: Path) -> None:
    model = build_tiny("tiny-meso")
    actual = save_safetensors(model, tmp_path / "m.safetensors")
    wrong = "0" * 64
    entry = make_entry("meso4", {"image_size": 128}, "m.safetensors", "safetensors", sha256=wrong)
    with pytest.raises(WeightsError, match=f"sha256 {actual}, but the registry expects {wrong}"):
        load_through_registry(tmp_path, entry)
    assert_same_scores(model, load_through_registry(tmp_path, entry, verify=False), 128)


def test_check_reports_each_state(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sha = save_safetensors(build_tiny("tiny-meso"), tmp_path / "m.safetensors")
    params = {"image_size": 128}
    cases = {
        "ok": make_entry("meso4", params, "m.safetensors", "safetensors", sha256=sha),
        "unverified": make_entry("meso4", params, "m.safetensors", "safetensors"),
        "sha256_mismatch": make_entry(
            "meso4", params, "m.safetensors", "safetensors", sha256="f" * 64
        ),
        "missing": make_entry("meso4", params, "gone.safetensors", "safetensors", sha256=sha),
    }
    for state, entry in cases.items():
        status = registry_of(tmp_path, entry).check(entry)
        assert status.state == state
        assert status.loadable == (state in ("ok", "unverified"))
        assert status.actual_sha256 == (None if state == "missing" else sha)
        assert status.path == tmp_path / entry.file
    with caplog.at_level(logging.WARNING, logger="models.checkpoints"):
        load_through_registry(tmp_path, cases["unverified"])
    assert "no sha256 registered" in caplog.text


# --- the registry file ------------------------------------------------------------------------

VALID_TOML = """
default_ensemble = "default"

[preprocessing.p]
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

[models.b]
architecture = "meso4"
preprocessing = "p"
file = "sub/b.safetensors"
format = "safetensors"
temperature = 1.5

[ensembles.default]
models = ["a", "b"]

[ensembles.only-b]
models = ["b"]
""" % ("ab" * 32)


def write_toml(directory: Path, text: str) -> Path:
    path = directory / "registry.toml"
    path.write_text(text)
    return path


def test_valid_registry_parses(tmp_path: Path) -> None:
    registry = Registry.load(write_toml(tmp_path, VALID_TOML))
    a, b = registry.models["a"], registry.models["b"]
    assert a.params == {"image_size": 64} and a.sha256 == "ab" * 32 and a.temperature == 1.0
    assert b.params == {} and b.sha256 is None and b.temperature == 1.5 and b.sources == ()
    assert a.preprocessing.name == "p" and a.preprocessing.mean == (0.5, 0.5, 0.5)
    assert registry.path_of(b) == tmp_path / "sub" / "b.safetensors"
    assert registry.ensembles == {"default": ("a", "b"), "only-b": ("b",)}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'architecture = "meso4"\nparams',
            'architecture = "xception"\nparams',
            "unknown architecture 'xception'",
        ),
        (
            'preprocessing = "p"\nfile = "a',
            'preprocessing = "q"\nfile = "a',
            "unknown preprocessing 'q'",
        ),
        (
            'format = "safetensors"\nsha256',
            'format = "onnx"\nsha256',
            "format 'onnx' is not one of",
        ),
        ('sha256 = "abab', 'sha256 = "ABAB', "sha256 must be 64 lowercase hex"),
        ('file = "a.safetensors"', 'file = "/abs/a.safetensors"', "must be a path inside"),
        ('file = "a.safetensors"', 'file = "../a.safetensors"', "must be a path inside"),
        ("temperature = 1.5", "temperature = 0.0", "temperature must be > 0"),
        ("temperature = 1.5", "temperatur = 1.5", "unknown keys \\['temperatur'\\]"),
        ('models = ["b"]', 'models = ["c"]', "ensemble 'only-b' lists unknown model ids \\['c'\\]"),
        ('models = ["b"]', "models = []", "ensemble 'only-b' has no models"),
        ('default_ensemble = "default"', 'default_ensemble = "best"', "default_ensemble 'best'"),
        ("[ensembles.only-b]", "[ensembles.a]", "'a' is both a model id and an ensemble name"),
        ('color_order = "RGB"', 'color_order = "YUV"', "color_order must be one of"),
        ("size = 64", "size = 64.5", "size must be int"),
        ("square = true", "square = 1", "square must be bool"),
        ("mean = [0.5, 0.5, 0.5]", "mean = [0.5, 0.5]", "list of 3 numbers"),
        ("scale = 255.0\n", "scale = 255.0\nshear = 1\n", "needs exactly the keys"),
        (
            'default_ensemble = "default"',
            'default_ensemble = "default"\nversion = 2',
            "unknown top-level keys",
        ),
    ],
)
def test_inconsistent_registries_are_config_errors(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in VALID_TOML
    path = write_toml(tmp_path, VALID_TOML.replace(old, new, 1))
    with pytest.raises(ConfigError, match=message):
        Registry.load(path)


def test_entries_must_be_filed_under_their_own_id(tmp_path: Path) -> None:
    entry = make_entry("meso4", {}, "m.safetensors", "safetensors")
    with pytest.raises(ConfigError, match="model 'other' is registered with id 'm'"):
        Registry(tmp_path, {SPEC.name: SPEC}, {"other": entry}, {"default": ("other",)}, "default")


def test_missing_or_broken_registry_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Registry.load(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Registry.load(write_toml(tmp_path, "models = [unclosed"))


def test_resolve_ids_ensembles_and_default(tmp_path: Path) -> None:
    registry = Registry.load(write_toml(tmp_path, VALID_TOML))

    def ids(entries: list[ModelEntry]) -> list[str]:
        return [e.id for e in entries]

    assert ids(registry.resolve(None)) == ["a", "b"]
    assert ids(registry.resolve(["only-b"])) == ["b"]
    assert ids(registry.resolve("only-b")) == ["b"]
    assert ids(registry.resolve(["b", "a"])) == ["b", "a"]
    with pytest.raises(
        ConfigError, match=r"unknown model ids \['c'\]; models: \['a', 'b'\]; ensembles"
    ):
        registry.resolve(["a", "c"])
    with pytest.raises(ConfigError, match="must be requested alone"):
        registry.resolve(["a", "only-b"])
    with pytest.raises(ConfigError, match="requested twice"):
        registry.resolve(["a", "a"])
    with pytest.raises(ConfigError, match="no models requested"):
        registry.resolve([])


def test_written_registry_reads_back_equal(tmp_path: Path) -> None:
    for registry in (Registry.load(write_toml(tmp_path, VALID_TOML)), Registry.load()):
        registry.write(tmp_path / "copy.toml")
        copy = Registry.load(tmp_path / "copy.toml")
        assert copy.models == registry.models
        assert [dict(e.params) for e in copy.models.values()] == [
            dict(e.params) for e in registry.models.values()
        ]
        assert copy.preprocessing == registry.preprocessing
        assert copy.ensembles == registry.ensembles
        assert copy.default_ensemble == registry.default_ensemble


# --- the tiny test registry other tests use -------------------------------------------------


def test_tiny_registry_loads_verified_and_scores_faces(tmp_path: Path) -> None:
    registry = Registry.load(write_test_registry(tmp_path))
    entries = registry.resolve(None)
    assert [e.id for e in entries] == ["tiny-meso", "tiny-hybrid"]
    for entry in entries:
        assert registry.check(entry).state == "ok"
        assert entry.size_bytes == registry.path_of(entry).stat().st_size
        model = load_classifier(entry, registry)
        size = entry.preprocessing.size
        with torch.no_grad():
            scores = model(torch.rand(3, 3, size, size))
        assert scores.shape == (3,) and len(set(scores.tolist())) == 3


def test_tiny_registry_is_reproducible_and_selectable(tmp_path: Path) -> None:
    first = Registry.load(write_test_registry(tmp_path / "one", members=["tiny-effnet"]))
    second = Registry.load(write_test_registry(tmp_path / "two", members=["tiny-effnet"]))
    assert first.models["tiny-effnet"].sha256 == second.models["tiny-effnet"].sha256
    assert list(first.models) == ["tiny-effnet"]
    with pytest.raises(ValueError, match="tiny members must be some of"):
        write_test_registry(tmp_path / "three", members=["huge"])


# --- the project's registry -------------------------------------------------------------------

SELIM_RELEASE = "https://github.com/selimsef/dfdc_deepfake_challenge/releases/download/0.0.1/"
SELIM_FILES = [
    f"final_{run}_DeepFakeClassifier_tf_efficientnet_b7_ns_0_{epoch}"
    for run, epoch in [(111, 36), (555, 19), (777, 29), (777, 31), (888, 37), (888, 40), (999, 23)]
]


@pytest.fixture(scope="module")
def project_registry() -> Registry:
    return Registry.load()


def test_project_registry_lists_the_known_checkpoints(project_registry: Registry) -> None:
    registry = project_registry
    winners = registry.resolve(["dfdc-winner"])
    assert [e.file for e in winners] == SELIM_FILES
    for entry in winners:
        assert entry.format == "selim" and entry.license == "MIT"
        assert entry.sources == (SELIM_RELEASE + entry.file,)
        assert entry.preprocessing.name == "selim"
        assert entry.params == {"encoder": "tf_efficientnet_b7.ns_jft_in1k"}
    coccomini = registry.resolve(["coccomini"])
    assert [(e.architecture, e.file, e.format) for e in coccomini] == [
        ("efficient_vit", "efficient_vit.pth", "coccomini"),
        ("cross_efficient_vit", "cross_efficient_vit.pth", "coccomini"),
    ]
    assert all(e.preprocessing.name == "coccomini" and e.sources for e in coccomini)
    ours = registry.resolve(["fakewatch-sbi"])
    assert [(e.id, e.file, e.format) for e in ours] == [
        ("fakewatch-effnet-lite0", "fakewatch-effnet-lite0.safetensors", "safetensors"),
        ("fakewatch-hybrid-vit", "fakewatch-hybrid-vit.safetensors", "safetensors"),
    ]
    assert all(e.preprocessing.name == "fakewatch" for e in ours)
    assert ours[1].params["backbone"] == "tf_efficientnet_lite0"
    assert ours[0].params["encoder"] == "tf_efficientnet_lite0"
    distilled = registry.resolve(["fakewatch-vit-distilled"])
    assert [(e.id, e.architecture) for e in distilled] == [
        ("fakewatch-hybrid-vit-distilled", "hybrid_vit_distilled")]
    assert distilled[0].params == ours[1].params and distilled[0].preprocessing == ours[1].preprocessing
    default = registry.resolve(None)  # adopted by `fakewatch weights adopt` (default-ensemble.md)
    assert {e.format for e in default} == {"mesonet"} and len(default) == 4
    assert all(e.preprocessing.name == "mesonet-w20" and e.license == "Apache-2.0" for e in default)
    assert default[0].preprocessing.margin == 0.5  # a square of 2x the box (default-ensemble.md)
    authors = registry.resolve(["mesonet-authors-crop"])
    assert [e.file for e in authors] == [e.file for e in default]
    assert all(e.preprocessing.name == "mesonet" for e in authors)
    assert set(registry.presets[registry.default_ensemble].points) == {"strict", "balanced", "sensitive"}
    assert all(
        registry.path_of(e).is_relative_to(Path(registry.directory)) for e in registry.models.values()
    )


def test_project_registry_has_no_test_models(project_registry: Registry) -> None:
    assert not set(project_registry.models) & set(TINY_MEMBERS)
    assert "tiny" not in project_registry.to_toml()


def test_every_project_entry_builds(project_registry: Registry) -> None:
    """Each distinct architecture is built once (B7 construction is the slow one)."""
    built: dict[str, dict[str, torch.Size]] = {}
    for entry in project_registry.models.values():
        key = f"{entry.architecture} {sorted(entry.params.items())}"
        if key not in built:
            model = build_classifier(entry.architecture, **entry.params)
            if entry.architecture in ("hybrid_vit", "hybrid_vit_distilled"):
                assert model.image_size == entry.preprocessing.size
            built[key] = {k: v.shape for k, v in model.state_dict().items()}
            del model
    assert len(built) == 10  # six families, the distilled hybrid ViT, MesoNet-4, MesoInception-4 and its SSIM variant
    b7 = built["efficientnet [('encoder', 'tf_efficientnet_b7.ns_jft_in1k')]"]
    # the key examples from selim's checkpoints, with the B7 widths
    assert b7["encoder.conv_stem.weight"] == (64, 3, 3, 3)
    assert "encoder.blocks.3.1.bn1.running_mean" in b7
    assert b7["encoder.classifier.weight"] == (1000, 2560)
    assert b7["fc.weight"] == (1, 2560) and b7["fc.bias"] == (1,)
