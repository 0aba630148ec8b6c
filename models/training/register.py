"""Record trained weights in `registry.toml` by editing only their own tables: `[models.<id>]` for
each member, `default_preset` and `[ensembles.<name>.presets.*]` for the ensemble's presets.

The registry file is hand-written and commented, so it is edited line by line rather than
re-serialised; the result is parsed with `Registry.load` and the original restored if it fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from models.errors import ConfigError
from models.registry import Registry, toml_value
from models.schema import ThresholdPreset

# The keys a training run owns in its members' tables.
UPDATABLE_KEYS = frozenset(
    {"sha256", "size_bytes", "temperature", "params", "training_data", "description"}
)
_TABLE_HEADER = re.compile(r"^\s*\[")


def _dotted(*keys: str) -> str:
    """Regex of dotted TOML keys `a.b.c`, each bare or quoted."""
    return r"\s*\.\s*".join(rf'(?:"{re.escape(key)}"|{re.escape(key)})' for key in keys)


def _header(*keys: str) -> re.Pattern[str]:
    """A table header `[a.b.c]`."""
    return re.compile(r"^\s*\[\s*" + _dotted(*keys) + r"\s*\]\s*$")


def _table_span(lines: list[str], *keys: str) -> tuple[int, int]:
    """[start, end) line indices of the table `[keys...]`, header included."""
    header = _header(*keys)
    starts = [i for i, line in enumerate(lines) if header.match(line)]
    if len(starts) != 1:
        raise ConfigError(f"registry has {len(starts)} [{'.'.join(keys)}] tables, expected one")
    end = next(
        (i for i in range(starts[0] + 1, len(lines)) if _TABLE_HEADER.match(lines[i])), len(lines)
    )
    while end > starts[0] + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1  # leave blank lines and the next table's comments where they are
    return starts[0], end


def update_model_entry(registry_path: Path, model_id: str, fields: Mapping[str, object]) -> None:
    """Set `fields` in `[models.<model_id>]`, keeping every other line of the file as it was.

    Raises:
        ConfigError: a key outside `UPDATABLE_KEYS`, no such table, or a result that does not load.
    """
    unknown = set(fields) - UPDATABLE_KEYS
    if unknown:
        raise ConfigError(f"training may not set {sorted(unknown)} in the registry")
    original = registry_path.read_text(encoding="utf-8")
    lines = original.splitlines()
    start, end = _table_span(lines, "models", model_id)
    remaining = dict(fields)
    for i in range(start + 1, end):
        key = lines[i].split("=", 1)[0].strip()
        if "=" in lines[i] and key in remaining:
            lines[i] = f"{key} = {toml_value(remaining.pop(key))}"
    lines[end:end] = [f"{key} = {toml_value(value)}" for key, value in remaining.items()]
    _write_checked(registry_path, original, lines)


def update_ensemble_presets(registry_path: Path, ensemble: str, presets: Sequence[ThresholdPreset]) -> None:
    """Replace the ensemble's presets (and its `default_preset`) with `presets`.

    Raises:
        ConfigError: no such ensemble table, or a result that does not load.
    """
    original = registry_path.read_text(encoding="utf-8")
    lines = original.splitlines()
    preset_header = re.compile(
        r"^\s*\[\s*" + _dotted("ensembles", ensemble, "presets") + r'\s*\.\s*"?([^"\]]+)"?\s*\]\s*$'
    )
    while old := next((m for line in lines if (m := preset_header.match(line))), None):
        start, end = _table_span(lines, "ensembles", ensemble, "presets", old.group(1))
        while start > 0 and not lines[start - 1].strip():
            start -= 1  # the blank line that separated it goes with it
        del lines[start:end]
    start, end = _table_span(lines, "ensembles", ensemble)
    kept = [line for line in lines[start:end] if line.split("=", 1)[0].strip() != "default_preset"]
    default = next(p.name for p in presets if p.default)
    block = [*kept, f"default_preset = {toml_value(default)}"]
    for preset in presets:
        block += ["", f"[ensembles.{ensemble}.presets.{preset.name}]"]
        block += [f"{key} = {toml_value(value)}"
                  for key, value in preset.model_dump(exclude={"name", "default"}).items()]
    lines[start:end] = block
    _write_checked(registry_path, original, lines)


def _write_checked(registry_path: Path, original: str, lines: list[str]) -> None:
    """Write `lines`; restore `original` if the result is not a valid registry."""
    registry_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        Registry.load(registry_path)
    except ConfigError:
        registry_path.write_text(original, encoding="utf-8")
        raise


def update_ensemble_models(registry_path: Path, ensemble: str, models: Sequence[str]) -> None:
    """Set the ensemble's `models` list, keeping the rest of its table (presets are replaced
    separately, by `update_ensemble_presets`).

    Raises:
        ConfigError: no such ensemble table, or a result that does not load.
    """
    original = registry_path.read_text(encoding="utf-8")
    lines = original.splitlines()
    start, end = _table_span(lines, "ensembles", ensemble)
    first = next((i for i in range(start + 1, end) if lines[i].split("=", 1)[0].strip() == "models"),
                 None)
    if first is None:
        raise ConfigError(f"[ensembles.{ensemble}] has no models list to replace")
    last = first
    while "]" not in lines[last].split("#", 1)[0]:  # a list written over several lines
        last += 1
    lines[first:last + 1] = [f"models = {toml_value(list(models))}"]
    _write_checked(registry_path, original, lines)
