"""The hybrid ViT with a distillation token (seed 001: Heo et al., after DeiT).

A second learned token sits beside CLS and gets its own head. In training the CLS head learns the
label and the distillation head learns a teacher's soft score (`models/training/distill.py`); at
inference the model answers with the distillation head's logit, as Heo et al. do, so it scores
like any other (N, 3, H, W) -> (N,) member. Heo et al. share one linear head between the two
tokens; DeiT, followed here, gives each token its own, so the two targets do not pull one weight.
"""

from __future__ import annotations

import torch
from torch import nn

from models.zoo.hybrid_vit import DEFAULT_BACKBONE, DEFAULT_IMAGE_SIZE, HybridViT


class HybridViTDistilled(HybridViT):
    """`HybridViT` plus a distillation token, its position and its head.

    Takes the same arguments as `HybridViT`; the position table gains one row for the new token.
    """

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        image_size: int = DEFAULT_IMAGE_SIZE,
        dim: int = 256,
        depth: int = 4,
        heads: int = 8,
        mlp_dim: int = 512,
        dropout: float = 0.1,
        out_block: int | None = None,
    ) -> None:
        super().__init__(backbone, image_size, dim, depth, heads, mlp_dim, dropout, out_block)
        cells = self.pos_embed.shape[1] - 1
        self.pos_embed = nn.Parameter(torch.zeros(1, cells + 2, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.dist_token, std=0.02)
        self.dist_head = nn.Linear(dim, 1)

    def heads(self, feature_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits, distillation logits) of one encoder pass: what training needs."""
        encoded = self.encode(feature_map, [self.cls_token, self.dist_token])
        return self.head(encoded[:, 0]).squeeze(-1), self.dist_head(encoded[:, 1]).squeeze(-1)

    def classify(self, feature_map: torch.Tensor) -> torch.Tensor:
        """The distillation head's logits: the model's answer at inference."""
        return self.heads(feature_map)[1]
