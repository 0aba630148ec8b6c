"""A registry for timing an ensemble whose public checkpoints are not on this machine.

The DFDC winner's seven B7 checkpoints (0.26 GB each) cannot be downloaded here, yet the issue
asks for their speed. Inference time does not depend on weight values, so a missing file is
replaced by a randomly initialised checkpoint of the same architecture: the timing is real, the
scores are meaningless, and the results say which members were stand-ins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from models.checkpoints import save_safetensors
from models.registry import Registry
from models.zoo import build_classifier

ENSEMBLE = "bench"


def stand_in_registry(
    registry: Registry, names: Sequence[str] | None, directory: Path
) -> tuple[Path, list[str]]:
    """Write a registry under `directory` whose default ensemble is `names`' models.

    Present weight files are linked; missing ones are written as random-weight stand-ins.
    Returns the new registry's path and the ids of the stand-ins.
    """
    entries = registry.resolve(names)
    models, stand_ins = {}, []
    for entry in entries:
        source = registry.path_of(entry)
        if source.is_file():
            target = directory / Path(entry.file).name
            target.symlink_to(source.resolve())
            models[entry.id] = dataclasses.replace(entry, file=target.name)
            continue
        target = directory / f"{entry.id}.stand-in.safetensors"
        save_safetensors(build_classifier(entry.architecture, **entry.params), target)
        models[entry.id] = dataclasses.replace(
            entry, file=target.name, format="safetensors", sha256=None, size_bytes=None
        )
        stand_ins.append(entry.id)
    path = directory / "registry.toml"
    Registry(
        directory=directory,
        preprocessing=registry.preprocessing,
        models=models,
        ensembles={ENSEMBLE: tuple(models)},
        default_ensemble=ENSEMBLE,
    ).write(path)
    return path, stand_ins
