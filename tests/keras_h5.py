"""Write a model's weights the way Keras 2 `save_weights` lays them out, for loader tests.

Test-only and written from the format's description (not from the reader), so that a reader that
misplaces an axis or a layer fails the round trip: root attribute `layer_names` (weightless layers
included, as Keras lists every layer), one group per layer with `weight_names`, kernels HWIO,
dense kernels (in, out), and a last layer whose sigmoid means P(real) as in the MesoNet files.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from torch import nn


def _keras_arrays(module: nn.Module, negate: bool) -> tuple[str, dict[str, np.ndarray]]:
    state = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    sign = -1.0 if negate else 1.0
    if isinstance(module, nn.Conv2d):
        return "conv2d", {"kernel": state["weight"].transpose(2, 3, 1, 0), "bias": state["bias"]}
    if isinstance(module, nn.Linear):
        return "dense", {"kernel": sign * state["weight"].T, "bias": sign * state["bias"]}
    return "batch_normalization", {"gamma": state["weight"], "beta": state["bias"],
                                   "moving_mean": state["running_mean"],
                                   "moving_variance": state["running_var"]}


def write_keras_weights(model: nn.Module, path: Path, first_number: int = 5) -> None:
    """Save `model.keras_layers()` in Keras order; names numbered from `first_number` per kind
    (Keras counts layers per process, so real files start anywhere)."""
    counters: dict[str, int] = {}
    layers = model.keras_layers()
    with h5py.File(path, "w") as file:
        names = [b"input_1"]
        for position, module in enumerate(layers):
            kind, arrays = _keras_arrays(module, negate=position == len(layers) - 1)
            counters[kind] = counters.get(kind, first_number - 1) + 1
            name = f"{kind}_{counters[kind]}"
            group = file.create_group(name)
            weight_names = [f"{name}/{key}:0".encode() for key in arrays]
            group.attrs["weight_names"] = weight_names
            for key, array in arrays.items():
                group.create_dataset(f"{name}/{key}:0", data=array.astype(np.float32))
            names.append(name.encode())
            if kind == "batch_normalization":
                names.append(f"max_pooling2d_{counters[kind]}".encode())
                file.create_group(f"max_pooling2d_{counters[kind]}").attrs["weight_names"] = []
        file.create_group("input_1").attrs["weight_names"] = []
        file.attrs["layer_names"] = names
        file.attrs["keras_version"] = b"2.1.5"
        file.attrs["backend"] = b"tensorflow"
