"""fakewatch's hybrid: a timm CNN's feature map as patch tokens for a small transformer encoder.

The CNN localises texture artefacts; attention over the map's cells relates them across the face
(the idea behind Coccomini's Efficient ViT, without its batch-position bug and with a
backbone whose ImageNet weights can be had offline: timm `tf_efficientnet_lite0`).
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from models.errors import ConfigError

DEFAULT_BACKBONE = "tf_efficientnet_lite0"
DEFAULT_IMAGE_SIZE = 224  # tf_efficientnet_lite0's native input; gives a 1280 x 7 x 7 map.


class HybridViT(nn.Module):
    """Backbone map -> Linear to `dim` -> CLS + learned positions -> pre-norm encoder -> logit.

    Args:
        backbone: timm model name, built with `pretrained=False` (training loads ImageNet
            weights into `self.backbone`).
        image_size: input side; fixes the number of tokens and so the position table.
        dim: token width.
        depth: encoder layers.
        heads: attention heads (must divide `dim`).
        mlp_dim: hidden width of each encoder MLP.
        dropout: dropout on tokens, attention and MLPs.
        out_block: None tokenises the final conv-head map; an index `i` tokenises the output of
            the backbone's `blocks[i]` stage instead (finer grid, narrower features).
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
        super().__init__()
        if not timm.is_model(backbone):
            raise ConfigError(f"unknown timm backbone {backbone!r}")
        if dim % heads:
            raise ConfigError(f"dim {dim} is not divisible by heads {heads}")
        self.backbone = timm.create_model(backbone, pretrained=False)
        if out_block is not None and not 0 <= out_block < len(self.backbone.blocks):
            raise ConfigError(
                f"out_block {out_block} outside {backbone}'s {len(self.backbone.blocks)} stages"
            )
        self.image_size = image_size
        self.out_block = out_block
        channels, tokens = self._feature_shape(image_size)
        self.patch_embed = nn.Linear(channels, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens + 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model=dim,
            nhead=heads,
            dim_feedforward=mlp_dim,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone map that becomes the tokens: (N, C, h, w)."""
        if self.out_block is None:
            return self.backbone.forward_features(x)
        x = self.backbone.bn1(self.backbone.conv_stem(x))
        return self.backbone.blocks[: self.out_block + 1](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))

    def classify(self, feature_map: torch.Tensor) -> torch.Tensor:
        """Logits from the backbone map that becomes the tokens."""
        return self.head(self.encode(feature_map, [self.cls_token])[:, 0]).squeeze(-1)

    def encode(self, feature_map: torch.Tensor, prefix: list[nn.Parameter]) -> torch.Tensor:
        """The encoder's normed output for the `prefix` tokens followed by the map's cells."""
        tokens = feature_map.flatten(2).transpose(1, 2)
        if tokens.shape[1] + len(prefix) != self.pos_embed.shape[1]:
            raise ValueError(
                f"a {tuple(feature_map.shape[-2:])} map gives {tokens.shape[1]} tokens; this model "
                f"was built for {self.image_size}x{self.image_size} inputs "
                f"({self.pos_embed.shape[1] - len(prefix)} tokens)"
            )
        tokens = self.patch_embed(tokens)
        firsts = [token.expand(tokens.shape[0], -1, -1) for token in prefix]
        tokens = self.pos_drop(torch.cat((*firsts, tokens), dim=1) + self.pos_embed)
        return self.norm(self.encoder(tokens))

    def _feature_shape(self, image_size: int) -> tuple[int, int]:
        """(channels, tokens) of the map at `image_size`, by one dry run in eval mode so batch
        norm statistics are untouched."""
        was_training = self.backbone.training
        self.backbone.eval()
        with torch.no_grad():
            fmap = self.features(torch.zeros(1, 3, image_size, image_size))
        self.backbone.train(was_training)
        return fmap.shape[1], fmap.shape[2] * fmap.shape[3]
