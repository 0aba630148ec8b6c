"""A registry with the default ensemble's architectures and seeded random weights, for timing only.

Inference time depends on architecture, input size and batch, not on weight values, so the
benchmark can time the default ensemble before its trained weights exist. The registry is written
to a temporary directory the benchmark owns; it is never written under `weights/`, and every entry
says "TIMING ONLY" so a result made from it cannot be mistaken for a real score.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from models.registry import Registry, save_safetensors
from models.zoo import build_classifier

REGISTRY_NAME = "timing-registry.toml"
LABEL = "TIMING ONLY: random weights"
SEED = 0


def weights_present(registry: Registry) -> bool:
    """True when every default-ensemble member's weight file is on disk."""
    return all(registry.path_of(entry).is_file() for entry in registry.resolve(None))


def write_timing_registry(source: Registry, directory: Path) -> Path:
    """Copy `source`'s default ensemble into `directory` with random weights; return the TOML path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    entries = {}
    for entry in source.resolve(None):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            model = build_classifier(entry.architecture, **entry.params).eval()
        file = f"timing-only-{entry.id}.safetensors"
        metadata = {"architecture": entry.architecture, "params": json.dumps(dict(entry.params))}
        sha = save_safetensors(model, directory / file, metadata)
        entries[entry.id] = dataclasses.replace(
            entry,
            file=file,
            format="safetensors",
            sha256=sha,
            size_bytes=(directory / file).stat().st_size,
            sources=(),
            license=LABEL,
            training_data=LABEL,
            description=f"{LABEL} ({entry.architecture})",
        )
    specs = {e.preprocessing.name: e.preprocessing for e in entries.values()}
    ensemble = source.default_ensemble
    registry = Registry(directory, specs, entries, {ensemble: tuple(entries)}, ensemble)
    path = directory / REGISTRY_NAME
    registry.write(path)
    return path
