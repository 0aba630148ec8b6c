"""Semi-hard triplet loss with in-batch mining (Schroff et al., FaceNet, CVPR 2015).

Every (anchor, positive) pair of a batch (same label, different views) is matched with the
negative (other label) that is the closest one still farther from the anchor than the positive:
hard enough to teach something, not so hard that training collapses all embeddings to a point.
When no negative lies beyond the positive, the farthest negative is used (TensorFlow Addons'
`triplet_semihard_loss` does the same), the least damaging of the too-hard ones.
"""

from __future__ import annotations

import torch

DEFAULT_MARGIN = 1.0  # TensorFlow Addons' default, as in the DACON winner's Keras code
_MIN_SQUARED = 1e-12  # keeps sqrt differentiable where two embeddings coincide


def pairwise_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (N, N) between rows."""
    squared = embeddings.square().sum(1)
    gram = embeddings @ embeddings.T
    return (squared[:, None] + squared[None, :] - 2.0 * gram).clamp_min(_MIN_SQUARED).sqrt()


def semi_hard_negatives(distances: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(N, N) distance from anchor a to the negative mined for the pair (a, p).

    Entries for pairs that are not (anchor, positive) are meaningless; anchors without any
    negative get +inf.
    """
    negative = labels[:, None] != labels[None, :]
    anchor_positive = distances[:, :, None]
    anchor_negative = distances[:, None, :]
    beyond = negative[:, None, :] & (anchor_negative > anchor_positive)
    semi_hard = torch.where(beyond, anchor_negative, torch.inf).amin(-1)
    farthest = torch.where(negative, distances, -torch.inf).amax(-1, keepdim=True)
    farthest = torch.where(negative.any(1, keepdim=True), farthest, torch.inf)
    return torch.where(torch.isfinite(semi_hard), semi_hard, farthest.expand_as(semi_hard))


def semi_hard_triplet_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float = DEFAULT_MARGIN
) -> torch.Tensor:
    """Mean of max(d(a, p) - d(a, n) + margin, 0) over the batch's (anchor, positive) pairs that
    have a negative; zero (with a gradient path) when there are none."""
    distances = pairwise_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    pairs = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    negatives = semi_hard_negatives(distances, labels)
    pairs &= torch.isfinite(negatives)
    if not pairs.any():
        return embeddings.sum() * 0.0
    return torch.relu(distances - negatives + margin)[pairs].mean()
