"""Building blocks shared by Coccomini et al.'s Efficient ViT and Cross Efficient ViT.

Module and attribute names mirror their published code (itself derived from lucidrains'
vit-pytorch) because the checkpoints' state-dict keys are built from them: `norm`/`fn` in PreNorm,
`net.0`/`net.3` in FeedForward. The EfficientNet-B0 patch extractor is lukemelas'
`efficientnet_pytorch` model, whose `_conv_stem`/`_bn0`/`_blocks`/... names the checkpoints use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from efficientnet_pytorch import EfficientNet
from torch import nn

B0_NAME = "efficientnet-b0"


def build_b0() -> EfficientNet:
    """lukemelas EfficientNet-B0 with its 1000-class `_fc` kept, as in the published checkpoints.

    Built with `from_name` (random weights): the checkpoint supplies every tensor.
    """
    return EfficientNet.from_name(B0_NAME)


def b0_features(net: EfficientNet, x: torch.Tensor, blocks: int | None) -> torch.Tensor:
    """Stem, then the first `blocks` MBConv blocks; `None` runs all blocks and the conv head.

    Mirrors lukemelas' `extract_features`, including its per-block drop-connect schedule, so
    fine-tuning behaves like the reference; in eval mode drop-connect is a no-op.
    """
    x = net._swish(net._bn0(net._conv_stem(x)))
    total = len(net._blocks)
    count = total if blocks is None else blocks
    rate = net._global_params.drop_connect_rate
    for idx in range(count):
        block_rate = rate * idx / total if rate else rate
        x = net._blocks[idx](x, drop_connect_rate=block_rate)
    if blocks is None:
        x = net._swish(net._bn1(net._conv_head(x)))
    return x


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, H/p * W/p, p*p*C), channel fastest: einops '(p1 p2 c)' ordering."""
    n, c, h, w = x.shape
    if h % patch or w % patch:
        raise ValueError(f"feature map {h}x{w} is not divisible by patch size {patch}")
    x = x.reshape(n, c, h // patch, patch, w // patch, patch)
    x = x.permute(0, 2, 4, 3, 5, 1)
    return x.reshape(n, (h // patch) * (w // patch), patch * patch * c)


class PatchFlatten(nn.Module):
    """Parameter-free `patchify` as a module, so a following Linear keeps Sequential index 1."""

    def __init__(self, patch: int) -> None:
        super().__init__()
        self.patch = patch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return patchify(x, self.patch)


def multi_head_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d_head)) v per head; inputs and output are (N, T, heads * d_head)."""
    n = q.shape[0]

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(n, t.shape[1], heads, -1).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(q), split(k), split(v))
    return out.transpose(1, 2).reshape(n, q.shape[1], -1)


class PreNorm(nn.Module):
    """LayerNorm on the input (not on a cross-attention context), then `fn`."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor, **kwargs: torch.Tensor | bool | None) -> torch.Tensor:
        return self.fn(self.norm(x), **kwargs)


class FeedForward(nn.Module):
    """Linear -> GELU -> Dropout -> Linear -> Dropout (keys `net.0`, `net.3`)."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
