"""Faces in a video's sampled frames: MTCNN as shipped, then a finer look where it found none.

The first pass detects a 1080p frame at half size and skips faces under 5.5% of the short side
(59 px) because those levels are half of MTCNN's work; a person standing a few metres away in
1080p has a face of 40-80 px. Looking for them in every frame at full size would cost several
times the first pass on every video, so the second pass runs only on the frames where the first
found nothing: footage whose faces are found, the common case, pays nothing, and a frame the
first pass missed gets a second, finer look. Frames without anyone in them pay for both.
Both passes brighten dark frames first (`models.exposure`); a dark frame the brightened first
pass left empty is also searched as it is, before the second pass. Every pass keeps only faces
whose landmarks are laid out like a face's (`models.face_layout`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from models.exposure import DARK_MEAN, MAX_GAMMA_LIFT, TARGET_MEAN, is_dark
from models.face_layout import (
    EYE_DISTANCE_SHARE,
    FRAME_TOLERANCE,
    MAX_TILT_DEGREES,
    NOSE_ALONG_AXIS,
    plausible_layout,
)
from models.face_settings import OWN, FaceSettings
from models.faces import (
    BATCH_SIZE,
    MIN_CONFIDENCE,
    MIN_FACE_FRACTION,
    MIN_FACE_SIZE,
    Face,
    FaceDetector,
)

# The second pass detects at twice the usual scale (a 1080p frame at full size instead of half)
# through the whole pyramid, down to faces of 2% of the short side (22 px in 1080p). On the face-recall benchmark's 40 px faces, detecting the half-size frame down to
# P-Net's 12 px cell found none; at full size it found them all.
RESCUE_ZOOM = 2.0
RESCUE_MIN_FACE_FRACTION = 0.02
# O-Net score a second-pass face needs. Measured on the benchmark (10 research clips x 5 frames
# per condition, 160 face-free frames): true faces found by the second pass scored >= 0.995 when
# small, >= 0.953 when also dark and in shadow (2 of 49 below 0.97); its false faces (a texture in
# a photo collage) 0.91 and 0.96. Set on the benchmark's own clips, not on held-out ones. The
# first pass keeps the shipped 0.9.
RESCUE_MIN_CONFIDENCE = 0.97
# When every face the first pass found in a batch is at least this share of the short side (twice
# its smallest), a frame it left empty holds a person turned away or gone, not a face too small
# for it, and the second pass (several times the first's cost) is skipped: on 1080p clips of one
# near person, 1-2 empty frames in 32 otherwise cost 7-15% of the clip's CPU time.
LARGE_FACE_FRACTION = 2 * MIN_FACE_FRACTION
# Frames per second-pass call: a 1080p frame at full size is 25 MB of float32 before its pyramid.
RESCUE_BATCH_SIZE = 4


class FaceFinder:
    """A first MTCNN pass over every frame (dark ones brightened), a look at the dark frames it
    left empty as they are, and a finer second pass over the frames still empty.

    Args:
        device: torch device for both passes.
        batch_size: frames per first-pass MTCNN call (the second pass takes RESCUE_BATCH_SIZE).
        settings: the detection scale and MTCNN thresholds of the model family the faces are
            for; the second pass looks at RESCUE_ZOOM times that scale.
    """

    def __init__(
        self,
        device: str | torch.device = "cpu",
        batch_size: int = BATCH_SIZE,
        settings: FaceSettings = OWN,
    ) -> None:
        self.batch_size = batch_size
        self.settings = settings
        self._first = FaceDetector(
            device=device,
            batch_size=batch_size,
            exposure=True,
            scale=settings.scale,
            thresholds=settings.thresholds,
        )
        # Brightening a dark frame also amplifies its noise; a face MTCNN sees in the dark
        # original (a turned head in a dark room, on the benchmark) gets a look there too.
        self._unbrightened = FaceDetector(
            device=device,
            batch_size=batch_size,
            scale=settings.scale,
            thresholds=settings.thresholds,
        )
        self._second = FaceDetector(
            device=device,
            scale=settings.scale,
            thresholds=settings.thresholds,
            zoom=RESCUE_ZOOM,
            min_face_fraction=RESCUE_MIN_FACE_FRACTION,
            min_confidence=RESCUE_MIN_CONFIDENCE,
            batch_size=RESCUE_BATCH_SIZE,
            exposure=True,
        )

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces in each HxWx3 uint8 RGB image, most confident first; one list per image."""
        found = _laid_out_like_faces(images, self._first.detect(images))
        dark_empty = [i for i, faces in enumerate(found) if not faces and is_dark(images[i])]
        _look_again(self._unbrightened, images, found, dark_empty)
        empty = [i for i, faces in enumerate(found) if not faces]
        if empty and not _only_large_faces(images, found):
            _look_again(self._second, images, found, empty)
        return found


def finder_settings(settings: FaceSettings = OWN) -> dict[str, object]:
    """Everything that decides the boxes a `FaceFinder` with `settings` draws: caches of its
    faces are keyed by it."""
    return {
        "scale": settings.scale,
        "thresholds": list(settings.thresholds),
        "min_face_size": MIN_FACE_SIZE,
        "min_face_fraction": MIN_FACE_FRACTION,
        "min_confidence": MIN_CONFIDENCE,
        "exposure": {"dark_mean": DARK_MEAN, "target_mean": TARGET_MEAN, "max_lift": MAX_GAMMA_LIFT},
        "rescue": {
            "zoom": RESCUE_ZOOM,
            "min_face_fraction": RESCUE_MIN_FACE_FRACTION,
            "min_confidence": RESCUE_MIN_CONFIDENCE,
            "large_face_fraction": LARGE_FACE_FRACTION,
        },
        "layout": {
            "nose_along_axis": list(NOSE_ALONG_AXIS),
            "eye_distance_share": list(EYE_DISTANCE_SHARE),
            "max_tilt_degrees": MAX_TILT_DEGREES,
            "frame_tolerance": FRAME_TOLERANCE,
        },
    }


def _look_again(
    detector: FaceDetector, images: Sequence[np.ndarray], found: list[list[Face]], which: list[int]
) -> None:
    """Replace `found[i]` for each i in `which` by what `detector` finds in `images[i]`."""
    if which:
        chosen = [images[i] for i in which]
        for i, faces in zip(which, _laid_out_like_faces(chosen, detector.detect(chosen)), strict=True):
            found[i] = faces


def _laid_out_like_faces(
    images: Sequence[np.ndarray], found: list[list[Face]]
) -> list[list[Face]]:
    """Each image's faces without those whose landmarks are not laid out like a face's."""
    return [
        [face for face in faces if plausible_layout(face, image.shape[1], image.shape[0])]
        for image, faces in zip(images, found, strict=True)
    ]


def _only_large_faces(images: Sequence[np.ndarray], found: list[list[Face]]) -> bool:
    """Whether some face was found and every one is at least LARGE_FACE_FRACTION of its
    frame's short side high."""
    heights = [
        (face.box[3] - face.box[1]) / min(image.shape[:2])
        for image, faces in zip(images, found, strict=True)
        for face in faces
    ]
    return bool(heights) and min(heights) >= LARGE_FACE_FRACTION
