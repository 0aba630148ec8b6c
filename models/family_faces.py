"""Faces for an ensemble whose model families expect different detector settings.

Each family's checkpoints learned from the boxes of their own detector settings
(`models.face_settings`), so each distinct setting gets its own `FaceFinder`. The video's faces
(what is tracked, reported and cropped for review) are those found with the first member's
settings; every other family cuts its crop from its own finder's box for the same face. An
ensemble of one family, the common case, runs one finder and matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.face_finder import FaceFinder
from models.face_settings import FaceSettings
from models.faces import Face
from models.tracking import box_iou

# A family's box counts as the same face when it overlaps the reported box this much. Boxes of
# one face at two MTCNN scales overlap by 0.8 or more; two neighbours' faces by far less.
SAME_FACE_IOU = 0.5


@dataclass(frozen=True)
class FamilyDetections:
    """One batch's faces, and each family's box for every one of them.

    Attributes:
        faces: per frame, the faces found with the first settings.
        boxes: per settings, per frame, a (4,) box per face of `faces`: that family's own box
            for it, or the face's own box where the family's settings did not find it (a face
            only the first finder's settings see: its box is then the best there is).
    """

    faces: list[list[Face]]
    boxes: Mapping[FaceSettings, list[list[np.ndarray]]]


class FamilyFaces:
    """Finders by detector settings, the first settings' faces leading (`load` builds them).

    Args:
        finders: one `FaceFinder` per distinct settings, in the members' order.
    """

    def __init__(self, finders: Mapping[FaceSettings, FaceFinder]) -> None:
        if not finders:
            raise ValueError("FamilyFaces needs at least one finder")
        self.finders = dict(finders)

    @classmethod
    def load(cls, settings: Sequence[FaceSettings], device: str | torch.device = "cpu") -> FamilyFaces:
        """A finder for each distinct one of the members' `settings` (in their order)."""
        return cls({s: FaceFinder(device=device, settings=s) for s in dict.fromkeys(settings)})

    def select(self, settings: Sequence[FaceSettings]) -> FamilyFaces:
        """The finders for a subset of the members, in their order (no model loaded again)."""
        return FamilyFaces({s: self.finders[s] for s in dict.fromkeys(settings)})

    @property
    def batch_size(self) -> int:
        return next(iter(self.finders.values())).batch_size

    def warmup(self, image: np.ndarray) -> None:
        for finder in self.finders.values():
            finder.detect([image])

    def detect(self, images: Sequence[np.ndarray]) -> FamilyDetections:
        """Faces in HxWx3 uint8 RGB `images` by the first settings, with every family's boxes."""
        (first, leader), *others = self.finders.items()
        faces = leader.detect(images)
        boxes = {first: [[face.box for face in frame] for frame in faces]}
        for settings, finder in others:
            boxes[settings] = [
                _matched_boxes(ours, theirs)
                for ours, theirs in zip(faces, finder.detect(images), strict=True)
            ]
        return FamilyDetections(faces=faces, boxes=boxes)


def _matched_boxes(faces: Sequence[Face], family: Sequence[Face]) -> list[np.ndarray]:
    """For each of `faces`, the best-overlapping box of `family` if it overlaps by at least
    SAME_FACE_IOU, else the face's own box."""
    if not faces or not family:
        return [face.box for face in faces]
    overlaps = box_iou(np.stack([f.box for f in faces]), np.stack([f.box for f in family]))
    best = overlaps.argmax(axis=1)
    return [
        family[j].box if overlaps[i, j] >= SAME_FACE_IOU else face.box
        for i, (face, j) in enumerate(zip(faces, best, strict=True))
    ]
