"""Tiny random-weight classifiers in a throwaway registry, so tests run the real loader on CPU fast.

Test-only: nothing outside tests/ imports this, and the project's weights/registry.toml never
lists these models. Weights are seeded: repeated calls on one machine write identical files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.checkpoints import save_safetensors
from models.crops import CropSpec
from models.face_settings import FaceSettings
from models.registry import ModelEntry, Registry
from models.ssim_pairs import SSIM_SIZE
from models.zoo import build_classifier

REGISTRY_NAME = "registry.toml"
CALIBRATION_BATCH = 4
TINY_BACKBONE = "test_efficientnet"  # timm's ~0.36M-parameter EfficientNet made for unit tests

# Meso4 is trained on 0-1 RGB pixels without mean/std (Afchar et al.), here at half its 256 px.
TINY_MESO_SPEC = CropSpec(
    name="tiny-meso",
    size=128,
    margin=0.25,
    square=True,
    color_order="RGB",
    scale=255.0,
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
)
# timm EfficientNet conventions (mean/std 0.5) at 64 px: a 2x2 feature map.
TINY_64_SPEC = CropSpec(
    name="tiny-64",
    size=64,
    margin=0.25,
    square=True,
    color_order="RGB",
    scale=255.0,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
)

# The same at the DFDC winner's detector settings: every frame detected at half size.
TINY_64_HALF_SPEC = CropSpec(
    name="tiny-64-half",
    size=64,
    margin=0.25,
    square=True,
    color_order="RGB",
    scale=255.0,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    detector=FaceSettings(scale=0.5),
)


@dataclass(frozen=True)
class TinyMember:
    architecture: str
    params: Mapping[str, Any]
    spec: CropSpec
    seed: int


TINY_MEMBERS: dict[str, TinyMember] = {
    "tiny-meso": TinyMember("meso4", {"image_size": 128}, TINY_MESO_SPEC, seed=1),
    "tiny-hybrid": TinyMember(
        "hybrid_vit",
        {
            "backbone": TINY_BACKBONE,
            "image_size": 64,
            "dim": 32,
            "depth": 1,
            "heads": 2,
            "mlp_dim": 64,
            "dropout": 0.0,
        },
        TINY_64_SPEC,
        seed=2,
    ),
    "tiny-effnet": TinyMember("efficientnet", {"encoder": TINY_BACKBONE}, TINY_64_SPEC, seed=3),
    "tiny-effnet-half": TinyMember(
        "efficientnet", {"encoder": TINY_BACKBONE}, TINY_64_HALF_SPEC, seed=4
    ),
    "tiny-hybrid-distilled": TinyMember(
        "hybrid_vit_distilled",
        {
            "backbone": TINY_BACKBONE,
            "image_size": 64,
            "dim": 32,
            "depth": 1,
            "heads": 2,
            "mlp_dim": 64,
            "dropout": 0.0,
        },
        TINY_64_SPEC,
        seed=5,
    ),
    "tiny-meso-ssim": TinyMember("meso_inception4_ssim", {"image_size": 128}, TINY_MESO_SPEC, seed=6),
}


def calibrate_batchnorm_(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """Set every batch norm's running statistics from one batch, then switch to eval mode.

    Freshly initialised BN layers (mean 0, var 1) let activations of a deep random network fade
    to nothing, so its score would not depend on the image and a loader that dropped weights
    could go unnoticed. Calibrated, every tensor matters and different faces score differently.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(*model_inputs(model, images))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    return model.eval()


def model_inputs(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """`images`, and random SSIM inputs when the model also reads them."""
    if not getattr(model, "pair_inputs", False):
        return (images,)
    maps = torch.rand(len(images), 1, SSIM_SIZE, SSIM_SIZE) * 2 - 1
    return images, maps, torch.rand(len(images), 2)


def seeded_model(architecture: str, params: Mapping[str, Any], size: int, seed: int) -> nn.Module:
    """Random weights and calibrated batch norm, reproducible from `seed`; global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_classifier(architecture, **params)
        return calibrate_batchnorm_(model, torch.rand(CALIBRATION_BATCH, 3, size, size))


def build_tiny(member: str) -> nn.Module:
    """The member's model with its seeded random weights, in eval mode."""
    tiny = TINY_MEMBERS[member]
    return seeded_model(tiny.architecture, tiny.params, tiny.spec.size, tiny.seed)


def write_test_registry(
    directory: Path, *, members: Sequence[str] = ("tiny-meso", "tiny-hybrid")
) -> Path:
    """Save `members` as safetensors (with sha256 and size) plus a registry.toml in `directory`.

    The registry's "default" ensemble is `members`, in order. Returns the registry path.
    """
    unknown = [m for m in members if m not in TINY_MEMBERS]
    if unknown or not members:
        raise ValueError(
            f"tiny members must be some of {sorted(TINY_MEMBERS)}, got {list(members)}"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    entries = {}
    for member in members:
        tiny = TINY_MEMBERS[member]
        file = f"{member}.safetensors"
        metadata = {"architecture": tiny.architecture, "params": json.dumps(dict(tiny.params))}
        sha = save_safetensors(build_tiny(member), directory / file, metadata)
        entries[member] = ModelEntry(
            id=member,
            architecture=tiny.architecture,
            params=dict(tiny.params),
            preprocessing=tiny.spec,
            file=file,
            format="safetensors",
            sha256=sha,
            size_bytes=(directory / file).stat().st_size,
            license="test-only",
            training_data="none: seeded random weights",
            description=f"test-only {tiny.architecture} with random weights",
        )
    specs = {e.preprocessing.name: e.preprocessing for e in entries.values()}
    registry = Registry(directory, specs, entries, {"default": tuple(members)}, "default")
    path = directory / REGISTRY_NAME
    registry.write(path)
    return path
