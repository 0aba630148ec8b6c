"""The weight registry: which checkpoints exist, and how to build and feed them.

`weights/registry.toml` plays the role of timm's pretrained configs for deepfake checkpoints: each
model names its architecture and parameters, its crop convention (a `[preprocessing.*]` table),
its file and that file's exact public format, its sha256, licence and sources. Loading the files
is `models.checkpoints`' job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal, get_args

from pydantic import ValidationError

import weights
from models.checkpoints import sha256_file
from models.crops import CropSpec
from models.errors import ConfigError
from models.face_settings import KEYS as FACE_SETTINGS_KEYS
from models.face_settings import FaceSettings
from models.schema import ThresholdPreset
from models.zoo import ARCHITECTURES

logger = logging.getLogger(__name__)

WeightFormat = Literal["selim", "coccomini", "safetensors", "mesonet"]
FORMATS: tuple[str, ...] = get_args(WeightFormat)
WeightState = Literal["ok", "unverified", "missing", "sha256_mismatch"]

SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
BARE_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]+")

_SPEC_KEYS = ("size", "margin", "square", "color_order", "scale", "mean", "std")
_REQUIRED_MODEL_KEYS = {"architecture", "preprocessing", "file", "format"}
_OPTIONAL_MODEL_KEYS = {
    "params",
    "sha256",
    "size_bytes",
    "sources",
    "license",
    "training_data",
    "description",
    "temperature",
}
_TOP_LEVEL_KEYS = {"default_ensemble", "preprocessing", "models", "ensembles"}
_ENSEMBLE_KEYS = {"models", "presets", "default_preset"}
_PRESET_KEYS = {"threshold", "real_flagged", "fakes_caught"}


@dataclass(frozen=True)
class ModelEntry:
    """One registered checkpoint.

    Attributes:
        id: registry key, also the model id reported in results.
        architecture: a `models.zoo.ARCHITECTURES` name.
        params: keyword arguments for the architecture (excluded from hashing).
        preprocessing: how its faces are cut and normalised.
        file: path relative to the registry's directory (a bare name for downloaded files).
        format: the checkpoint's on-disk layout: "selim", "coccomini", "safetensors", or "mesonet"
            (the MesoNet authors' Keras HDF5 weights, whose output means P(real)).
        sha256: expected digest, or None when no trustworthy record of it exists.
        size_bytes: expected file size, when known.
        sources: public URLs the file can be downloaded from (empty for our own training).
        license: licence of the weights.
        training_data: what the weights were trained on.
        description: one line for humans.
        temperature: calibration: P(fake) = sigmoid(logit / temperature).
    """

    id: str
    architecture: str
    params: Mapping[str, Any] = field(hash=False)
    preprocessing: CropSpec
    file: str
    format: WeightFormat
    sha256: str | None = None
    size_bytes: int | None = None
    sources: tuple[str, ...] = ()
    license: str | None = None
    training_data: str | None = None
    description: str = ""
    temperature: float = 1.0


@dataclass(frozen=True)
class WeightStatus:
    """What is on disk for one entry: ok (sha256 matches), unverified (no sha256 registered),
    missing, or sha256_mismatch; `actual_sha256` is None when the file is missing."""

    model_id: str
    path: Path
    state: WeightState
    expected_sha256: str | None
    actual_sha256: str | None

    @property
    def loadable(self) -> bool:
        return self.state in ("ok", "unverified")


@dataclass(frozen=True)
class ThresholdPresets:
    """An ensemble's named operating points; `default` is used when a request names none."""

    points: Mapping[str, ThresholdPreset]
    default: str

    def __post_init__(self) -> None:
        if self.default not in self.points:
            raise ConfigError(f"default preset {self.default!r} is not one of {sorted(self.points)}")

    def get(self, name: str | None) -> ThresholdPreset:
        """Preset `name` (None: the default one)."""
        try:
            return self.points[name or self.default]
        except KeyError:
            raise ConfigError(
                f"unknown threshold preset {name!r}; this ensemble has {', '.join(self.points)}"
            ) from None

    def listing(self) -> list[ThresholdPreset]:
        return [p.model_copy(update={"default": p.name == self.default}) for p in self.points.values()]


def registry_file(path: Path | None) -> Path:
    """The registry TOML to read: `path`, or the project's `weights/registry.toml`."""
    return Path(path) if path is not None else weights.DEFAULT_REGISTRY


def registry_sha256(path: Path | None) -> str:
    """sha256 of the registry file's bytes: with each weight file's own sha256 in it, it names
    the exact weights, thresholds and presets a result was scored with."""
    return hashlib.sha256(registry_file(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Registry:
    """Models, crop conventions and ensembles, with weight files under `directory`."""

    directory: Path
    preprocessing: Mapping[str, CropSpec]
    models: Mapping[str, ModelEntry]
    ensembles: Mapping[str, tuple[str, ...]]
    default_ensemble: str
    presets: Mapping[str, ThresholdPresets] = field(default_factory=dict)  # by ensemble name

    def __post_init__(self) -> None:
        for model_id, entry in self.models.items():
            if entry.id != model_id:
                raise ConfigError(f"model '{model_id}' is registered with id '{entry.id}'")
            if self.preprocessing.get(entry.preprocessing.name) != entry.preprocessing:
                raise ConfigError(
                    f"model '{entry.id}' uses preprocessing '{entry.preprocessing.name}', "
                    "which is not one of this registry's [preprocessing] tables"
                )
        for name, members in self.ensembles.items():
            if name in self.models:
                raise ConfigError(f"'{name}' is both a model id and an ensemble name")
            if not members:
                raise ConfigError(f"ensemble '{name}' has no models")
            unknown = [m for m in members if m not in self.models]
            if unknown:
                raise ConfigError(f"ensemble '{name}' lists unknown model ids {unknown}")
            if len(set(members)) != len(members):
                raise ConfigError(f"ensemble '{name}' lists a model twice: {list(members)}")
        unknown_presets = sorted(set(self.presets) - set(self.ensembles))
        if unknown_presets:
            raise ConfigError(f"threshold presets for unknown ensembles {unknown_presets}")
        if self.default_ensemble not in self.ensembles:
            raise ConfigError(
                f"default_ensemble '{self.default_ensemble}' is not one of the ensembles "
                f"{sorted(self.ensembles)}"
            )

    @classmethod
    def load(cls, path: Path | None = None) -> Registry:
        """Parse a registry TOML (default: the project's `weights/registry.toml`).

        Raises:
            ConfigError: the file is missing, not TOML, or describes something inconsistent.
        """
        path = registry_file(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"model registry {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"model registry {path} is not valid TOML: {exc}") from None
        try:
            return _parse(data, path.parent)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def write(self, path: Path) -> None:
        """Write this registry as TOML; weight files resolve relative to `path`'s directory."""
        Path(path).write_text(self.to_toml(), encoding="utf-8")

    def to_toml(self) -> str:
        lines = [f"default_ensemble = {toml_value(self.default_ensemble)}"]
        for name, spec in self.preprocessing.items():
            lines += ["", f"[preprocessing.{_toml_key(name)}]"]
            lines += [f"{key} = {toml_value(getattr(spec, key))}" for key in _SPEC_KEYS]
            lines += [f"{key} = {toml_value(value)}" for key, value in spec.detector.table().items()]
        for model_id, entry in self.models.items():
            lines += ["", f"[models.{_toml_key(model_id)}]"]
            for key, value in _entry_fields(entry).items():
                lines.append(f"{key} = {toml_value(value)}")
        for name, members in self.ensembles.items():
            lines += ["", f"[ensembles.{_toml_key(name)}]", f"models = {toml_value(members)}"]
            if name in self.presets:
                lines.append(f"default_preset = {toml_value(self.presets[name].default)}")
                for preset in self.presets[name].points.values():
                    fields = preset.model_dump(exclude={"name", "default"})
                    lines += ["", f"[ensembles.{_toml_key(name)}.presets.{_toml_key(preset.name)}]"]
                    lines += [f"{key} = {toml_value(value)}" for key, value in fields.items()]
        return "\n".join(lines) + "\n"

    def resolve(self, names: Sequence[str] | None = None) -> list[ModelEntry]:
        """Entries for model ids, or for one ensemble name; None means the default ensemble.

        Raises:
            ConfigError: unknown names, duplicates, an ensemble mixed with other names, or nothing.
        """
        if names is None:
            names = [self.default_ensemble]
        elif isinstance(names, str):
            names = [names]
        names = list(names)
        if not names:
            raise ConfigError("no models requested")
        if len(names) == 1 and names[0] in self.ensembles:
            return [self.models[m] for m in self.ensembles[names[0]]]
        ensembles = [n for n in names if n in self.ensembles]
        if ensembles:
            raise ConfigError(
                f"ensemble names {ensembles} must be requested alone, not with {names}"
            )
        unknown = [n for n in names if n not in self.models]
        if unknown:
            raise ConfigError(
                f"unknown model ids {unknown}; models: {sorted(self.models)}; "
                f"ensembles: {sorted(self.ensembles)}"
            )
        if len(set(names)) != len(names):
            raise ConfigError(f"model ids requested twice: {names}")
        return [self.models[n] for n in names]

    def path_of(self, entry: ModelEntry) -> Path:
        return self.directory / entry.file

    def check(self, entry: ModelEntry) -> WeightStatus:
        """Is the file there, and does its sha256 match? Reads the whole file when present."""
        path = self.path_of(entry)
        if not path.is_file():
            return WeightStatus(entry.id, path, "missing", entry.sha256, None)
        actual = sha256_file(path)
        if entry.sha256 is None:
            state: WeightState = "unverified"
        else:
            state = "ok" if actual == entry.sha256 else "sha256_mismatch"
        return WeightStatus(entry.id, path, state, entry.sha256, actual)


# --- parsing the TOML -----------------------------------------------------------------------


def _parse(data: dict[str, Any], directory: Path) -> Registry:
    unknown = set(data) - _TOP_LEVEL_KEYS
    if unknown:
        raise ConfigError(f"unknown top-level keys {sorted(unknown)}")
    specs = {
        name: _parse_spec(name, table)
        for name, table in _table(data, "preprocessing", "top level").items()
    }
    models = {
        model_id: _parse_model(model_id, table, specs)
        for model_id, table in _table(data, "models", "top level").items()
    }
    ensembles = {}
    presets = {}
    for name, table in _table(data, "ensembles", "top level").items():
        where = f"[ensembles.{name}]"
        if not isinstance(table, dict) or "models" not in table or set(table) - _ENSEMBLE_KEYS:
            raise ConfigError(f"{where} holds 'models' and optionally 'presets' with 'default_preset'")
        ensembles[name] = tuple(_str_list(table["models"], f"{where} models"))
        if ("presets" in table) != ("default_preset" in table):
            raise ConfigError(f"{where}: 'presets' and 'default_preset' come together")
        if "presets" in table:
            presets[name] = _parse_presets(table["presets"], table["default_preset"], where)
    default = data.get("default_ensemble")
    if not isinstance(default, str):
        raise ConfigError("top-level 'default_ensemble' (a string) is required")
    return Registry(directory, specs, models, ensembles, default, presets)


def _parse_presets(table: object, default: object, where: str) -> ThresholdPresets:
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{where} presets must hold at least one [presets.NAME] table")
    points = {}
    for name, point in table.items():
        if not isinstance(point, dict) or set(point) != _PRESET_KEYS:
            raise ConfigError(f"{where} presets.{name} needs exactly the keys {sorted(_PRESET_KEYS)}")
        try:
            points[name] = ThresholdPreset(name=name, **{k: _number(v, f"{where} presets.{name}.{k}")
                                                         for k, v in point.items()})
        except ValidationError as exc:
            raise ConfigError(f"{where} presets.{name}: {exc.errors()[0]['msg']}") from None
    try:
        return ThresholdPresets(points, _typed(default, str, f"{where} default_preset"))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _parse_spec(name: str, table: object) -> CropSpec:
    where = f"[preprocessing.{name}]"
    if not isinstance(table, dict) or set(table) - set(FACE_SETTINGS_KEYS) != set(_SPEC_KEYS):
        keys = sorted(table) if isinstance(table, dict) else table
        raise ConfigError(f"{where} needs exactly the keys {list(_SPEC_KEYS)}, optionally "
                          f"{list(FACE_SETTINGS_KEYS)}, got {keys}")
    return CropSpec(
        name=name,
        size=_typed(table["size"], int, f"{where} size"),
        margin=_number(table["margin"], f"{where} margin"),
        square=_typed(table["square"], bool, f"{where} square"),
        color_order=_typed(table["color_order"], str, f"{where} color_order"),
        scale=_number(table["scale"], f"{where} scale"),
        mean=_triple(table["mean"], f"{where} mean"),
        std=_triple(table["std"], f"{where} std"),
        detector=FaceSettings.from_table(table, where),
    )


def _parse_model(model_id: str, table: object, specs: Mapping[str, CropSpec]) -> ModelEntry:
    where = f"[models.{model_id}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    missing = _REQUIRED_MODEL_KEYS - set(table)
    unknown = set(table) - _REQUIRED_MODEL_KEYS - _OPTIONAL_MODEL_KEYS
    if missing or unknown:
        raise ConfigError(
            f"{where}: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}"
        )
    architecture = _typed(table["architecture"], str, f"{where} architecture")
    if architecture not in ARCHITECTURES:
        raise ConfigError(
            f"{where}: unknown architecture '{architecture}'; known: {sorted(ARCHITECTURES)}"
        )
    spec_name = _typed(table["preprocessing"], str, f"{where} preprocessing")
    if spec_name not in specs:
        raise ConfigError(f"{where}: unknown preprocessing '{spec_name}'; known: {sorted(specs)}")
    fmt = _typed(table["format"], str, f"{where} format")
    if fmt not in FORMATS:
        raise ConfigError(f"{where}: format '{fmt}' is not one of {list(FORMATS)}")
    file = _typed(table["file"], str, f"{where} file")
    if not file or PurePosixPath(file).is_absolute() or ".." in PurePosixPath(file).parts:
        raise ConfigError(f"{where}: file '{file}' must be a path inside the registry's directory")
    sha = table.get("sha256")
    if sha is not None and not (isinstance(sha, str) and SHA256_PATTERN.fullmatch(sha)):
        raise ConfigError(f"{where}: sha256 must be 64 lowercase hex digits, got {sha!r}")
    size = table.get("size_bytes")
    if size is not None and (_typed(size, int, f"{where} size_bytes") <= 0):
        raise ConfigError(f"{where}: size_bytes must be positive")
    params = table.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: params must be a table")
    temperature = _number(table.get("temperature", 1.0), f"{where} temperature")
    if not temperature > 0:
        raise ConfigError(f"{where}: temperature must be > 0, got {temperature}")
    return ModelEntry(
        id=model_id,
        architecture=architecture,
        params=params,
        preprocessing=specs[spec_name],
        file=file,
        format=fmt,
        sha256=sha,
        size_bytes=size,
        sources=tuple(_str_list(table.get("sources", []), f"{where} sources")),
        license=_optional_str(table.get("license"), f"{where} license"),
        training_data=_optional_str(table.get("training_data"), f"{where} training_data"),
        description=_typed(table.get("description", ""), str, f"{where} description"),
        temperature=temperature,
    )


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: '{key}' must be a table")
    return table


def _typed(value: object, kind: type, where: str) -> Any:
    # bool is an int subclass: never accept one for the other.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where} must be {kind.__name__}, got {value!r}")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _triple(value: object, where: str) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise ConfigError(f"{where} must be a list of 3 numbers, got {value!r}")
    a, b, c = (_number(v, where) for v in value)
    return (a, b, c)


def _str_list(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    return value


def _optional_str(value: object, where: str) -> str | None:
    return None if value is None else _typed(value, str, where)


# --- writing the TOML -----------------------------------------------------------------------


def _entry_fields(entry: ModelEntry) -> dict[str, object]:
    fields: dict[str, object] = {
        "architecture": entry.architecture,
        "params": dict(entry.params),
        "preprocessing": entry.preprocessing.name,
        "file": entry.file,
        "format": entry.format,
        "sha256": entry.sha256,
        "size_bytes": entry.size_bytes,
        "sources": list(entry.sources),
        "license": entry.license,
        "training_data": entry.training_data,
        "description": entry.description,
        "temperature": entry.temperature,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _toml_key(key: str) -> str:
    return key if BARE_KEY_PATTERN.fullmatch(key) else toml_value(key)


def toml_value(value: object) -> str:
    """TOML for the plain values a registry holds: str, bool, int, float, list, table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"TOML cannot hold the non-finite number {value}")
        return repr(value)
    if isinstance(value, str):
        # JSON escapes are valid TOML basic-string escapes; TOML also forbids a raw DEL.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = ", ".join(f"{_toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) to TOML")
