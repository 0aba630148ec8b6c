"""Device and precision choice on this (GPU-less) machine."""

import pytest
import torch

from models.device import (
    autocast_dtype,
    cpu_supports_bf16,
    inference_context,
    inference_dtype,
    resolve_device,
)
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


def test_cpu_trains_in_bf16_only_with_native_support() -> None:
    dtype = autocast_dtype(torch.device("cpu"))
    assert dtype == (torch.bfloat16 if cpu_supports_bf16() else None)


def test_cpu_scores_in_fp32_unless_bf16_is_asked_for() -> None:
    cpu = torch.device("cpu")
    assert inference_dtype(cpu) is None and inference_dtype(cpu, "fp32") is None
    if cpu_supports_bf16():
        assert inference_dtype(cpu, "bf16") == torch.bfloat16
    else:
        with pytest.raises(ConfigError, match="no native bf16"):
            inference_dtype(cpu, "bf16")
    with pytest.raises(ConfigError, match="unknown precision"):
        inference_dtype(cpu, "int8")


def test_ensemble_scores_in_the_precision_asked_for(tmp_path) -> None:
    from models.ensemble import Ensemble
    from models.registry import Registry
    from tests.tiny_models import write_test_registry

    registry = Registry.load(write_test_registry(tmp_path))
    cpu = torch.device("cpu")
    assert Ensemble.load(registry, None, cpu).dtype is None
    if cpu_supports_bf16():
        assert Ensemble.load(registry, None, cpu, "bf16").dtype == torch.bfloat16


def test_workers_take_the_precision_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from fakewatch.settings import Settings

    monkeypatch.setenv("FAKEWATCH_PRECISION", "bf16")
    assert Settings().detector_config().precision == "bf16"
    monkeypatch.setenv("FAKEWATCH_PRECISION", "int8")
    with pytest.raises(ValueError, match="precision"):
        Settings()


def test_inference_context_disables_grad_and_applies_autocast() -> None:
    layer = torch.nn.Linear(4, 2)
    with inference_context(torch.device("cpu"), torch.bfloat16):
        out = layer(torch.ones(1, 4))
    assert out.dtype == torch.bfloat16 and not out.requires_grad
    with inference_context(torch.device("cpu"), None):
        out = layer(torch.ones(1, 4))
    assert out.dtype == torch.float32 and torch.is_inference(out)


def test_cuda_auto_scores_in_fp16_even_where_bf16_is_supported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bf16 moved P(fake) by up to 0.05 (issue 12, defect 8): "auto" must not pick it on a GPU
    that has it (stood in for here: no GPU on the test machine)."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *_, **__: True)
    cuda = torch.device("cuda")
    assert inference_dtype(cuda) == torch.float16
    assert inference_dtype(cuda, "bf16") == torch.bfloat16  # only when asked for
    assert inference_dtype(cuda, "fp32") is None
