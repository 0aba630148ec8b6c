"""Classifier architectures by registry name; every model maps (N, 3, H, W) to (N,) logits (one with
`pair_inputs` also reads each crop's `models.ssim_pairs.PairInputs`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from models.errors import ConfigError
from models.zoo.cross_efficient_vit import CrossEfficientViT
from models.zoo.efficient_vit import EfficientViT
from models.zoo.efficientnet import DeepFakeClassifier
from models.zoo.embedding_svm import EmbeddingSVM
from models.zoo.hybrid_vit import HybridViT
from models.zoo.hybrid_vit_distilled import HybridViTDistilled
from models.zoo.meso_ssim import MesoInceptionSSIM
from models.zoo.mesonet import Meso4, MesoInception4

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "efficientnet": DeepFakeClassifier,
    "efficient_vit": EfficientViT,
    "cross_efficient_vit": CrossEfficientViT,
    "hybrid_vit": HybridViT,
    "hybrid_vit_distilled": HybridViTDistilled,
    "meso4": Meso4,
    "meso_inception4": MesoInception4,
    "meso_inception4_ssim": MesoInceptionSSIM,
    "embedding_svm": EmbeddingSVM,
}


def build_classifier(architecture: str, **params: object) -> nn.Module:
    """A freshly initialised (random-weight) classifier, ready for a checkpoint or training.

    Raises:
        ConfigError: unknown architecture, or parameters it does not take.
    """
    try:
        factory = ARCHITECTURES[architecture]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ConfigError(f"unknown architecture {architecture!r}; known: {known}") from None
    try:
        inspect.signature(factory).bind(**params)
    except TypeError as exc:
        raise ConfigError(
            f"architecture {architecture!r} rejects parameters {params}: {exc}"
        ) from None
    return factory(**params)
