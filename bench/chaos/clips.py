"""What the suite uploads and what its workers load: distinct small face clips and a one-model
registry with seeded random weights, so a job costs about a second of CPU."""

from __future__ import annotations

from pathlib import Path

import torch

from bench.media import write_face_clip
from models.checkpoints import save_safetensors
from models.crops import CropSpec
from models.registry import ModelEntry, Registry
from models.zoo import build_classifier

CLIP_HEIGHT = 180
CLIP_FRAMES = 16
BASE_WIDTH = 240
MODEL_ID = "chaos-meso"
SEED = 13
# MesoNet's own convention (0-1 RGB pixels, no mean/std) at half its 256 px, as the tests use.
SPEC = CropSpec(name="chaos-meso", size=128, margin=0.25, square=True, color_order="RGB",
                scale=255.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def write_clips(directory: Path, count: int) -> list[Path]:
    """`count` clips whose bytes all differ (each is 2 px wider than the last)."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        write_face_clip(directory / f"clip{index:03d}.mp4", BASE_WIDTH + 2 * index, CLIP_HEIGHT,
                        CLIP_FRAMES)
        for index in range(count)
    ]


def write_registry(directory: Path) -> Path:
    """A registry whose default ensemble is one seeded, random-weight MesoNet-4 at 128 px."""
    directory.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = build_classifier("meso4", image_size=SPEC.size).eval()
    file = f"{MODEL_ID}.safetensors"
    sha = save_safetensors(model, directory / file, {"architecture": "meso4"})
    entry = ModelEntry(
        id=MODEL_ID, architecture="meso4", params={"image_size": SPEC.size}, preprocessing=SPEC,
        file=file, format="safetensors", sha256=sha, size_bytes=(directory / file).stat().st_size,
        license="test-only", training_data="none: seeded random weights",
        description="the chaos suite's stand-in: its scores mean nothing, its cost is real",
    )
    path = directory / "registry.toml"
    Registry(directory, {SPEC.name: SPEC}, {MODEL_ID: entry}, {"default": (MODEL_ID,)},
             "default").write(path)
    return path
