"""The weight registry: which checkpoints exist, and how to build and feed them.

`weights/registry.toml` plays the role of timm's pretrained configs for deepfake checkpoints: each
model names its architecture and parameters, its crop convention (a `[preprocessing.*]` table),
its file and that file's exact public format, its sha256, licence and sources. What the file may
hold is `models.registry_schema`'s job, loading the weight files `models.checkpoints`'; editing the
hand-written file in place is `models.training.register`'s.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomlkit

import weights
from models.checkpoints import sha256_file
from models.config import DEFAULT_POLICY
from models.crops import CropSpec
from models.errors import ConfigError
from models.face_settings import FaceSettings
from models.registry_schema import (
    ModelTable,
    PreprocessingTable,
    RegistryDocument,
    VariantTable,
    WeightFormat,
    validate_document,
)
from models.schema import ThresholdPreset

WeightState = Literal["ok", "unverified", "missing", "sha256_mismatch"]

# The [preprocessing.*] keys that become the spec's face settings rather than CropSpec fields.
_DETECTOR_KEYS: frozenset[str] = frozenset({"detector_scale", "detector_thresholds"})


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
        variant_of: the model whose checkpoint this one runs on another crop (None: its own
            table holds the weights). A variant's weight fields equal its base's.
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
    variant_of: str | None = None


# What a variant takes from its base: everything about the checkpoint, not the crop or calibration.
# (Its description is the base's unless the variant's table gives one.)
INHERITED_FIELDS: tuple[str, ...] = ("architecture", "params", "file", "format", "sha256",
                                     "size_bytes", "sources", "license", "training_data")


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
    """An ensemble's named operating points; `default` is used when a request names none.
    `policy` is the aggregation their rates were measured under (None: DEFAULT_POLICY)."""

    points: Mapping[str, ThresholdPreset]
    default: str
    policy: str | None = None

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

    @property
    def measured_policy(self) -> str:
        """The aggregation policy the rates hold under; under another one they do not."""
        return self.policy or DEFAULT_POLICY


def registry_file(path: Path | None) -> Path:
    """The registry TOML to read: `path`, or the project's `weights/registry.toml`."""
    return Path(path) if path is not None else weights.DEFAULT_REGISTRY


