"""MesoNet-4 and MesoInception-4 (Afchar et al. 2018): ~28k-parameter CNNs on mesoscopic face texture.

Built layer for layer like the authors' Keras models (DariusAf/MesoNet) so that their published
`save_weights` files load exactly (`models.keras_weights`): 'same' padding, ReLU *before* batch
norm (Keras epsilon 1e-3), max-pools 2, 2, 2, 4, flatten in channels-last order, dropout 0.5,
dense 16, dropout 0.5, dense 1. Both return one P(fake) logit per crop; the authors' sigmoid meant
P(real), which the checkpoint reader turns around.

`keras_layers()` lists the weighted layers in the order a Keras file stores them: Keras sorts a
functional model's layers by depth, so inside an inception block the three 1x1 reductions come
first, then the plain 1x1 branch, then the three 3x3 convolutions.
"""

from __future__ import annotations

import torch
from torch import nn

from models.errors import ConfigError

DEFAULT_IMAGE_SIZE = 256  # the paper's input
TOTAL_POOLING = 2 * 2 * 2 * 4
DROPOUT = 0.5
LEAKY_SLOPE = 0.1
KERAS_BN_EPSILON = 1e-3
HIDDEN_UNITS = 16


def _check_size(image_size: int) -> int:
    if image_size < TOTAL_POOLING or image_size % TOTAL_POOLING:
        raise ConfigError(f"MesoNet image_size must be a multiple of {TOTAL_POOLING}, got {image_size}")
    return image_size // TOTAL_POOLING


def _same_conv(in_ch: int, out_ch: int, kernel: int, dilation: int = 1) -> nn.Conv2d:
    """A Keras 'same' convolution (odd kernel, stride 1): symmetric padding."""
    return nn.Conv2d(in_ch, out_ch, kernel, padding=dilation * (kernel // 2), dilation=dilation)


class _ConvBlock(nn.Module):
    """conv -> ReLU -> batch norm -> max-pool, as each of the authors' plain blocks."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, pool: int) -> None:
        super().__init__()
        self.conv = _same_conv(in_ch, out_ch, kernel)
        self.norm = nn.BatchNorm2d(out_ch, eps=KERAS_BN_EPSILON)
        self.pool = nn.MaxPool2d(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.norm(torch.relu(self.conv(x))))


class _InceptionBlock(nn.Module):
    """Four branches (1x1; 1x1->3x3; 1x1->3x3 dilated 2; 1x1->3x3 dilated 3), concatenated,
    then batch norm and a max-pool of 2."""

    def __init__(self, in_ch: int, a: int, b: int, c: int, d: int) -> None:
        super().__init__()
        self.branch1 = _same_conv(in_ch, a, 1)
        self.reduce2, self.conv2 = _same_conv(in_ch, b, 1), _same_conv(b, b, 3)
        self.reduce3, self.conv3 = _same_conv(in_ch, c, 1), _same_conv(c, c, 3, dilation=2)
        self.reduce4, self.conv4 = _same_conv(in_ch, d, 1), _same_conv(d, d, 3, dilation=3)
        self.norm = nn.BatchNorm2d(a + b + c + d, eps=KERAS_BN_EPSILON)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [
            torch.relu(self.branch1(x)),
            torch.relu(self.conv2(torch.relu(self.reduce2(x)))),
            torch.relu(self.conv3(torch.relu(self.reduce3(x)))),
            torch.relu(self.conv4(torch.relu(self.reduce4(x)))),
        ]
        return self.pool(self.norm(torch.cat(branches, dim=1)))

    def keras_layers(self) -> list[nn.Module]:
        return [self.reduce2, self.reduce3, self.reduce4, self.branch1,
                self.conv2, self.conv3, self.conv4, self.norm]


class _MesoHead(nn.Module):
    """Channels-last flatten, dropout, dense 16 (LeakyReLU 0.1 or linear), dropout, dense 1.

    `hidden_activation=False` reproduces the authors' Meso4 files, whose saved graph has no
    activation layer between the two dense layers (their MesoInception files have one).
    """

    def __init__(self, side: int, hidden_activation: bool) -> None:
        super().__init__()
        self.dropout = nn.Dropout(DROPOUT)
        self.hidden = nn.Linear(16 * side * side, HIDDEN_UNITS)
        self.activation = nn.LeakyReLU(LEAKY_SLOPE) if hidden_activation else nn.Identity()
        self.output = nn.Linear(HIDDEN_UNITS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.permute(0, 2, 3, 1).flatten(1)  # Keras flattens height, width, channels
        hidden = self.activation(self.hidden(self.dropout(flat)))
        return self.output(self.dropout(hidden)).squeeze(-1)


class Meso4(nn.Module):
    """MesoNet-4.

    Args:
        image_size: input side; a multiple of 32 (the total pooling factor).
        hidden_activation: LeakyReLU after the first dense layer (see `_MesoHead`).
    """

    def __init__(self, image_size: int = DEFAULT_IMAGE_SIZE, hidden_activation: bool = False) -> None:
        super().__init__()
        side = _check_size(image_size)
        self.blocks = nn.Sequential(
            _ConvBlock(3, 8, 3, 2), _ConvBlock(8, 8, 5, 2),
            _ConvBlock(8, 16, 5, 2), _ConvBlock(16, 16, 5, 4),
        )
        self.head = _MesoHead(side, hidden_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))

    def keras_layers(self) -> list[nn.Module]:
        """Weighted layers in the order the authors' Keras files store them."""
        convs = [layer for block in self.blocks for layer in (block.conv, block.norm)]
        return [*convs, self.head.hidden, self.head.output]


class MesoInception4(nn.Module):
    """MesoInception-4: two inception blocks (widths 1,4,4,2 then 2,4,4,2) before Meso4's last two
    conv blocks and head.

    Args:
        image_size: input side; a multiple of 32.
        hidden_activation: LeakyReLU after the first dense layer (the authors' files have it).
    """

    def __init__(self, image_size: int = DEFAULT_IMAGE_SIZE, hidden_activation: bool = True) -> None:
        super().__init__()
        side = _check_size(image_size)
        self.inception1 = _InceptionBlock(3, 1, 4, 4, 2)
        self.inception2 = _InceptionBlock(11, 2, 4, 4, 2)
        self.blocks = nn.Sequential(_ConvBlock(12, 16, 5, 2), _ConvBlock(16, 16, 5, 4))
        self.head = _MesoHead(side, hidden_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.inception2(self.inception1(x))))

    def keras_layers(self) -> list[nn.Module]:
        """Weighted layers in the order the authors' Keras files store them."""
        convs = [layer for block in self.blocks for layer in (block.conv, block.norm)]
        return [*self.inception1.keras_layers(), *self.inception2.keras_layers(), *convs,
                self.head.hidden, self.head.output]
