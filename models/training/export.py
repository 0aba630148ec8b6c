"""Write a trained member as safetensors, in fp16 when that costs no accuracy.

fp16 halves the file committed to the repository. The fp16 weights are loaded back into the fp32
model (as the registry loader does) and scored on the validation crops: they are kept when the
frame AUC drops by at most `FP16_AUC_TOLERANCE` and the frame log loss rises by at most
`FP16_LOG_LOSS_TOLERANCE`; otherwise fp32 is written. On the default ensemble, scored in fp32 as
the detector does on CPU, rounding moved crops' calibrated P(fake) by 0.0015 on average (at most
0.02) and the frame AUC and log loss by under 0.001. The card records these changes.

The file's metadata is one JSON string under `METADATA_KEY`: safetensors writes several metadata
keys in hash-map order, which differs between processes and would make the sha256 of identical
weights differ from run to run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import log_loss, roc_auc_score
from torch import nn

from models.checkpoints import save_safetensors
from models.crops import CropSpec, crops_to_tensor
from models.registry import Registry
from models.training.calibration import calibrated
from models.training.members import MemberRecipe
from models.zoo import build_classifier

METADATA_KEY = "fakewatch"
FP16_AUC_TOLERANCE = 0.002
FP16_LOG_LOSS_TOLERANCE = 0.005
PREDICT_BATCH = 64


@dataclass(frozen=True)
class Fp16Check:
    """What rounding the weights to fp16 did to the validation crops' calibrated P(fake)."""

    mean_probability_change: float
    max_probability_change: float
    frame_auc_change: float
    frame_log_loss_change: float

    @property
    def harmless(self) -> bool:
        return (
            self.frame_auc_change >= -FP16_AUC_TOLERANCE
            and self.frame_log_loss_change <= FP16_LOG_LOSS_TOLERANCE
        )


@dataclass(frozen=True)
class ExportedWeights:
    path: Path
    sha256: str
    size_bytes: int
    dtype: str
    fp16: Fp16Check


def predict_logits(
    model: nn.Module, crops: np.ndarray, spec: CropSpec, device: torch.device
) -> np.ndarray:
    """Raw logits of the whole model for (N, S, S, 3) uint8 crops, in eval mode and fp32 (as the
    detector scores on CPU)."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(crops), PREDICT_BATCH):
            batch = crops_to_tensor(list(crops[start : start + PREDICT_BATCH]), spec).to(device)
            outputs.append(model(batch).float().cpu())
    return torch.cat(outputs).numpy()


def half_copy(model: nn.Module, recipe: MemberRecipe) -> nn.Module:
    """A fresh fp32 model holding `model`'s weights rounded through fp16 (integer buffers kept)."""
    state = {
        key: value.half() if value.is_floating_point() else value
        for key, value in model.state_dict().items()
    }
    copy = build_classifier(recipe.architecture, **recipe.params)
    copy.load_state_dict(state, strict=True)
    return copy.eval()


def check_fp16(
    model: nn.Module, recipe: MemberRecipe, temperature: float, crops: np.ndarray,
    labels: np.ndarray, spec: CropSpec,
) -> Fp16Check:
    """Score `crops` (labels: 1 = fake, both present) with the fp32 and the fp16-rounded weights."""
    cpu = torch.device("cpu")
    full = calibrated(predict_logits(model, crops, spec, cpu), temperature)
    half = calibrated(predict_logits(half_copy(model, recipe), crops, spec, cpu), temperature)
    change = np.abs(full - half)
    return Fp16Check(
        mean_probability_change=float(change.mean()),
        max_probability_change=float(change.max()),
        frame_auc_change=float(roc_auc_score(labels, half) - roc_auc_score(labels, full)),
        frame_log_loss_change=float(
            log_loss(labels, half, labels=[0, 1]) - log_loss(labels, full, labels=[0, 1])
        ),
    )


def export_member(
    model: nn.Module,
    recipe: MemberRecipe,
    temperature: float,
    check: tuple[np.ndarray, np.ndarray],
    spec: CropSpec,
    out_dir: Path,
    metadata: dict[str, object],
) -> ExportedWeights:
    """Save `<out_dir>/<model_id>.safetensors`, in fp16 when `check_fp16` on the `check`
    (crops, labels) finds it harmless."""
    model = model.to(torch.device("cpu")).eval()
    fp16 = check_fp16(model, recipe, temperature, *check, spec)
    dtype = "float16" if fp16.harmless else "float32"
    path = out_dir / f"{recipe.model_id}.safetensors"
    out_dir.mkdir(parents=True, exist_ok=True)
    description = {
        **metadata,
        "model_id": recipe.model_id,
        "architecture": recipe.architecture,
        "params": recipe.params,
        "temperature": temperature,
        "dtype": dtype,
    }
    to_save = half_copy(model, recipe).half() if fp16.harmless else model
    sha = save_safetensors(to_save, path, {METADATA_KEY: json.dumps(description, sort_keys=True)})
    return ExportedWeights(path, sha, path.stat().st_size, dtype, fp16)


def export_fp32(model: nn.Module, registry: Registry, model_id: str, out_dir: Path, temperature: float,
                seed: int, card_stem: str, licence: str) -> Path:
    """`<out_dir>/<entry file>` in fp32, for MesoNet-sized members (a few hundred kB: halving
    them is not worth an fp16 check)."""
    entry = registry.models[model_id]
    path = out_dir / entry.file
    out_dir.mkdir(parents=True, exist_ok=True)
    description = {"model_id": model_id, "architecture": entry.architecture, "params": dict(entry.params),
                   "temperature": temperature, "dtype": "float32", "seed": seed,
                   "card": f"{card_stem}.json", "preprocessing": entry.preprocessing.name,
                   "license": licence}
    save_safetensors(model.cpu(), path, {METADATA_KEY: json.dumps(description, sort_keys=True)})
    return path
