"""Where the models run and in which precision.

Training autocasts to half precision on CUDA and to bf16 on CPUs with native bf16 instructions:
mixed precision trains as well, twice as fast. Scoring is stricter, because a score is a product
output: on CUDA "auto" autocasts to fp16, never bf16, even where the GPU has bf16; on CPU it
stays fp32 unless bf16 is asked for. bf16 halves the classifiers' CPU time, but on the default
ensemble it moved calibrated P(fake) by 0.016 on average and up to 0.05 per validation video
(crops: 0.014 mean, 0.15 max), over the 0.01 the scores may move, and the shift is a bias, not
noise (log loss 0.447 -> 0.458): bf16 keeps 8 bits of mantissa, fp16 11, and the temperatures
were fitted in fp32.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from models.config import PRECISIONS
from models.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """Turn "auto", "cpu", "cuda" or "cuda:N" into a device, refusing CUDA when there is none."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"unknown device {name!r}: use auto, cpu or cuda[:N]") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} was asked for but no CUDA GPU is available")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {name!r}: use auto, cpu or cuda[:N]")
    return device


def cpu_supports_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced precision to train in on this device, or None to stay in fp32."""
    if device.type == "cuda":
        return _cuda_half()
    return torch.bfloat16 if cpu_supports_bf16() else None


def inference_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The reduced precision to score in, or None for fp32.

    "auto": fp16 on CUDA, fp32 on CPU. "bf16": bf16 autocast (on CPU only where the CPU
    has native bf16, else ConfigError). "fp32": no autocast.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type == "cpu" and not cpu_supports_bf16():
            raise ConfigError("bf16 was asked for but this CPU has no native bf16 instructions")
        return torch.bfloat16
    return torch.float16 if device.type == "cuda" else None


def _cuda_half() -> torch.dtype:
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def inference_context(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """`inference_mode` plus autocast to `dtype` when one is given."""
    with torch.inference_mode():
        if dtype is None:
            yield
        else:
            with torch.autocast(device_type=device.type, dtype=dtype):
                yield


def cap_cpu_threads(reserved: int) -> int:
    """Lower torch's intra-op threads to the cores left after `reserved` busy threads (at least 1).

    The detector decodes in its own thread while torch computes; more torch threads than the
    remaining cores made MTCNN and the classifiers 2x slower on a 2-core machine (bench/results),
    because their many small ops wait on preempted threads. A lower explicit choice is kept.
    Returns the thread count now in effect.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    budget = max(1, (cores or 1) - reserved)
    if torch.get_num_threads() > budget:
        torch.set_num_threads(budget)
    return torch.get_num_threads()
