"""The registry file's schema: every table, key and type `weights/registry.toml` may hold, and the
references between its tables, checked by pydantic.

Whatever is wrong becomes one `ConfigError` whose lines name the file, the table and the key, so a
hand edit gone wrong says where to look. `models.registry` turns a validated document into its
dataclasses; this module knows only the file's shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from models.config import PolicyName
from models.crops import ColorOrder
from models.errors import ConfigError
from models.zoo import ARCHITECTURES

WeightFormat = Literal["selim", "coccomini", "safetensors", "mesonet"]
FORMATS: tuple[str, ...] = get_args(WeightFormat)

SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
BARE_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
ERRORS_SHOWN = 10  # a file broken everywhere lists its first problems, not hundreds
VALUE_SHOWN = 80  # characters of a wrong value quoted back

# Raised by a table's own validator: the location is the table, not one of its keys.
_TABLE_ERRORS = frozenset({"unknown_architecture", "presets", "references"})
# How pydantic's error types read after "[table] key"; anything else keeps pydantic's own words.
_TYPE_MESSAGES = {
    "int_type": "must be int",
    "bool_type": "must be bool",
    "string_type": "must be str",
    "float_type": "must be a finite number",
    "finite_number": "must be a finite number",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "list_type": "must be a list",
    "missing": "is missing",
    "literal_error": "must be one of {expected}",
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be greater than or equal to {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be less than or equal to {le}",
}


def _three(value: object) -> object:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise PydanticCustomError("triple", "must be a list of 3 numbers, got {value}",
                                  {"value": repr(value)})
    return value


def _sha256(value: str) -> str:
    if not SHA256_PATTERN.fullmatch(value):
        raise PydanticCustomError("sha256", "must be 64 lowercase hex digits, got {value}",
                                  {"value": repr(value)})
    return value


def _inside(file: str) -> str:
    path = PurePosixPath(file)
    if not file or path.is_absolute() or ".." in path.parts:
        raise PydanticCustomError("file_outside",
                                  "must be a path inside the registry's directory, got {value}",
                                  {"value": repr(file)})
    return file


def _format(name: str) -> str:
    if name not in FORMATS:
        raise PydanticCustomError("unknown_format", "{value} is not one of {known}",
                                  {"value": repr(name), "known": list(FORMATS)})
    return name


# bool is an int subclass in Python; Strict keeps `true` out of number fields.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Positive = Annotated[Number, Field(gt=0)]
Fraction = Annotated[Number, Field(ge=0, le=1)]
OpenFraction = Annotated[Number, Field(gt=0, lt=1)]
Triple = Annotated[tuple[Number, Number, Number], BeforeValidator(_three)]
PositiveTriple = Annotated[tuple[Positive, Positive, Positive], BeforeValidator(_three)]
Sha256 = Annotated[StrictStr, AfterValidator(_sha256)]
RelativeFile = Annotated[StrictStr, AfterValidator(_inside)]
FormatName = Annotated[StrictStr, AfterValidator(_format)]


class _Table(BaseModel):
    """A TOML table: exactly its declared keys, each of its declared type (no coercion)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PreprocessingTable(_Table):
    """`[preprocessing.NAME]`: how one model family's faces are cut and normalised (a `CropSpec`)."""

    size: StrictInt = Field(gt=0)
    margin: Annotated[Number, Field(ge=0)]
    square: StrictBool
    color_order: ColorOrder
    scale: Positive
    mean: Triple
    std: PositiveTriple
    # Face detection settings the family's crops were cut with (issue 11): the frame scale MTCNN
    # runs at, and its P-, R- and O-Net thresholds. Optional; CropSpec does not carry them yet.
    detector_scale: Annotated[Number, Field(gt=0, le=1)] | None = None
    detector_thresholds: (
        Annotated[tuple[OpenFraction, OpenFraction, OpenFraction], BeforeValidator(_three)] | None
    ) = None


class ModelTable(_Table):
    """`[models.ID]`: one checkpoint, how to build it, and where its file comes from."""

    architecture: StrictStr
    preprocessing: StrictStr
    file: RelativeFile
    format: FormatName
    params: dict[str, Any] = Field(default_factory=dict)
    sha256: Sha256 | None = None
    size_bytes: Annotated[StrictInt, Field(gt=0)] | None = None
    sources: list[StrictStr] = Field(default_factory=list)
    license: StrictStr | None = None
    training_data: StrictStr | None = None
    description: StrictStr = ""
    temperature: Positive = 1.0

    @model_validator(mode="after")
    def _known_architecture(self) -> ModelTable:
        # Taken from the zoo at validation time: a new architecture needs no schema change.
        if self.architecture not in ARCHITECTURES:
            raise PydanticCustomError(
                "unknown_architecture", "unknown architecture {value}; known: {known}",
                {"value": repr(self.architecture), "known": sorted(ARCHITECTURES)},
            )
        return self


