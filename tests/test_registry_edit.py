"""Editing the hand-written registry: load, edit through `register`/`adopt`, load again gives the
same registry plus the edit, and every comment and untouched line of the file is kept."""

from __future__ import annotations

import dataclasses
import difflib
import shutil
from pathlib import Path

import pytest

from models.registry import Registry, ThresholdPresets
from models.schema import ThresholdPreset
from models.training.adopt import adopt, register_adoption
from models.training.register import (
    update_ensemble_models,
    update_ensemble_presets,
    update_model_entry,
)
from tests.test_adopt import CANDIDATES, _clips
from tests.tiny_models import write_test_registry

PROJECT_REGISTRY = Path(__file__).resolve().parent.parent / "weights" / "registry.toml"
NEW_PRESETS = [
    ThresholdPreset(name="careful", threshold=0.9, real_flagged=0.02, fakes_caught=0.2),
    ThresholdPreset(name="eager", threshold=0.4, real_flagged=0.3, fakes_caught=0.7, default=True),
]


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """Lines (not blank) taken out of `before`, and lines put into `after`."""
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return ([line[2:] for line in diff if line.startswith("- ") and line[2:].strip()],
            [line[2:] for line in diff if line.startswith("+ ")])


def table_lines(text: str, header: str) -> list[str]:
    """The lines of the tables whose headers start with `header`, headers included."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("["):
            inside = line.startswith(header)
        if inside and line.strip() and not line.startswith("#"):
            lines.append(line)
    return lines


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    path = tmp_path / "registry.toml"
    shutil.copy(PROJECT_REGISTRY, path)
    return path


def test_project_registry_edits_change_only_what_they_set(project_copy: Path) -> None:
    text, before = project_copy.read_text(), Registry.load(project_copy)
    update_model_entry(project_copy, "coccomini-cross-efficient-vit",
                       {"temperature": 2.5, "sha256": "cd" * 32, "params": {"depth": 2}})
    update_model_entry(project_copy, "mesonet-meso4-df", {"temperature": 30.0})
    update_ensemble_models(project_copy, "dfdc-winner", ["selim-b7-111-36", "selim-b7-555-19"])
    update_ensemble_presets(project_copy, "coccomini", NEW_PRESETS, "mean")
    update_ensemble_presets(project_copy, "default", NEW_PRESETS, "max-identity")
    edited, after = project_copy.read_text(), Registry.load(project_copy)

    models = dict(before.models)
    models["coccomini-cross-efficient-vit"] = dataclasses.replace(
        models["coccomini-cross-efficient-vit"], temperature=2.5, sha256="cd" * 32, params={"depth": 2})
    models["mesonet-meso4-df"] = dataclasses.replace(models["mesonet-meso4-df"], temperature=30.0)
    assert after.models == models
    assert [dict(e.params) for e in after.models.values()] == [dict(e.params) for e in models.values()]
    assert after.ensembles == {**before.ensembles, "dfdc-winner": ("selim-b7-111-36", "selim-b7-555-19")}
    points = {p.name: p.model_copy(update={"default": False}) for p in NEW_PRESETS}
    assert after.presets == {**before.presets, "coccomini": ThresholdPresets(points, "eager", "mean"),
                             "default": ThresholdPresets(points, "eager", "max-identity")}
    assert after.preprocessing == before.preprocessing
    assert after.default_ensemble == before.default_ensemble

    assert comments(edited) == comments(text)
    removed, added = changed_lines(text, edited)
    edited_tables = [line for header in ("[models.coccomini-cross-efficient-vit]",
                                         "[models.mesonet-meso4-df]", "[ensembles.default",
                                         "[ensembles.dfdc-winner]", "[ensembles.coccomini]")
                     for line in table_lines(text, header)]
    assert removed and set(removed) <= set(edited_tables), set(removed) - set(edited_tables)
    assert added and not [line for line in added if line.startswith("#")]
    # a key new to a table goes after its keys, before the comments that open the next section
    assert ('description = "Cross Efficient ViT: two B0 token branches with cross-attention; '
            'reported DFDC test AUC 0.951."\ntemperature = 2.5\nsha256 = "' + "cd" * 32 + '"\n\n'
            "# ------") in edited
    # new preset tables take the old ones' place: the next ensemble's comment still opens it
    assert ("[ensembles.default.presets.eager]\nthreshold = 0.4\nreal_flagged = 0.3\n"
            "fakes_caught = 0.7\n\n# fakewatch's own SBI-trained pair") in edited
    assert edited.endswith('[ensembles.coccomini.presets.eager]\nthreshold = 0.4\nreal_flagged = 0.3\n'
                           'fakes_caught = 0.7\n')


def test_editing_twice_with_the_same_edit_changes_nothing(project_copy: Path) -> None:
    update_ensemble_presets(project_copy, "coccomini", NEW_PRESETS, "mean")
    update_model_entry(project_copy, "coccomini-efficient-vit", {"temperature": 2.5})
    once = project_copy.read_text()
    update_ensemble_presets(project_copy, "coccomini", NEW_PRESETS, "mean")
    update_model_entry(project_copy, "coccomini-efficient-vit", {"temperature": 2.5})
    assert project_copy.read_text() == once


def test_an_adoption_round_trip_keeps_the_files_comments(tmp_path: Path) -> None:
    path = write_test_registry(tmp_path, members=("tiny-meso", "tiny-hybrid"))
    commented = path.read_text()
    for header in ("[models.tiny-meso]", "[ensembles.default]"):
        commented = commented.replace(header, f"# what {header} is\n{header}\n# inside {header}")
    path.write_text("# a hand-written registry\n" + commented + "# the end\n")
    text, before = path.read_text(), Registry.load(path)
    adoption = adopt(_clips(), CANDIDATES)

    register_adoption(path, "default", adoption)
    edited, after = path.read_text(), Registry.load(path)

    meso = dataclasses.replace(before.models["tiny-meso"],
                               temperature=round(adoption.temperatures["tiny-meso"], 6))
    assert after.models == {**before.models, "tiny-meso": meso}
    assert after.ensembles == {"default": ("tiny-meso",)}
    assert after.presets == {"default": adoption.presets}
    assert after.preprocessing == before.preprocessing
    assert comments(edited) == comments(text)
    assert edited.startswith("# a hand-written registry\n") and edited.endswith("# the end\n")
