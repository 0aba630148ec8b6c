"""Checkpoint files: load one strictly and safely into its architecture, save our own, hash them.

Each public format is read exactly as its authors wrote it (selim's `{'state_dict'}` with
`module.` prefixes, Coccomini's plain state dicts, the MesoNet authors' Keras HDF5, our
safetensors), with `weights_only` unpickling, and every key and shape must match the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from models.errors import MissingWeightsError, WeightsError
from models.keras_weights import read_keras_weights
from models.zoo import build_classifier

if TYPE_CHECKING:  # the registry imports this module to hash files
    from models.registry import ModelEntry, Registry

logger = logging.getLogger(__name__)

DATAPARALLEL_PREFIX = "module."  # selim saved DataParallel-wrapped models
KEYS_SHOWN = 5  # how many offending keys an error message lists
HASH_CHUNK_BYTES = 1 << 20
HEADER_LENGTH_BYTES = 8  # safetensors: little-endian u64 header size, then the JSON header
HEADER_ALIGNMENT = 8

# selim's checkpoints may store `bce_best` as a numpy float; these globals rebuild such scalars
# (the second spelling is how numpy 1.x pickled them) and nothing else.
_NUMPY_SCALAR_GLOBALS = [
    np._core.multiarray.scalar,
    (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),
    np.dtype,
    np.dtypes.Float64DType,
    np.dtypes.Float32DType,
]


def load_classifier(
    entry: ModelEntry, registry: Registry, device: str | torch.device = "cpu", verify: bool = True
) -> nn.Module:
    """Build `entry`'s architecture and load its checkpoint strictly, in eval mode on `device`.

    Args:
        verify: check the file's sha256 against the registry first (when one is registered).

    Raises:
        MissingWeightsError: the file is not on disk (the message says where and from where).
        WeightsError: sha256 mismatch, unreadable file, wrong format, or keys/shapes that do not
            match the architecture.
    """
    path = registry.path_of(entry)
    if not path.is_file():
        raise MissingWeightsError(_missing_message(entry, path))
    if verify and entry.sha256 is None:
        logger.warning("model '%s': no sha256 registered, %s loaded unverified", entry.id, path)
    elif verify:
        actual = sha256_file(path)
        if actual != entry.sha256:
            raise WeightsError(
                f"weights for model '{entry.id}' at {path} have sha256 {actual}, but the "
                f"registry expects {entry.sha256}: the file is corrupt, truncated or a "
                "different checkpoint"
            )
    model = build_classifier(entry.architecture, **entry.params)
    if entry.format == "mesonet":
        state_dict = read_keras_weights(path, model, negate_output=True)
    else:
        state_dict = _read_state_dict(path, entry.format)
    _load_strict(model, state_dict, entry, path)
    return model.to(device).eval()


def save_safetensors(model: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> str:
    """Save `model`'s state dict in the registry's "safetensors" format; returns the file's sha256."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    blob = save(tensors, metadata=dict(metadata) if metadata else None)
    Path(path).write_bytes(_canonical_header(blob))
    return sha256_file(path)


def _canonical_header(blob: bytes) -> bytes:
    """Rewrite a safetensors header with sorted keys.

    safetensors writes `__metadata__` from a hash map, in an order that changes from call to
    call, so the same weights would get a different sha256 each time they are saved. Data offsets
    are relative to the end of the header, so only the header changes; it stays space-padded to
    8 bytes as the format recommends.
    """
    length = int.from_bytes(blob[:HEADER_LENGTH_BYTES], "little")
    header = json.loads(blob[HEADER_LENGTH_BYTES : HEADER_LENGTH_BYTES + length])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % HEADER_ALIGNMENT)
    data = blob[HEADER_LENGTH_BYTES + length :]
    return len(text).to_bytes(HEADER_LENGTH_BYTES, "little") + text + data


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _read_state_dict(path: Path, fmt: Literal["selim", "coccomini", "safetensors"]) -> dict[str, torch.Tensor]:
    if fmt == "safetensors":
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise WeightsError(f"cannot read {path} as safetensors: {exc}") from exc
    checkpoint = _torch_load(path, fmt)
    if fmt == "selim":
        if not isinstance(checkpoint, Mapping) or "state_dict" not in checkpoint:
            raise WeightsError(
                f"{path} is not a selim checkpoint: expected a dict with 'state_dict' "
                f"(and 'epoch', 'bce_best'), found {_describe(checkpoint)}"
            )
        state_dict = checkpoint["state_dict"]
        state_dict = {_strip_prefix(k): v for k, v in _tensor_mapping(state_dict, path).items()}
    else:
        if isinstance(checkpoint, Mapping) and "state_dict" in checkpoint:
            raise WeightsError(
                f"{path} wraps its weights in a 'state_dict' entry; the coccomini format is a "
                "plain state dict"
            )
        state_dict = _tensor_mapping(checkpoint, path)
    return state_dict


def _torch_load(path: Path, fmt: str) -> object:
    try:
        with torch.serialization.safe_globals(_NUMPY_SCALAR_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    # The unpickler reports damaged bytes with whatever it trips on (UnpicklingError,
    # RuntimeError, EOFError, KeyError, IndexError, ...): all mean "not a readable checkpoint".
    except Exception as exc:
        raise WeightsError(
            f"cannot read {path} as a PyTorch checkpoint ({fmt} format, loaded with "
            f"weights_only=True): {type(exc).__name__}: {exc}"
        ) from exc


def _tensor_mapping(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise WeightsError(f"{path} does not hold a state dict of named tensors: {_describe(obj)}")
    return dict(obj)


def _strip_prefix(key: str) -> str:
    return key.removeprefix(DATAPARALLEL_PREFIX)


def _describe(obj: object) -> str:
    if isinstance(obj, Mapping):
        keys = list(obj)
        return f"a {type(obj).__name__} with keys {keys[:KEYS_SHOWN]}" + (
            f" and {len(keys) - KEYS_SHOWN} more" if len(keys) > KEYS_SHOWN else ""
        )
    return f"a {type(obj).__name__}"


def _load_strict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], entry: ModelEntry, path: Path
) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong_shape = [
        f"{k} {tuple(v.shape)} (model has {tuple(expected[k].shape)})"
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]
    problems = [
        _key_summary("missing keys", missing),
        _key_summary("unexpected keys", unexpected),
        _key_summary("shape mismatches", wrong_shape),
    ]
    problems = [p for p in problems if p]
    if problems:
        raise WeightsError(
            f"checkpoint {path} does not match model '{entry.id}' (architecture "
            f"{entry.architecture}, params {dict(entry.params)}, format {entry.format}): "
            + "; ".join(problems)
        )
    model.load_state_dict(state_dict, strict=True)


def _key_summary(label: str, keys: list[str]) -> str:
    if not keys:
        return ""
    shown = ", ".join(keys[:KEYS_SHOWN])
    more = f", ... ({len(keys) - KEYS_SHOWN} more)" if len(keys) > KEYS_SHOWN else ""
    return f"{len(keys)} {label}: {shown}{more}"


def _missing_message(entry: ModelEntry, path: Path) -> str:
    if entry.sources:
        where = "download it from " + " or ".join(entry.sources)
    else:
        where = "no download source is registered: it is produced by fakewatch's own training"
    return (
        f"weights for model '{entry.id}' are missing: expected file '{entry.file}' at {path}; "
        f"{where} (license: {entry.license or 'unknown'}) and place it there"
    )
