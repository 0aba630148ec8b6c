"""Record trained weights in `registry.toml` by editing only their own `[models.<id>]` tables.

The registry file is hand-written and commented, so it is edited line by line rather than
re-serialised; the result is parsed with `Registry.load` and the original restored if it fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from models.errors import ConfigError
from models.registry import Registry, toml_value

# The keys a training run owns in its members' tables.
UPDATABLE_KEYS = frozenset(
    {"sha256", "size_bytes", "temperature", "params", "training_data", "description"}
)
_TABLE_HEADER = re.compile(r"^\s*\[")


def _table_span(lines: list[str], model_id: str) -> tuple[int, int]:
    """[start, end) line indices of `[models.<model_id>]`, header included."""
    header = re.compile(rf'^\s*\[\s*models\.(?:"{re.escape(model_id)}"|{re.escape(model_id)})\s*\]\s*$')
    starts = [i for i, line in enumerate(lines) if header.match(line)]
    if len(starts) != 1:
        raise ConfigError(f"registry has {len(starts)} [models.{model_id}] tables, expected one")
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
    start, end = _table_span(lines, model_id)
    remaining = dict(fields)
    for i in range(start + 1, end):
        key = lines[i].split("=", 1)[0].strip()
        if "=" in lines[i] and key in remaining:
            lines[i] = f"{key} = {toml_value(remaining.pop(key))}"
    lines[end:end] = [f"{key} = {toml_value(value)}" for key, value in remaining.items()]
    registry_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        Registry.load(registry_path)
    except ConfigError:
        registry_path.write_text(original, encoding="utf-8")
        raise
