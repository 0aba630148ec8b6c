"""Seed 004's multi-input MesoInception-4: the face crop, the SSIM map between the crop and the same
person's crop in the neighbouring sampled frame, and the SSIM mean and spread over the person's
track (`models.ssim_pairs`), each through its own branch, concatenated before one logit.

As in seed 004: the main model (MesoInception-4 up to its 16-unit dense layer), a small CNN on the
SSIM map, a small dense layer on the two statistics, then the classification layer. The main
model's convolutions keep the authors' weights (`face_features`); the rest is trained
(`logit_from_features`), so training can run on cached convolution features.
"""

from __future__ import annotations

import torch
from torch import nn

from models.ssim_pairs import SSIM_SIZE
from models.zoo.mesonet import DEFAULT_IMAGE_SIZE, DROPOUT, MesoInception4

SSIM_CHANNELS = (8, 16, 16)  # one 3x3 conv block per entry, each halving the map


class _MapBranch(nn.Module):
    """conv -> ReLU -> batch norm -> max-pool per width, then a global average: one vector per map."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(width),
                       nn.MaxPool2d(2)]
            channels = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.layers = nn.Sequential(*layers)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.layers(maps)


class MesoInceptionSSIM(nn.Module):
    """Three inputs per face: (N, 3, S, S) crops, (N, 1, M, M) SSIM maps, (N, 2) track statistics.

    Args:
        image_size: crop side; a multiple of 32.
        ssim_size: SSIM map side (must match `models.ssim_pairs.SSIM_SIZE` to be used).
        stats_units: width of the dense layer on the statistics.
    """

    pair_inputs = True  # the detector feeds `models.ssim_pairs.PairInputs` besides the crops

    def __init__(self, image_size: int = DEFAULT_IMAGE_SIZE, ssim_size: int = SSIM_SIZE,
                 stats_units: int = 8) -> None:
        super().__init__()
        self.ssim_size = ssim_size
        self.face = MesoInception4(image_size)
        self.ssim = _MapBranch(SSIM_CHANNELS)
        self.stats = nn.Sequential(nn.Linear(2, stats_units), nn.ReLU())
        self.dropout = nn.Dropout(DROPOUT)
        hidden = self.face.head.hidden.out_features
        self.output = nn.Linear(hidden + SSIM_CHANNELS[-1] + stats_units, 1)

    def face_features(self, crops: torch.Tensor) -> torch.Tensor:
        """MesoInception-4's flattened convolution output (channels last, as its dense layer reads)."""
        face = self.face
        return face.blocks(face.inception2(face.inception1(crops))).permute(0, 2, 3, 1).flatten(1)

    def logit_from_features(self, features: torch.Tensor, maps: torch.Tensor,
                            stats: torch.Tensor) -> torch.Tensor:
        head = self.face.head
        face = head.activation(head.hidden(head.dropout(features)))
        joined = torch.cat([face, self.ssim(maps), self.stats(stats)], dim=1)
        return self.output(self.dropout(joined)).squeeze(-1)

    def forward(self, crops: torch.Tensor, maps: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        return self.logit_from_features(self.face_features(crops), maps, stats)