class VariantTable(_Table):
    """`[models.ID]` with `variant_of`: another model's checkpoint on another crop.

    The weights (architecture, params, file, format, sha256, size, sources, licence, training data)
    are the base's and are not repeated; the crop and the calibration fitted on it are the
    variant's own, so its temperature is not inherited. The description is the base's unless
    given."""

    variant_of: StrictStr
    preprocessing: StrictStr
    temperature: Positive = 1.0
    description: StrictStr | None = None


def _model_kind(table: object) -> str:
    """Which schema a `[models.ID]` table follows: a variant names its base model."""
    return "variant" if isinstance(table, Mapping) and "variant_of" in table else "model"


# pydantic puts the chosen tag in an error's location, after the model id; messages drop it.
_MODEL_TAGS: dict[str, type[_Table]] = {"model": ModelTable, "variant": VariantTable}
AnyModelTable = Annotated[
    Annotated[ModelTable, Tag("model")] | Annotated[VariantTable, Tag("variant")],
    Discriminator(_model_kind),
]


class PresetTable(_Table):
    """`[ensembles.NAME.presets.PRESET]`: a threshold and what it did on videos not fitted on."""

    threshold: Fraction
    real_flagged: Fraction
    fakes_caught: Fraction


class EnsembleTable(_Table):
    """`[ensembles.NAME]`: the models averaged, and optionally their measured presets."""

    models: list[StrictStr]
    default_preset: StrictStr | None = None
    presets: dict[str, PresetTable] | None = None
    policy: PolicyName | None = None  # the aggregation the presets' rates were measured under

    @model_validator(mode="after")
    def _presets_consistent(self) -> EnsembleTable:
        if (self.presets is None) != (self.default_preset is None):
            raise PydanticCustomError("presets", "'presets' and 'default_preset' come together")
        if self.policy is not None and self.presets is None:
            raise PydanticCustomError("presets", "'policy' names what presets were measured under")
        if self.presets is not None and not self.presets:
            raise PydanticCustomError("presets", "presets must hold at least one [presets.NAME] table")
        if self.presets is not None and self.default_preset not in self.presets:
            raise PydanticCustomError(
                "presets", "default_preset {value} is not one of its presets {known}",
                {"value": repr(self.default_preset), "known": list(self.presets)},
            )
        return self


class RegistryDocument(_Table):
    """The whole file. Cross references are checked once every table is valid on its own."""

    default_ensemble: StrictStr
    preprocessing: dict[str, PreprocessingTable] = Field(default_factory=dict)
    models: dict[str, AnyModelTable] = Field(default_factory=dict)
    ensembles: dict[str, EnsembleTable] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> RegistryDocument:
        problems = []
        for model_id, model in self.models.items():
            if model.preprocessing not in self.preprocessing:
                problems.append(f"{table_name('models', model_id)} unknown preprocessing "
                                f"{model.preprocessing!r}; known: {sorted(self.preprocessing)}")
            if isinstance(model, VariantTable):
                base = self.models.get(model.variant_of)
                if base is None:
                    problems.append(f"{table_name('models', model_id)} variant_of: unknown model "
                                    f"{model.variant_of!r}")
                elif isinstance(base, VariantTable):
                    problems.append(f"{table_name('models', model_id)} variant_of: "
                                    f"{model.variant_of!r} is itself a variant of "
                                    f"{base.variant_of!r}; name the model that holds the weights")
        for name, ensemble in self.ensembles.items():
            where = table_name("ensembles", name)
            unknown = [m for m in ensemble.models if m not in self.models]
            if name in self.models:
                problems.append(f"{where} {name!r} is both a model id and an ensemble name")
            if not ensemble.models:
                problems.append(f"{where} models: ensemble {name!r} has no models")
            elif unknown:
                problems.append(f"{where} models: ensemble {name!r} lists unknown model ids {unknown}")
            elif len(set(ensemble.models)) != len(ensemble.models):
                problems.append(f"{where} models: ensemble {name!r} lists a model twice: "
                                f"{ensemble.models}")
        if self.default_ensemble not in self.ensembles:
            problems.append(f"default_ensemble {self.default_ensemble!r} is not one of the "
                            f"ensembles {sorted(self.ensembles)}")
        if problems:
            raise PydanticCustomError("references", "{problems}", {"problems": "; ".join(problems)})
        return self


