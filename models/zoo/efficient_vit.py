"""Efficient ViT (Coccomini et al. 2022): EfficientNet-B0 features as tokens for a small ViT.

Attribute names and shapes match the authors' `efficient_vit.pth` (plain state dict, strict load).
Defaults are their `efficient-vit/configs/architecture.yaml`.
"""

from __future__ import annotations

import torch
from torch import nn

from models.zoo._coccomini_parts import (
    FeedForward,
    PreNorm,
    b0_features,
    build_b0,
    multi_head_attention,
    patchify,
)

B0_CHANNELS = 1280  # EfficientNet-B0 conv-head width (the 7x7 map at 224 px).


class Attention(nn.Module):
    """Multi-head self-attention with one fused `to_qkv` projection (no bias), as published."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float = 0.0) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        project_out = not (heads == 1 and dim_head == dim)
        self.to_out = (
            nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))
            if project_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        return self.to_out(multi_head_attention(q, k, v, self.heads))


class Transformer(nn.Module):
    """Pre-norm encoder without a final norm (`layers.<i>.0` attention, `layers.<i>.1` MLP)."""

    def __init__(
        self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int, dropout: float
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PreNorm(dim, Attention(dim, heads, dim_head, dropout)),
                    # The reference builds its MLP with dropout 0 whatever the config says.
                    PreNorm(dim, FeedForward(dim, mlp_dim, 0.0)),
                ]
            )
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return x


class EfficientViT(nn.Module):
    """EfficientNet-B0 -> 1280x7x7 map -> 7x7 patches -> CLS + ViT -> MLP head -> one logit.

    Args:
        image_size: input side the model was trained at.
        patch_size: patch side on the B0 feature map (7 => the whole map is one token).
        dim: token width.
        depth: transformer layers.
        heads: attention heads.
        dim_head: width per head.
        mlp_dim: hidden width of the transformer MLPs and of the classification head.
        emb_dim: rows of the published position-embedding table (shape emb_dim x 1 x dim).
        dropout: attention dropout.
        emb_dropout: dropout on the tokens after the position embedding.

    Fixed here (the published forward had a bug): it added `pos_embedding[0:batch_size]`, i.e.
    row *i* to every token of the *i*-th sample in the batch, so a face's score depended on its
    place in the batch and batches over `emb_dim` failed. This forward adds row 0 to every token of
    every sample: exactly what the published model computes for a face scored alone, which keeps
    the trained weights in the regime they were trained in (one shared row per sample) and makes
    scores independent of batching. Parameter names and shapes are unchanged.
    """

    def __init__(
        self,
        image_size: int = 224,
        patch_size: int = 7,
        dim: int = 1024,
        depth: int = 6,
        heads: int = 8,
        dim_head: int = 64,
        mlp_dim: int = 2048,
        emb_dim: int = 32,
        dropout: float = 0.15,
        emb_dropout: float = 0.15,
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not divisible by patch_size {patch_size}")
        self.patch_size = patch_size
        self.efficient_net = build_b0()
        self.pos_embedding = nn.Parameter(torch.randn(emb_dim, 1, dim))
        self.patch_to_embedding = nn.Linear(B0_CHANNELS * patch_size**2, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.dropout = nn.Dropout(emb_dropout)
        self.transformer = Transformer(dim, depth, heads, dim_head, mlp_dim, dropout)
        self.to_cls_token = nn.Identity()
        self.mlp_head = nn.Sequential(nn.Linear(dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = b0_features(self.efficient_net, x, blocks=None)
        tokens = self.patch_to_embedding(patchify(features, self.patch_size))
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat((cls, tokens), dim=1) + self.pos_embedding[0]
        tokens = self.transformer(self.dropout(tokens))
        return self.mlp_head(self.to_cls_token(tokens[:, 0])).squeeze(-1)
