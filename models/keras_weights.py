"""Read Keras 2 `save_weights` HDF5 files into a PyTorch state dict, without TensorFlow.

Such a file holds one group per layer at its root, listed in the root's `layer_names` attribute
in the model's layer order, each with a `weight_names` attribute naming its arrays. Layer names
carry a process-wide counter (`conv2d_5` in one file is `conv2d_1` in another), so layers are
matched by position against the target model's `keras_layers()`, and each match is checked by
kind and shape. Conversions: conv kernels HWIO -> OIHW, dense kernels (in, out) -> (out, in),
batch norm gamma/beta/moving mean/moving variance -> weight/bias/running mean/running variance.

The MesoNet authors' files end in a sigmoid that means P(real); fakewatch models return a P(fake)
logit, so `negate_output` flips the last dense layer (sigmoid(-z) = 1 - sigmoid(z)).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from models.errors import WeightsError

_CONV = ("kernel", "bias")
_NORM = ("gamma", "beta", "moving_mean", "moving_variance")


def read_keras_weights(path: Path, model: nn.Module, negate_output: bool) -> dict[str, torch.Tensor]:
    """`model`'s full state dict, filled from the Keras weights file at `path`.

    Args:
        model: an architecture with `keras_layers()`, its weighted layers in Keras file order.

    Raises:
        WeightsError: the architecture has no Keras layout, the file is not a Keras weights file,
            or its layers do not match the model's in number, kind or shape.
    """
    if not callable(getattr(model, "keras_layers", None)):
        raise WeightsError(f"{type(model).__name__} has no Keras layer layout to load {path} into")
    layers = _weighted_layers(path)
    targets = model.keras_layers()
    if len(layers) != len(targets):
        raise WeightsError(
            f"{path} holds {len(layers)} weighted Keras layers "
            f"({', '.join(name for name, _ in layers)}); the model expects {len(targets)}"
        )
    names = {module: name for name, module in model.named_modules()}
    state: dict[str, torch.Tensor] = {}
    for (layer_name, arrays), module in zip(layers, targets, strict=True):
        converted = _convert(layer_name, arrays, module, path)
        state |= {f"{names[module]}.{key}": value for key, value in converted.items()}
    if negate_output:
        last = names[targets[-1]]
        state[f"{last}.weight"] = -state[f"{last}.weight"]
        state[f"{last}.bias"] = -state[f"{last}.bias"]
    return state


def _weighted_layers(path: Path) -> list[tuple[str, dict[str, np.ndarray]]]:
    """(layer name, {weight kind: array}) for every layer with weights, in the file's layer order."""
    try:
        with h5py.File(path, "r") as root:
            if "layer_names" not in root.attrs:
                raise WeightsError(f"{path} is HDF5 but not a Keras weights file (no layer_names)")
            layers = []
            for raw_name in root.attrs["layer_names"]:
                name = _text(raw_name)
                group = root[name]
                weight_names = [_text(w) for w in group.attrs.get("weight_names", [])]
                if weight_names:
                    layers.append((name, {_kind(w): np.asarray(group[w]) for w in weight_names}))
            return layers
    except OSError as exc:
        raise WeightsError(f"cannot read {path} as HDF5: {exc}") from exc


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _kind(weight_name: str) -> str:
    """'conv2d_5/kernel:0' -> 'kernel'."""
    return weight_name.rsplit("/", 1)[-1].split(":", 1)[0]


def _convert(layer: str, arrays: dict[str, np.ndarray], module: nn.Module,
             path: Path) -> dict[str, torch.Tensor]:
    if isinstance(module, nn.Conv2d):
        kernel, bias = _arrays(layer, arrays, _CONV, path)
        tensors = {"weight": np.transpose(kernel, (3, 2, 0, 1)), "bias": bias}
    elif isinstance(module, nn.Linear):
        kernel, bias = _arrays(layer, arrays, _CONV, path)
        tensors = {"weight": kernel.T, "bias": bias}
    elif isinstance(module, nn.BatchNorm2d):
        gamma, beta, mean, variance = _arrays(layer, arrays, _NORM, path)
        tensors = {"weight": gamma, "bias": beta, "running_mean": mean, "running_var": variance}
    else:
        raise WeightsError(f"no Keras conversion for {type(module).__name__} (layer {layer})")
    expected = module.state_dict()
    out = {}
    for key, array in tensors.items():
        if tuple(array.shape) != tuple(expected[key].shape):
            raise WeightsError(
                f"{path}: Keras layer {layer} gives {key} of shape {tuple(array.shape)}, the model's "
                f"{type(module).__name__} needs {tuple(expected[key].shape)}"
            )
        out[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if isinstance(module, nn.BatchNorm2d):
        out["num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    return out


def _arrays(layer: str, arrays: dict[str, np.ndarray], kinds: tuple[str, ...],
            path: Path) -> list[np.ndarray]:
    if set(arrays) != set(kinds):
        raise WeightsError(
            f"{path}: Keras layer {layer} holds {sorted(arrays)}, expected {list(kinds)} here"
        )
    return [arrays[kind] for kind in kinds]
