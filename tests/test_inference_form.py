"""Folded batch norms and copy-free "same" padding leave every classifier output as it was."""

from __future__ import annotations

import pytest
import torch
from timm.layers.conv2d_same import Conv2dSame
from torch import nn

from models.zoo import build_classifier
from models.zoo.inference_form import SamePaddedConv, to_inference_form


def _with_trained_statistics(model: nn.Module, seed: int) -> nn.Module:
    """Random running statistics and affine parameters, as training would leave them: folding
    identity batch norms would prove nothing."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)
    return model.eval()


@pytest.mark.parametrize(
    ("architecture", "params"),
    [
        ("efficientnet", {"encoder": "tf_efficientnet_lite0"}),  # ReLU6, no squeeze-excite
        ("efficientnet", {"encoder": "tf_efficientnet_b0"}),  # SiLU, squeeze-excite, B7's family
    ],
)
@pytest.mark.parametrize("size", [64, 67])  # even inputs take the widened kernels, odd the copy
def test_outputs_are_unchanged(architecture: str, params: dict, size: int) -> None:
    torch.manual_seed(0)
    model = _with_trained_statistics(build_classifier(architecture, **params), seed=1)
    images = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        expected = model(images)
        folded = to_inference_form(model)
        got = folded(images)
    assert not any(type(m) in (nn.BatchNorm2d, Conv2dSame) for m in folded.modules())
    assert any(isinstance(m, SamePaddedConv) for m in folded.modules())
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(expected, torch.zeros_like(expected))


def test_refuses_a_model_in_training() -> None:
    with pytest.raises(ValueError, match="eval mode"):
        to_inference_form(build_classifier("efficientnet", encoder="tf_efficientnet_lite0"))