def validate_document(data: Mapping[str, Any], source: str) -> RegistryDocument:
    """`data` (a parsed registry TOML) as a `RegistryDocument`.

    Args:
        source: the file it came from, named first in every message.

    Raises:
        ConfigError: every problem (the first `ERRORS_SHOWN`), each naming table and key.
    """
    try:
        return RegistryDocument.model_validate(data)
    except ValidationError as exc:
        problems = _messages(exc.errors(include_url=False), data)
        shown = problems[:ERRORS_SHOWN]
        if len(problems) > len(shown):
            shown.append(f"and {len(problems) - len(shown)} more")
        raise ConfigError(f"{source}: " + "; ".join(shown)) from None


def table_name(*keys: str) -> str:
    """A TOML table header for dotted `keys`, quoting those that are not bare keys."""
    return "[" + ".".join(k if BARE_KEY_PATTERN.fullmatch(k) else f'"{k}"' for k in keys) + "]"


def _messages(errors: Sequence[ErrorDetails], data: Mapping[str, Any]) -> list[str]:
    """One line per error; unknown keys of one table are gathered into one line."""
    lines: list[str] = []
    extras: dict[tuple[str, ...], list[str]] = {}
    schemas: dict[tuple[str, ...], type[_Table]] = {}
    for tagged in errors:
        error, schema = _untagged(tagged)
        table, key = _split(error, data)
        if error["type"] == "extra_forbidden":
            extras.setdefault(table, []).append(key)
            schemas[table] = schema or _schema_of(table)
            continue
        if error["type"] in _TYPE_MESSAGES:
            message = _TYPE_MESSAGES[error["type"]].format(**error.get("ctx", {}))
            if error["type"] != "missing":
                message += f", got {_shown(error['input'])}"
        else:  # our own errors: already a sentence with the value in it
            message = error["msg"]
        lines.append(" ".join(part for part in (table_name(*table) if table else "", key, message)
                              if part))
    for table, keys in extras.items():
        lines.append(_unknown_keys(table, keys, schemas[table]))
    return lines


def _untagged(error: ErrorDetails) -> tuple[ErrorDetails, type[_Table] | None]:
    """`error` without the model-kind tag pydantic put in its location, and the schema the tag
    names (None for errors outside `[models.*]`)."""
    loc = error["loc"]
    if len(loc) > 2 and loc[0] == "models" and loc[2] in _MODEL_TAGS:
        return {**error, "loc": loc[:2] + loc[3:]}, _MODEL_TAGS[loc[2]]
    return error, None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= VALUE_SHOWN else text[:VALUE_SHOWN] + "..."


def _unknown_keys(table: tuple[str, ...], keys: list[str], schema: type[_Table]) -> str:
    required = [name for name, field in schema.model_fields.items() if field.is_required()]
    optional = [name for name in schema.model_fields if name not in required]
    allowed = f"needs exactly the keys {required}" + (f" and may hold {optional}" if optional else "")
    if not table:
        return f"unknown top-level keys {keys}; the file {allowed}"
    return f"{table_name(*table)} unknown keys {keys}; the table {allowed}"


def _schema_of(table: tuple[str, ...]) -> type[_Table]:
    """The model of a table that holds keys, outside `[models.*]` (whose errors name theirs):
    the file, or a table two or four keys deep."""
    if not table:
        return RegistryDocument
    if table[0] == "ensembles" and len(table) == 4:
        return PresetTable
    return {"preprocessing": PreprocessingTable, "ensembles": EnsembleTable}[table[0]]


def _split(error: ErrorDetails, data: Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
    """An error's location as (table, key). The table is the longest run of the location's keys
    that are tables in `data`; the last key is the one at fault unless a table's own validator
    (a cross-reference check) raised the error."""
    loc = error["loc"]
    last = len(loc) if error["type"] in _TABLE_ERRORS else len(loc) - 1
    table: list[str] = []
    node: object = data
    for part in loc[:last]:
        if not (isinstance(node, Mapping) and isinstance(part, str)
                and isinstance(node.get(part), Mapping)):
            break
        table.append(part)
        node = node[part]
    key = ""
    for part in loc[len(table):]:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return tuple(table), key
