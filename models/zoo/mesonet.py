"""MesoNet-4 (Afchar et al. 2018): a ~28k-parameter CNN looking at mesoscopic face texture.

Layout of the authors' Keras model (DariusAf/MesoNet): four conv blocks (8@3x3, 8@5x5, 16@5x5,
16@5x5, 'same' padding, ReLU, then batch norm) with max-pools 2, 2, 2, 4, then dropout 0.5,
dense 16, LeakyReLU 0.1, dropout 0.5, dense 1. Returns the logit, not the sigmoid, and it is a
P(fake) logit (the original's output meant P(real)).
"""

from __future__ import annotations

import torch
from torch import nn

from models.errors import ConfigError

DEFAULT_IMAGE_SIZE = 256  # the paper's input
TOTAL_POOLING = 2 * 2 * 2 * 4
DROPOUT = 0.5
LEAKY_SLOPE = 0.1


def _conv_block(in_ch: int, out_ch: int, kernel: int, pool: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(out_ch),
        nn.MaxPool2d(pool),
    )


class Meso4(nn.Module):
    """MesoNet-4.

    Args:
        image_size: input side; must be a multiple of 32 (the total pooling factor).
    """

    def __init__(self, image_size: int = DEFAULT_IMAGE_SIZE) -> None:
        super().__init__()
        if image_size < TOTAL_POOLING or image_size % TOTAL_POOLING:
            raise ConfigError(
                f"Meso4 image_size must be a multiple of {TOTAL_POOLING}, got {image_size}"
            )
        self.features = nn.Sequential(
            _conv_block(3, 8, 3, 2),
            _conv_block(8, 8, 5, 2),
            _conv_block(8, 16, 5, 2),
            _conv_block(16, 16, 5, 4),
        )
        side = image_size // TOTAL_POOLING
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(DROPOUT),
            nn.Linear(16 * side * side, 16),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Dropout(DROPOUT),
            nn.Linear(16, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).squeeze(-1)
