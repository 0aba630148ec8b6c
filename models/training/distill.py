"""The distillation loss: the class head learns the label, the distillation head the teacher.

Mean of two binary cross-entropies (DeiT's soft distillation, with the teacher's calibrated
P(fake) as the soft target and no extra temperature: the teacher's scores are calibrated already).
"""

from __future__ import annotations

import torch
from torch.nn import functional


def distillation_loss(class_logits: torch.Tensor, distillation_logits: torch.Tensor,
                      labels: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean of BCE(class head, label) and BCE(distillation head, teacher's P(fake))."""
    return 0.5 * (
        functional.binary_cross_entropy_with_logits(class_logits, labels)
        + functional.binary_cross_entropy_with_logits(distillation_logits, teacher)
    )
