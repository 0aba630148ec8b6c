"""The teacher of a distilled member: registered models scoring every training view once.

The teacher sees the very view the student sees (augmented, self-blended or genuine), cut from the
student's crop: a teacher with a tighter crop convention gets the centred sub-window its margin
implies, resized to its input size. For the default ensemble (MesoNet, margin 0.045, 256 px) and
the `fakewatch` crop (margin 0.25, 224 px) that is the centred 1.09/1.5 = 72.7% of the crop
(163 px) resized to 256 px. A teacher wanting more context than the crop holds is refused.

Any registered model or ensemble can teach, a larger one included (e.g. the DFDC winner's B7s,
which Heo et al. distilled from): it is loaded with the registry's loader and scored on the device
the run uses, so on a GPU machine only `--teacher dfdc-winner --device cuda` changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from models.checkpoints import load_classifier
from models.crops import CropSpec, crops_to_tensor
from models.errors import ConfigError
from models.registry import ModelEntry, Registry
from models.training.calibration import calibrated
from models.zoo import ARCHITECTURES

TEACHER_BATCH = 64


def window_fraction(student: CropSpec, teacher: CropSpec) -> float:
    """Side of the teacher's crop as a share of the student's, both square around the same box."""
    if not (student.square and teacher.square):
        raise ConfigError("teacher and student crops must both be square to map one onto the other")
    fraction = (1 + 2 * teacher.margin) / (1 + 2 * student.margin)
    if fraction > 1:
        raise ConfigError(
            f"the teacher's crop ('{teacher.name}', margin {teacher.margin}) holds more than the "
            f"student's ('{student.name}', margin {student.margin}): its view cannot be cut from it"
        )
    return fraction


def teacher_view(crop: np.ndarray, fraction: float, size: int) -> np.ndarray:
    """The centred `fraction` of a square crop, resized to `size` px."""
    side = max(1, round(crop.shape[0] * fraction))
    start = (crop.shape[0] - side) // 2
    window = crop[start : start + side, start : start + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(window, (size, size), interpolation=interpolation)


class Teacher:
    """P(fake) of student crops by registered models: the mean of their calibrated probabilities,
    as the detector combines an ensemble's members on one crop.

    Args:
        name: a registry ensemble or model id.
        registry: where it is registered (its weights must be on disk).
        student: the crop convention of the views it will score.
        device: where the teacher runs.
    """

    def __init__(self, name: str, registry: Registry, student: CropSpec, device: torch.device) -> None:
        entries = registry.resolve([name])
        self.name = name
        paired = [e.id for e in entries if getattr(ARCHITECTURES[e.architecture], "pair_inputs", False)]
        if paired:
            raise ConfigError(f"teacher {name!r}: {', '.join(paired)} judge a face with its neighbouring "
                              "frame, not a training view alone; name single-crop models")
        self.members: list[tuple[ModelEntry, nn.Module, float]] = [
            (entry, load_classifier(entry, registry, device), window_fraction(student, entry.preprocessing))
            for entry in entries
        ]
        self.device = device

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) float32 teacher P(fake) of uint8 RGB student crops."""
        scores = []
        for entry, model, fraction in self.members:
            spec = entry.preprocessing
            logits = []
            with torch.inference_mode():
                for start in range(0, len(images), TEACHER_BATCH):
                    views = [teacher_view(image, fraction, spec.size)
                             for image in images[start : start + TEACHER_BATCH]]
                    logits.append(model(crops_to_tensor(views, spec).to(self.device)).float().cpu().numpy())
            scores.append(calibrated(np.concatenate(logits), entry.temperature))
        return np.mean(scores, axis=0).astype(np.float32)

    def describe(self) -> str:
        """One line for the model card."""
        parts = [f"{entry.id} ({entry.preprocessing.name} crop: centred {fraction:.1%} of the "
                 f"student's crop resized to {entry.preprocessing.size} px; temperature "
                 f"{entry.temperature:g})" for entry, _, fraction in self.members]
        return (f"'{self.name}': mean calibrated P(fake) of {', '.join(parts)}, scored once per "
                "training view")
