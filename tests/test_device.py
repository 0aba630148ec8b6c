"""Device and precision choice on this (GPU-less) machine."""

import pytest
import torch

from models.device import autocast_dtype, cpu_supports_bf16, inference_context, resolve_device
from models.errors import ConfigError


def test_auto_is_cpu_without_a_gpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.parametrize("name", ["tpu", "banana"])
def test_unknown_devices_are_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        resolve_device(name)


def test_cpu_autocasts_to_bf16_only_with_native_support() -> None:
    dtype = autocast_dtype(torch.device("cpu"))
    assert dtype == (torch.bfloat16 if cpu_supports_bf16() else None)


def test_inference_context_disables_grad_and_applies_autocast() -> None:
    layer = torch.nn.Linear(4, 2)
    with inference_context(torch.device("cpu"), torch.bfloat16):
        out = layer(torch.ones(1, 4))
    assert out.dtype == torch.bfloat16 and not out.requires_grad
    with inference_context(torch.device("cpu"), None):
        out = layer(torch.ones(1, 4))
    assert out.dtype == torch.float32 and torch.is_inference(out)
