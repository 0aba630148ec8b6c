"""The face detector settings a model family's training crops were cut with.

A published checkpoint learned from the boxes its authors' MTCNN drew: selim's DFDC winner ran
it on every frame at half size with P-, R- and O-Net thresholds 0.7/0.8/0.8 (REFERENCE §1),
Coccomini et al. at half size with 0.85/0.95/0.95 (§2). The same face detected at another scale
gets a box a few pixels different, so the crop shifts against what the model saw in training.
A `[preprocessing.*]` table of the registry may name the settings its models expect with two
optional keys; without them a family gets the detector's own (the resolution-dependent scale of
`models.faces.detection_scale`, thresholds 0.7/0.8/0.8).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from models.errors import ConfigError

DFDC_THRESHOLDS = (0.7, 0.8, 0.8)  # REFERENCE §1: P-, R- and O-Net score thresholds
SCALE_KEY = "detector_scale"
THRESHOLDS_KEY = "detector_thresholds"
KEYS = (SCALE_KEY, THRESHOLDS_KEY)
# Beyond 2x (what the detector already uses for frames under 300 px) MTCNN's pyramid grows
# quadratically for nothing: its 12 px cell then sees upsampled blur.
MAX_SCALE = 2.0


@dataclass(frozen=True)
class FaceSettings:
    """How MTCNN looks for the faces of one model family.

    Attributes:
        scale: every frame is resized by this before MTCNN, whatever its resolution; None: the
            detector's own scale by resolution (`models.faces.detection_scale`).
        thresholds: P-, R- and O-Net score thresholds.
    """

    scale: float | None = None
    thresholds: tuple[float, float, float] = DFDC_THRESHOLDS

    def __post_init__(self) -> None:
        if self.scale is not None and not (0 < self.scale <= MAX_SCALE):
            raise ConfigError(f"{SCALE_KEY} must be in (0, {MAX_SCALE}], got {self.scale}")
        if len(self.thresholds) != 3 or not all(0 < t < 1 for t in self.thresholds):
            raise ConfigError(
                f"{THRESHOLDS_KEY} must be 3 scores strictly between 0 and 1 (P-, R-, O-Net), "
                f"got {list(self.thresholds)}"
            )

    @classmethod
    def from_table(cls, table: Mapping[str, object], where: str = "face settings") -> FaceSettings:
        """The settings in a `[preprocessing.*]` table's optional keys (other keys are the
        crop's and ignored here); the detector's own for each key left out.

        Raises:
            ConfigError: a key holds something other than a number, or three numbers.
        """
        try:
            scale = table.get(SCALE_KEY)
            thresholds = table.get(THRESHOLDS_KEY, list(DFDC_THRESHOLDS))
            return cls(
                scale=None if scale is None else _number(scale, SCALE_KEY),
                thresholds=_three_numbers(thresholds),
            )
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None

    def table(self) -> dict[str, object]:
        """The keys to write back into a `[preprocessing.*]` table: those not the detector's own."""
        keys: dict[str, object] = {}
        if self.scale is not None:
            keys[SCALE_KEY] = self.scale
        if self.thresholds != DFDC_THRESHOLDS:
            keys[THRESHOLDS_KEY] = list(self.thresholds)
        return keys


OWN = FaceSettings()  # the detector's own: scale by resolution, thresholds 0.7/0.8/0.8


def _number(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def _three_numbers(value: object) -> tuple[float, float, float]:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ConfigError(f"{THRESHOLDS_KEY} must be a list of 3 numbers, got {value!r}")
    p, r, o = (_number(v, THRESHOLDS_KEY) for v in value)
    return (p, r, o)
