"""Seed 002 (the DACON deepfake winner's design): a metric-learned face embedding scored by an SVM.

A CNN is trained with a semi-hard triplet loss into an L2-normalised embedding, then a kernel SVM
with Platt-calibrated probabilities separates real from fake embeddings. Here the SVM is part of
the network: its support vectors, dual coefficients, intercept, kernel width and Platt sigmoid
are buffers, so the whole member is one safetensors file (no pickled estimator) and inference is
torch only. Its output is the Platt logit of P(fake), like every other member's logit.
"""

from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from torch import nn

from models.errors import ConfigError

DEFAULT_BACKBONE = "tf_efficientnet_lite0"
KERNELS = ("linear", "rbf")


class KernelSVM(nn.Module):
    """A fitted binary SVM with Platt scaling, as fixed tensors.

    decision(x) = sum_i dual_coef_i * K(support_vector_i, x) + intercept (positive: fake), with
    K(u, v) = u.v (linear) or exp(-gamma * |u - v|^2) (rbf). The logit of P(fake) is
    -(platt_a * decision + platt_b), libsvm's sigmoid written for the positive class.

    Args:
        dim: embedding width.
        support_vectors: rows of the support-vector table (the fitted count). A fresh module holds
            random unit-length support vectors and coefficients, like any freshly built layer,
            until a fitted state is loaded.
        kernel: "linear" or "rbf".
    """

    def __init__(self, dim: int, support_vectors: int, kernel: str = "rbf") -> None:
        super().__init__()
        if kernel not in KERNELS:
            raise ConfigError(f"unknown SVM kernel {kernel!r}; known: {', '.join(KERNELS)}")
        if support_vectors < 1:
            raise ConfigError(f"an SVM needs at least one support vector, not {support_vectors}")
        self.kernel = kernel
        self.register_buffer("support_vectors", F.normalize(torch.randn(support_vectors, dim), dim=1))
        self.register_buffer("dual_coef", torch.randn(support_vectors))
        self.register_buffer("intercept", torch.zeros(1))
        self.register_buffer("gamma", torch.ones(1))
        self.register_buffer("platt_a", torch.full((1,), -1.0))
        self.register_buffer("platt_b", torch.zeros(1))

    def decision(self, x: torch.Tensor) -> torch.Tensor:
        """The SVM's signed distance (N,), as scikit-learn's `decision_function`."""
        if self.kernel == "linear":
            gram = x @ self.support_vectors.T
        else:
            gram = torch.exp(-self.gamma * torch.cdist(x, self.support_vectors).square())
        return gram @ self.dual_coef + self.intercept

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logit of the Platt-calibrated P(fake)."""
        return -(self.platt_a * self.decision(x) + self.platt_b)


class EmbeddingSVM(nn.Module):
    """Backbone map -> average pool -> dropout -> Linear to `embedding_dim` -> L2 norm -> SVM logit.

    Args:
        backbone: timm model name, built with `pretrained=False` (training loads ImageNet weights
            into `self.backbone`).
        embedding_dim: width of the embedding (the DACON winner used 512).
        dropout: before the dense layer (0.4 in the DACON winner).
        kernel: the SVM's kernel, "linear" or "rbf".
        support_vectors: the fitted SVM's support-vector count (recorded in the registry).
    """

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        embedding_dim: int = 512,
        dropout: float = 0.4,
        kernel: str = "rbf",
        support_vectors: int = 1,
    ) -> None:
        super().__init__()
        if not timm.is_model(backbone):
            raise ConfigError(f"unknown timm backbone {backbone!r}")
        self.backbone = timm.create_model(backbone, pretrained=False)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(self.backbone.num_features, embedding_dim)
        self.svm = KernelSVM(embedding_dim, support_vectors, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.backbone.forward_features(x))

    def embed(self, feature_map: torch.Tensor) -> torch.Tensor:
        """Unit-length embeddings (N, embedding_dim) of the backbone's final map."""
        features = self.avg_pool(feature_map).flatten(1)
        return F.normalize(self.dense(self.dropout(features)), dim=1)

    def classify(self, feature_map: torch.Tensor) -> torch.Tensor:
        """Logits from the backbone's final map (training on cached trunk features ends here)."""
        return self.svm(self.embed(feature_map))
