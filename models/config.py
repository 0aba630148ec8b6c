"""What a detector loads and how it scores by default; torch-free so settings can build it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, Field

DEFAULT_FRAMES = 32  # selim's DFDC-winning pipeline samples 32 frames per video.
# Hard ceiling on a decoded frame's longer side (8K): FFmpeg refuses to allocate larger frames,
# whatever the header said, so a stream that changes resolution mid-way cannot exhaust memory.
DECODE_MAX_SIDE = 8192
# The policy used when neither the request, the detector nor the loaded ensemble's presets name one
# (the protocol's best AUC for the SBI pair; the default ensemble's presets were fitted under it).
DEFAULT_POLICY = "confident"
# `models.aggregation.POLICIES`, named here so that the gateway, settings and the CLI can check a
# name without numpy.
PolicyName = Literal["max-identity", "trimmed-max-identity", "mean", "confident"]
POLICY_NAMES: tuple[str, ...] = get_args(PolicyName)
DEFAULT_THRESHOLD = 0.5  # only for models without measured presets (see PRESET_NAMES)
# Operating points an ensemble's registry entry may carry, each measured on real videos it was not
# fitted on: strict flags fewest real videos, sensitive catches most fakes.
PresetName = Literal["strict", "balanced", "sensitive"]
PRESET_NAMES: tuple[str, ...] = get_args(PresetName)
# Classifier precision: "auto" is half precision on CUDA, fp32 on CPU (`models.device`).
Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


@dataclass(frozen=True)
class DetectorConfig:
    """Fixed for a detector's life: which models, on which device, with which defaults.

    Attributes:
        registry_path: registry TOML; None means the project's `weights/registry.toml`.
        models: model ids, or a single ensemble name; None means the registry's default ensemble.
        device: "auto", "cpu" or "cuda" (or "cuda:N").
        frames: frames sampled per video unless a request says otherwise.
        policy: aggregation policy name unless a request says otherwise; None takes the policy the
            loaded ensemble's presets were measured under (else DEFAULT_POLICY).
        threshold: P(fake) at or above which a video is labelled fake; None takes the loaded
            ensemble's preset (`preset`, else its default), or DEFAULT_THRESHOLD without presets.
        preset: threshold preset of the loaded ensemble used when `threshold` is None.
        precision: "auto" (half precision on CUDA, fp32 on CPU), "fp32" or "bf16" for the
            classifiers; see `models.device.inference_dtype` for why CPU defaults to fp32.
    """

    registry_path: Path | None = None
    models: tuple[str, ...] | None = None
    device: str = "auto"
    frames: int = DEFAULT_FRAMES
    policy: str | None = None
    threshold: float | None = None
    preset: PresetName | None = None
    precision: Precision = "auto"


class DetectOptions(BaseModel):
    """Per-request overrides; None keeps the detector's default."""

    frames: int | None = Field(default=None, ge=1, le=1024)
    fps: float | None = Field(default=None, gt=0, le=60, description="Sample this many frames per second instead of a fixed count.")
    policy: PolicyName | None = None
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    preset: PresetName | None = Field(
        default=None, description="Threshold preset (measured operating point); a threshold given as a number wins."
    )
    models: list[str] | None = Field(default=None, description="Subset of the loaded model ids.")
