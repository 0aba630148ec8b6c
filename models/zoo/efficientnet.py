"""selim's DFDC-winning `DeepFakeClassifier`: a timm EfficientNet encoder and one linear logit.

Attribute names match the published checkpoints: `encoder` is the whole timm model (its unused
1000-class `classifier` stays in the state dict), `fc` the logit layer.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from models.errors import ConfigError

# timm's current name for selim's `tf_efficientnet_b7_ns` (Noisy Student, JFT, ImageNet-1k).
SELIM_ENCODER = "tf_efficientnet_b7.ns_jft_in1k"


class DeepFakeClassifier(nn.Module):
    """EfficientNet features -> global average pool -> dropout -> Linear(width, 1).

    Args:
        encoder: any timm EfficientNet name (b0-b7, lite0-lite4, with or without a pretrained tag);
            built with `pretrained=False`: weights come from our checkpoints only.
        dropout: before `fc` (selim used 0).
        drop_path_rate: stochastic depth inside the encoder, for training (selim used 0.2).
    """

    def __init__(
        self, encoder: str = SELIM_ENCODER, dropout: float = 0.0, drop_path_rate: float = 0.0
    ) -> None:
        super().__init__()
        if not timm.is_model(encoder):
            raise ConfigError(f"unknown timm encoder {encoder!r}")
        self.encoder = timm.create_model(encoder, pretrained=False, drop_path_rate=drop_path_rate)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.encoder.num_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.encoder.forward_features(x))

    def classify(self, feature_map: torch.Tensor) -> torch.Tensor:
        """Logits from the encoder's final map (training on cached trunk features ends here)."""
        features = self.avg_pool(feature_map).flatten(1)
        return self.fc(self.dropout(features)).squeeze(-1)