def registry_sha256(path: Path | None) -> str:
    """sha256 of the registry file's bytes: with each weight file's own sha256 in it, it names
    the exact weights, thresholds and presets a result was scored with."""
    return hashlib.sha256(registry_file(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Registry:
    """Models, crop conventions and ensembles, with weight files under `directory`.

    Built in code or read from a file, it must be what a registry file may say (the schema checks
    it), so that every registry can be written and read back.
    """

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
            if entry.variant_of is not None:
                self._check_variant(entry)
        unknown_presets = sorted(set(self.presets) - set(self.ensembles))
        if unknown_presets:
            raise ConfigError(f"threshold presets for unknown ensembles {unknown_presets}")
        validate_document(self.document(), f"registry in {self.directory}")

    def _check_variant(self, entry: ModelEntry) -> None:
        """A variant is written as a reference to its base, so what it shares must be equal."""
        base = self.models.get(entry.variant_of or "")
        if base is None or base.variant_of is not None:
            raise ConfigError(f"model '{entry.id}' is a variant of '{entry.variant_of}', "
                              "which is not a model of this registry with weights of its own")
        differing = [name for name in INHERITED_FIELDS if getattr(entry, name) != getattr(base, name)]
        if differing:
            raise ConfigError(f"model '{entry.id}' is a variant of '{base.id}' but differs in "
                              f"{differing}: a variant runs its base's checkpoint unchanged")

    @classmethod
    def load(cls, path: Path | None = None) -> Registry:
        """Parse a registry TOML (default: the project's `weights/registry.toml`).

        Raises:
            ConfigError: the file is missing, not TOML, or describes something inconsistent.
        """
        path = registry_file(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"model registry {path} does not exist") from None
        return cls.from_toml(text, path)

    @classmethod
    def from_toml(cls, text: str, path: Path) -> Registry:
        """The registry `text` would be if it were the file `path` (whose directory holds the
        weight files).

        Raises:
            ConfigError: not TOML, or not a valid registry.
        """
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"model registry {path} is not valid TOML: {exc}") from None
        return _from_document(validate_document(data, str(path)), Path(path).parent)

    def write(self, path: Path) -> None:
        """Write this registry as TOML; weight files resolve relative to `path`'s directory."""
        Path(path).write_text(self.to_toml(), encoding="utf-8")

    def to_toml(self) -> str:
        """The registry file's text, each model's params as an inline table (as written by hand)."""
        document = self.document()
        for table in document["models"].values():
            if "params" in table:
                params = tomlkit.inline_table()
                params.update(table["params"])
                table["params"] = params
        return tomlkit.dumps(document)

    def document(self) -> dict[str, Any]:
        """The registry as the plain tables and values of its TOML file."""
        ensembles: dict[str, dict[str, Any]] = {}
        for name, members in self.ensembles.items():
            ensembles[name] = {"models": list(members)}
            if name in self.presets:
                ensembles[name]["default_preset"] = self.presets[name].default
                if self.presets[name].policy is not None:
                    ensembles[name]["policy"] = self.presets[name].policy
                ensembles[name]["presets"] = {
                    p.name: p.model_dump(exclude={"name", "default"})
                    for p in self.presets[name].points.values()
                }
        return {
            "default_ensemble": self.default_ensemble,
            "preprocessing": {name: _spec_table(spec) for name, spec in self.preprocessing.items()},
            "models": {model_id: _model_table(entry, self.models)
                       for model_id, entry in self.models.items()},
            "ensembles": ensembles,
        }

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

# --- the file's tables and the dataclasses -------------------------------------------------


def _from_document(document: RegistryDocument, directory: Path) -> Registry:
    specs = {name: _crop_spec(name, table) for name, table in document.preprocessing.items()}
    bases = {
        model_id: ModelEntry(
            id=model_id,
            preprocessing=specs[table.preprocessing],
            sources=tuple(table.sources),
            **table.model_dump(exclude={"preprocessing", "sources"}),
        )
        for model_id, table in document.models.items()
        if isinstance(table, ModelTable)
    }
    models = {
        model_id: bases[model_id] if isinstance(table, ModelTable)
        else _variant_entry(model_id, table, bases[table.variant_of], specs[table.preprocessing])
        for model_id, table in document.models.items()
    }
    presets = {
        name: ThresholdPresets(
            {p: ThresholdPreset(name=p, **point.model_dump()) for p, point in table.presets.items()},
            table.default_preset,
            table.policy,
        )
        for name, table in document.ensembles.items()
        if table.presets is not None and table.default_preset is not None
    }
    ensembles = {name: tuple(table.models) for name, table in document.ensembles.items()}
    return Registry(directory, specs, models, ensembles, document.default_ensemble, presets)


def _variant_entry(model_id: str, table: VariantTable, base: ModelEntry, spec: CropSpec) -> ModelEntry:
    """The base's checkpoint on the variant's crop, at the temperature fitted on that crop."""
    description = base.description if table.description is None else table.description
    return dataclasses.replace(base, id=model_id, preprocessing=spec, temperature=table.temperature,
                               description=description, variant_of=base.id)


def _crop_spec(name: str, table: PreprocessingTable) -> CropSpec:
    detector = FaceSettings.from_table(table.model_dump(include=_DETECTOR_KEYS, exclude_none=True),
                                       f"[preprocessing.{name}]")
    return CropSpec(name=name, detector=detector, **table.model_dump(exclude=_DETECTOR_KEYS))


def _spec_table(spec: CropSpec) -> dict[str, Any]:
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)
              if f.name not in ("name", "detector")}
    return {key: _plain(value) for key, value in fields.items() if value is not None} | spec.detector.table()


def _model_table(entry: ModelEntry, models: Mapping[str, ModelEntry]) -> dict[str, Any]:
    """`[models.ID]`: every field, or for a variant its base's id and what is its own."""
    if entry.variant_of is not None:
        table: dict[str, Any] = {"variant_of": entry.variant_of,
                                 "preprocessing": entry.preprocessing.name,
                                 "temperature": entry.temperature}
        if entry.description != models[entry.variant_of].description:
            table["description"] = entry.description
        return table
    fields = {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)
              if f.name not in ("id", "variant_of")}
    fields["preprocessing"] = entry.preprocessing.name
    return {key: _plain(value) for key, value in fields.items() if value is not None}


def _plain(value: object) -> object:
    """TOML's values: tuples as lists, mappings as dicts, all the way down."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
