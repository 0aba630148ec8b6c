"""Record trained or adopted weights in `registry.toml` by editing only their own tables:
`[models.<id>]` for each member, `models`, `default_preset` and `[ensembles.<name>.presets.*]` for
the ensemble.

The registry file is hand-written and commented, so it is edited with tomlkit, which keeps every
comment, blank line and key order it does not touch. An edit is written only when the edited text
loads as a valid registry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import tomlkit
from tomlkit.items import Comment, Item, Table, Whitespace
from tomlkit.toml_document import TOMLDocument

from models.errors import ConfigError
from models.registry import Registry
from models.registry_schema import table_name
from models.schema import ThresholdPreset
from models.training.card import ModelCard

# The keys a training run owns in its members' tables.
UPDATABLE_KEYS = frozenset(
    {"sha256", "size_bytes", "temperature", "params", "training_data", "description"}
)


def update_model_entry(registry_path: Path, model_id: str, fields: Mapping[str, object]) -> None:
    """Set `fields` in `[models.<model_id>]`, keeping every other line of the file as it was.

    Raises:
        ConfigError: a key outside `UPDATABLE_KEYS`, no such table, or a result that does not load.
    """
    unknown = set(fields) - UPDATABLE_KEYS
    if unknown:
        raise ConfigError(f"training may not set {sorted(unknown)} in the registry")

    def change(document: TOMLDocument) -> None:
        table = _table(document, "models", model_id)
        for key, value in fields.items():
            _set(table, key, _inline(value))

    _edit(registry_path, change)


def update_ensemble_models(registry_path: Path, ensemble: str, models: Sequence[str]) -> None:
    """Set the ensemble's `models` list, keeping the rest of its table (presets are replaced
    separately, by `update_ensemble_presets`).

    Raises:
        ConfigError: no such ensemble table, or a result that does not load.
    """
    _edit(registry_path,
          lambda document: _set(_table(document, "ensembles", ensemble), "models", list(models)))


def update_ensemble_presets(registry_path: Path, ensemble: str,
                            presets: Sequence[ThresholdPreset], policy: str) -> None:
    """Replace the ensemble's presets (and its `default_preset`) with `presets`, measured under
    the aggregation `policy` (which the detector then scores that ensemble with by default).

    The same preset names change their values in place; other names replace the old tables.

    Raises:
        ConfigError: no such ensemble table, or a result that does not load.
    """
    default = next(p.name for p in presets if p.default)
    values = {p.name: p.model_dump(exclude={"name", "default"}) for p in presets}

    def change(document: TOMLDocument) -> None:
        table = _table(document, "ensembles", ensemble)
        _set(table, "default_preset", default)
        _set(table, "policy", policy)
        old = table.get("presets")
        if old is not None and list(old) == list(values):
            for name, point in values.items():
                for key, value in point.items():
                    old[name][key] = value
            return
        if old is not None and not isinstance(old, Table):  # written as an inline table
            table["presets"] = _inline(values)
            return
        new = tomlkit.table(is_super_table=True)
        for name, point in values.items():
            new[name] = tomlkit.table()
            new[name].update(point)
        if old is None:
            _add(table, "presets", new)
            return
        # The new tables take the old ones' place, with the blank lines and comments around them.
        body = table.value.body
        index = next(i for i, (key, _) in enumerate(body) if key is not None and key.key == "presets")
        _headers(new)[0].trivia.indent = _headers(old)[0].trivia.indent
        for item in _closing_trivia(_headers(old)[-1]):
            _headers(new)[-1].add(item)
        del table["presets"]
        _insert(table, index, "presets", new)

    _edit(registry_path, change)


def _edit(registry_path: Path, change: Callable[[TOMLDocument], None]) -> None:
    """Apply `change` to the parsed file; write the result (atomically) only if it is a valid
    registry, so a failed edit leaves the file as it was."""
    original = registry_path.read_text(encoding="utf-8")
    Registry.from_toml(original, registry_path)  # edits start from a valid registry
    document = tomlkit.parse(original)
    change(document)
    text = tomlkit.dumps(document)
    Registry.from_toml(text, registry_path)
    temporary = registry_path.with_name(f".{registry_path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(registry_path)


def _table(document: TOMLDocument, *keys: str) -> Table:
    node: object = document
    for key in keys:
        node = node.get(key) if isinstance(node, Table | TOMLDocument) else None
    if not isinstance(node, Table):
        raise ConfigError(f"the registry has no {table_name(*keys)} table")
    return node


def _inline(value: object) -> object:
    """A mapping value (a model's params) as an inline table, as the hand-written file has it."""
    if not isinstance(value, Mapping):
        return value
    table = tomlkit.inline_table()
    table.update({key: _inline(item) for key, item in value.items()})
    return table


def _set(table: Table, key: str, value: object) -> None:
    """Replace `key` where it stands, or add it."""
    if key in table:
        table[key] = value
    else:
        _add(table, key, value)


def _add(table: Table, key: str, value: object) -> None:
    """Add `key` after the table's last key and before the comments and blank lines that close
    it: in a hand-written file those introduce the next table."""
    body = table.value.body
    end = len(body) - len(_closing_trivia(table))
    item = tomlkit.item(value)
    if isinstance(item, Table):
        _headers(item)[0].trivia.indent = "\n"  # a blank line between the keys and a new header
    _insert(table, end, key, item)


def _insert(table: Table, index: int, key: str, item: Item) -> None:
    """Put `key` at `index` of the table's body; only headers that render say where lines go."""
    if index == len(table.value.body):
        table.add(key, item)
    else:
        table.value._insert_at(index, key, item)  # tomlkit has no public insert-at-position
    if isinstance(item, Table) and item.is_super_table():
        item.trivia.indent = ""  # appending gives a header-less table a blank line of its own


def _headers(table: Table) -> list[Table]:
    """The tables whose headers `table` renders: itself, or a super table's children."""
    if not table.is_super_table():
        return [table]
    return [header for child in table.values() if isinstance(child, Table)
            for header in _headers(child)]


def _closing_trivia(table: Table) -> list[Item]:
    """The comments and blank lines at the end of `table`'s body."""
    body = table.value.body
    start = len(body)
    while start and body[start - 1][0] is None and isinstance(body[start - 1][1], Comment | Whitespace):
        start -= 1
    return [item for _, item in body[start:]]


def register_card(registry_path: Path, ensemble: str, card: ModelCard, training_data: str) -> None:
    """Record a trained run: each member's file, calibration, params and description in its
    table (with `training_data`), and the card's presets in the ensemble's."""
    for member in card.members:
        update_model_entry(registry_path, member.model_id, {
            "sha256": member.sha256, "size_bytes": member.size_bytes,
            "temperature": round(member.temperature, 6), "params": member.params,
            "description": member.description, "training_data": training_data,
        })
    update_ensemble_presets(registry_path, ensemble, card.presets, card.policy)
