"""Seed 004's temporal evidence: how each face crop of a person differs from the person's crop in
the neighbouring sampled frame, as an SSIM map, and how steady that is over the person's track.

Generated faces tend to flicker between frames in ways real skin does not (blending seams that
move, texture that is re-synthesised each frame), while a still photo animated into a talking head
changes too little. The structural similarity (Wang et al. 2004) of consecutive crops measures
both: its map says where the face changed, and its mean and spread over the track say how much
and how steadily.

Each crop is paired with the person's previous crop in sampling order; the first crop of a track
with the second. A person seen in one sampled frame has no pair: such faces cannot be scored this
way, and `PairInputs.of_track` refuses them (the detector leaves them out, with a warning).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from models.errors import FakewatchError

SSIM_SIZE = 64  # side of the grey views compared; the map has the same side
SSIM_SIGMA = 1.5  # Gaussian window of Wang et al.
NO_PAIR_REASON = (
    "nobody is seen in more than one sampled frame; the SSIM model compares each face with the "
    "same person's face in the neighbouring sampled frame (sample more frames, or score this "
    "input with models that judge single crops)"
)


class NoPairError(FakewatchError):
    """A face has no neighbouring crop of the same person to be compared with."""


def grey_view(crop: np.ndarray) -> np.ndarray:
    """(SSIM_SIZE, SSIM_SIZE) float32 luminance in [0, 1] of an (S, S, 3) uint8 RGB crop."""
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (SSIM_SIZE, SSIM_SIZE), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def ssim_map(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Local SSIM of two grey views, same shape as they are; 1 where nothing changed."""
    _, local = structural_similarity(
        first, second, data_range=1.0, gaussian_weights=True, sigma=SSIM_SIGMA,
        use_sample_covariance=False, full=True,
    )
    return local.astype(np.float32)


def partners(count: int) -> np.ndarray:
    """For each of a track's `count` crops in order, the index of the crop it is compared with."""
    if count < 2:
        raise NoPairError(NO_PAIR_REASON)
    return np.concatenate([[1], np.arange(count - 1)])


@dataclass(frozen=True)
class PairInputs:
    """The second and third inputs of a two-input model for a set of crops.

    Attributes:
        maps: (N, 1, SSIM_SIZE, SSIM_SIZE) float32 SSIM map of each crop with its partner.
        stats: (N, 2) float32 mean and standard deviation, over the crop's track, of the pairs'
            mean SSIM (the same for every crop of a person).
    """

    maps: np.ndarray
    stats: np.ndarray

    @classmethod
    def of_track(cls, views: list[np.ndarray]) -> PairInputs:
        """Inputs for one person's grey views in sampling order. Raises NoPairError for one view."""
        pairing = partners(len(views))
        pair_maps = {}
        for i, j in enumerate(pairing):
            key = (min(i, j), max(i, j))
            if key not in pair_maps:
                pair_maps[key] = ssim_map(views[key[0]], views[key[1]])
        maps = np.stack([pair_maps[(min(i, j), max(i, j))] for i, j in enumerate(pairing)])
        means = np.array([m.mean() for m in pair_maps.values()], np.float32)
        stats = np.tile(np.array([means.mean(), means.std()], np.float32), (len(views), 1))
        return cls(maps=maps[:, None], stats=stats)

    @classmethod
    def of_faces(cls, views: list[np.ndarray], identities: np.ndarray) -> PairInputs:
        """Inputs for faces in sampling order, each person paired within its own track."""
        maps = np.zeros((len(views), 1, SSIM_SIZE, SSIM_SIZE), np.float32)
        stats = np.zeros((len(views), 2), np.float32)
        for identity in np.unique(identities):
            rows = np.flatnonzero(identities == identity)
            track = cls.of_track([views[i] for i in rows])
            maps[rows], stats[rows] = track.maps, track.stats
        return cls(maps=maps, stats=stats)

    def flipped(self) -> PairInputs:
        """The inputs of the horizontally mirrored crops (SSIM is computed pixel-wise)."""
        return PairInputs(maps=np.ascontiguousarray(self.maps[..., ::-1]), stats=self.stats)
