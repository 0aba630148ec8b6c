"""Cross Efficient ViT (Coccomini et al. 2022): two EfficientNet-B0 token branches + cross-attention.

Key roots and shapes match the authors' `cross_efficient_vit.pth` (plain state dict, strict load):
`sm_image_embedder.*`, `lg_image_embedder.*`, `multi_scale_encoder.layers.*`, `sm_mlp_head.*`,
`lg_mlp_head.*`. Defaults are their `cross-efficient-vit/configs/architecture.yaml`.
"""

from __future__ import annotations

import torch
from torch import nn

from models.zoo._coccomini_parts import (
    FeedForward,
    PatchFlatten,
    PreNorm,
    b0_features,
    build_b0,
    multi_head_attention,
)

# Which B0 output each branch tokenises. The published embedders call
# `extract_features_at_block(img, 16)` (all 16 blocks + conv head: 1280x7x7 at 224 px) and
# `extract_features_at_block(img, 1)`, whose loop stops after block index 2 (24x56x56, the end of
# stage 2). Both branches keep a complete B0 (head and `_fc` included) in their weights.
SM_BLOCKS: int | None = None
LG_BLOCKS = 3
SM_CHANNELS = 1280
LG_CHANNELS = 24


class Attention(nn.Module):
    """Multi-head attention with separate `to_q` and `to_kv` projections (no bias).

    With `kv_include_self`, the queries are prepended to the keys/values: a CLS token attending
    to the other branch's patches also attends to itself.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float = 0.0) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, kv_include_self: bool = False
    ) -> torch.Tensor:
        context = x if context is None else context
        if kv_include_self:
            context = torch.cat((x, context), dim=1)
        k, v = self.to_kv(context).chunk(2, dim=-1)
        return self.to_out(multi_head_attention(self.to_q(x), k, v, self.heads))


class Transformer(nn.Module):
    """Pre-norm encoder with a final LayerNorm `norm`."""

    def __init__(
        self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int, dropout: float
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PreNorm(dim, Attention(dim, heads, dim_head, dropout)),
                    PreNorm(dim, FeedForward(dim, mlp_dim, dropout)),
                ]
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return self.norm(x)


class ProjectInOut(nn.Module):
    """Runs `fn` in another width: Linear in, fn, Linear out (Identity when widths agree)."""

    def __init__(self, dim_in: int, dim_out: int, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        needed = dim_in != dim_out
        self.project_in = nn.Linear(dim_in, dim_out) if needed else nn.Identity()
        self.project_out = nn.Linear(dim_out, dim_in) if needed else nn.Identity()

    def forward(self, x: torch.Tensor, **kwargs: torch.Tensor | bool) -> torch.Tensor:
        return self.project_out(self.fn(self.project_in(x), **kwargs))


class CrossTransformer(nn.Module):
    """Each branch's CLS token attends to the other branch's patch tokens (and itself)."""

    def __init__(
        self, sm_dim: int, lg_dim: int, depth: int, heads: int, dim_head: int, dropout: float
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    ProjectInOut(
                        sm_dim, lg_dim, PreNorm(lg_dim, Attention(lg_dim, heads, dim_head, dropout))
                    ),
                    ProjectInOut(
                        lg_dim, sm_dim, PreNorm(sm_dim, Attention(sm_dim, heads, dim_head, dropout))
                    ),
                ]
            )
            for _ in range(depth)
        )

    def forward(
        self, sm_tokens: torch.Tensor, lg_tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sm_cls, sm_patches = sm_tokens[:, :1], sm_tokens[:, 1:]
        lg_cls, lg_patches = lg_tokens[:, :1], lg_tokens[:, 1:]
        for sm_attend_lg, lg_attend_sm in self.layers:
            sm_cls = sm_attend_lg(sm_cls, context=lg_patches, kv_include_self=True) + sm_cls
            lg_cls = lg_attend_sm(lg_cls, context=sm_patches, kv_include_self=True) + lg_cls
        return torch.cat((sm_cls, sm_patches), dim=1), torch.cat((lg_cls, lg_patches), dim=1)


class MultiScaleEncoder(nn.Module):
    """`depth` rounds of: small-branch encoder, large-branch encoder, cross-attention."""

    def __init__(
        self,
        *,
        depth: int,
        sm_dim: int,
        lg_dim: int,
        sm_enc: dict[str, int],
        lg_enc: dict[str, int],
        cross_attn_depth: int,
        cross_attn_heads: int,
        cross_attn_dim_head: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    Transformer(sm_dim, dropout=dropout, **sm_enc),
                    Transformer(lg_dim, dropout=dropout, **lg_enc),
                    CrossTransformer(
                        sm_dim,
                        lg_dim,
                        cross_attn_depth,
                        cross_attn_heads,
                        cross_attn_dim_head,
                        dropout,
                    ),
                ]
            )
            for _ in range(depth)
        )

    def forward(
        self, sm_tokens: torch.Tensor, lg_tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for sm_enc, lg_enc, cross in self.layers:
            sm_tokens, lg_tokens = cross(sm_enc(sm_tokens), lg_enc(lg_tokens))
        return sm_tokens, lg_tokens


class ImageEmbedder(nn.Module):
    """A B0 feature map cut into patches -> Linear -> CLS + position embedding.

    The position table is sized from `image_size // patch_size` as published (1025 rows for the
    small branch, 17 for the large), although only the first tokens-plus-one rows are used.
    """

    def __init__(
        self,
        *,
        dim: int,
        image_size: int,
        patch_size: int,
        channels: int,
        blocks: int | None,
        dropout: float,
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not divisible by patch_size {patch_size}")
        self.blocks = blocks
        self.efficient_net = build_b0()
        self.to_patch_embedding = nn.Sequential(
            PatchFlatten(patch_size), nn.Linear(channels * patch_size**2, dim)
        )
        num_patches = (image_size // patch_size) ** 2
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.to_patch_embedding(b0_features(self.efficient_net, x, self.blocks))
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat((cls, tokens), dim=1)
        return self.dropout(tokens + self.pos_embedding[:, : tokens.shape[1]])


class CrossEfficientViT(nn.Module):
    """Small-patch branch (B0 head map) and large-patch branch (B0 stage-2 map), cross-attended.

    The logit is the sum of the two branches' CLS heads.

    Args:
        image_size: input side the model was trained at.
        sm_dim, lg_dim: token widths of the small- and large-patch branches.
        sm_patch_size, lg_patch_size: patch sides on the 7x7 and 56x56 feature maps.
        sm_enc_depth, sm_enc_heads, sm_enc_dim_head, sm_enc_mlp_dim: small-branch encoder.
        lg_enc_depth, lg_enc_heads, lg_enc_dim_head, lg_enc_mlp_dim: large-branch encoder.
        depth: multi-scale encoder rounds.
        cross_attn_depth, cross_attn_heads, cross_attn_dim_head: cross-attention per round.
        dropout: attention/MLP dropout.
        emb_dropout: dropout on the embedded tokens.
    """

    def __init__(
        self,
        image_size: int = 224,
        sm_dim: int = 192,
        sm_patch_size: int = 7,
        sm_enc_depth: int = 2,
        sm_enc_heads: int = 8,
        sm_enc_dim_head: int = 64,
        sm_enc_mlp_dim: int = 2048,
        lg_dim: int = 384,
        lg_patch_size: int = 56,
        lg_enc_depth: int = 3,
        lg_enc_heads: int = 8,
        lg_enc_dim_head: int = 64,
        lg_enc_mlp_dim: int = 2048,
        depth: int = 4,
        cross_attn_depth: int = 2,
        cross_attn_heads: int = 8,
        cross_attn_dim_head: int = 64,
        dropout: float = 0.15,
        emb_dropout: float = 0.15,
    ) -> None:
        super().__init__()
        self.sm_image_embedder = ImageEmbedder(
            dim=sm_dim,
            image_size=image_size,
            patch_size=sm_patch_size,
            channels=SM_CHANNELS,
            blocks=SM_BLOCKS,
            dropout=emb_dropout,
        )
        self.lg_image_embedder = ImageEmbedder(
            dim=lg_dim,
            image_size=image_size,
            patch_size=lg_patch_size,
            channels=LG_CHANNELS,
            blocks=LG_BLOCKS,
            dropout=emb_dropout,
        )
        self.multi_scale_encoder = MultiScaleEncoder(
            depth=depth,
            sm_dim=sm_dim,
            lg_dim=lg_dim,
            sm_enc={
                "depth": sm_enc_depth,
                "heads": sm_enc_heads,
                "dim_head": sm_enc_dim_head,
                "mlp_dim": sm_enc_mlp_dim,
            },
            lg_enc={
                "depth": lg_enc_depth,
                "heads": lg_enc_heads,
                "dim_head": lg_enc_dim_head,
                "mlp_dim": lg_enc_mlp_dim,
            },
            cross_attn_depth=cross_attn_depth,
            cross_attn_heads=cross_attn_heads,
            cross_attn_dim_head=cross_attn_dim_head,
            dropout=dropout,
        )
        self.sm_mlp_head = nn.Sequential(nn.LayerNorm(sm_dim), nn.Linear(sm_dim, 1))
        self.lg_mlp_head = nn.Sequential(nn.LayerNorm(lg_dim), nn.Linear(lg_dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sm_tokens, lg_tokens = self.multi_scale_encoder(
            self.sm_image_embedder(x), self.lg_image_embedder(x)
        )
        logits = self.sm_mlp_head(sm_tokens[:, 0]) + self.lg_mlp_head(lg_tokens[:, 0])
        return logits.squeeze(-1)
