"""Write a trained member as safetensors, in fp16 when that changes no prediction that matters.

The file's metadata is one JSON string under `METADATA_KEY`: safetensors writes several metadata
keys in hash-map order, which differs between processes and would make the sha256 of identical
weights differ from run to run. fp16 halves the file committed to the repo. It is kept only if, on the validation crops, the
fp16 weights (loaded back into the fp32 model, as the registry loader does) move no calibrated
probability by more than `FP16_TOLERANCE`; otherwise fp32 is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.crops import CropSpec
from models.registry import save_safetensors
from models.training.members import MemberRecipe
from models.training.trainer import predict_logits
from models.zoo import build_classifier

METADATA_KEY = "fakewatch"
FP16_TOLERANCE = 0.01  # max |delta P(fake)| per crop: one point of probability moves no verdict


@dataclass(frozen=True)
class ExportedWeights:
    path: Path
    sha256: str
    size_bytes: int
    dtype: str
    max_probability_change: float


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def half_copy(model: nn.Module, recipe: MemberRecipe) -> nn.Module:
    """A fresh fp32 model holding `model`'s weights rounded through fp16 (integer buffers kept)."""
    state = {
        key: value.half() if value.is_floating_point() else value
        for key, value in model.state_dict().items()
    }
    copy = build_classifier(recipe.architecture, **recipe.params)
    copy.load_state_dict(state, strict=True)
    return copy.eval()


def export_member(
    model: nn.Module,
    recipe: MemberRecipe,
    temperature: float,
    check_crops: np.ndarray,
    spec: CropSpec,
    out_dir: Path,
    metadata: dict[str, object],
) -> ExportedWeights:
    """Save `<out_dir>/<model_id>.safetensors`; fp16 if it passes the check on `check_crops`."""
    cpu = torch.device("cpu")
    model = model.to(cpu).eval()
    rounded = half_copy(model, recipe)
    full = _sigmoid(predict_logits(model, check_crops, spec, cpu) / temperature)
    half = _sigmoid(predict_logits(rounded, check_crops, spec, cpu) / temperature)
    change = float(np.max(np.abs(full - half))) if len(full) else 0.0
    use_half = change <= FP16_TOLERANCE
    to_save = model.half() if use_half else model
    path = out_dir / f"{recipe.model_id}.safetensors"
    out_dir.mkdir(parents=True, exist_ok=True)
    description = {
        **metadata,
        "model_id": recipe.model_id,
        "architecture": recipe.architecture,
        "params": recipe.params,
        "temperature": temperature,
        "dtype": "float16" if use_half else "float32",
    }
    sha = save_safetensors(to_save, path, {METADATA_KEY: json.dumps(description, sort_keys=True)})
    if use_half:
        model.float()
    return ExportedWeights(path, sha, path.stat().st_size, "float16" if use_half else "float32", change)
