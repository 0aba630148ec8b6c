"""Run every ensemble member on the crops made for it and return calibrated P(fake) per crop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.checkpoints import load_classifier
from models.crops import CropSpec
from models.device import inference_context, inference_dtype
from models.errors import ConfigError
from models.registry import ModelEntry, Registry
from models.schema import ModelInfo
from models.ssim_pairs import SSIM_SIZE, PairInputs
from models.zoo.inference_form import to_inference_form

DEFAULT_BATCH_SIZE = 64  # crops per forward; a 32-frame video with one face is one batch.
# On CUDA every new input shape costs cuDNN a plan (with bf16 and channels_last, a runtime-
# compiled kernel): 1.8 s for the default ensemble's first batch of a new size on an H100, where
# a batch it has seen takes 17 ms. A video's face count varies, so batches are padded up to one
# of these sizes, and `warmup` builds each once per member.
CUDA_BATCH_BUCKETS = (8, 16, 32, DEFAULT_BATCH_SIZE)


@dataclass(frozen=True)
class Member:
    entry: ModelEntry
    model: nn.Module

    @property
    def needs_pairs(self) -> bool:
        """The member also reads each face's SSIM map with the same person's neighbouring crop
        (`models.ssim_pairs`), so it can score a face only once the person is tracked."""
        return bool(getattr(self.model, "pair_inputs", False))

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            id=self.entry.id,
            architecture=self.entry.architecture,
            sha256=self.entry.sha256 or "",
            license=self.entry.license,
        )


class Ensemble:
    """Loaded members on one device; each sees crops made with its own `CropSpec`."""

    def __init__(
        self,
        members: Sequence[Member],
        device: torch.device,
        batch_size: int = DEFAULT_BATCH_SIZE,
        precision: str = "auto",
    ) -> None:
        if not members:
            raise ConfigError("an ensemble needs at least one model")
        self.members = list(members)
        self.device = device
        self.batch_size = batch_size
        self.dtype = inference_dtype(device, precision)
        self.pad_batches = device.type == "cuda"

    @classmethod
    def load(
        cls, registry: Registry, names: Sequence[str] | None, device: torch.device,
        precision: str = "auto",
    ) -> Ensemble:
        """Load the named models (ids or one ensemble name; None = the default ensemble), to
        score in `precision` (see `models.device.inference_dtype`)."""
        members = []
        for entry in registry.resolve(names):
            model = to_inference_form(load_classifier(entry, registry, device=device))
            model.to(memory_format=torch.channels_last)
            members.append(Member(entry=entry, model=model))
        return cls(members, device, precision=precision)

    @property
    def ids(self) -> list[str]:
        return [member.entry.id for member in self.members]

    @property
    def specs(self) -> list[CropSpec]:
        """Distinct crop specs, in member order: crops are made once per spec."""
        return list(dict.fromkeys(member.entry.preprocessing for member in self.members))

    def select(self, model_ids: Sequence[str] | None) -> list[Member]:
        """The members to use for one request; all when `model_ids` is None."""
        if model_ids is None:
            return self.members
        unknown = sorted(set(model_ids) - set(self.ids))
        if unknown:
            raise ConfigError(
                f"model(s) {', '.join(unknown)} are not loaded; available: {', '.join(self.ids)}"
            )
        return [member for member in self.members if member.entry.id in model_ids]

    def predict(
        self,
        crops: Mapping[CropSpec, torch.Tensor],
        model_ids: Sequence[str] | None = None,
        pairs: PairInputs | None = None,
    ) -> dict[str, np.ndarray]:
        """P(fake) per crop for each selected member, temperature-calibrated.

        Args:
            crops: one (N,3,S,S) tensor per crop spec, the same N faces in the same order.
            model_ids: subset of members to run; None runs all.
            pairs: the N faces' SSIM inputs, needed exactly when a selected member `needs_pairs`.
        """
        return {
            member.entry.id: self._predict_member(member, crops[member.entry.preprocessing], pairs)
            for member in self.select(model_ids)
        }

    def warmup(self) -> None:
        """Run every member once on blank crops, at each padded batch size on CUDA, so that no
        video pays for building kernels."""
        sizes = self._bucket_sizes() if self.pad_batches else (1,)
        for size in sizes:
            self.predict(
                {spec: torch.zeros(size, 3, spec.size, spec.size) for spec in self.specs},
                pairs=PairInputs(np.ones((size, 1, SSIM_SIZE, SSIM_SIZE), np.float32),
                                 np.zeros((size, 2), np.float32)),
            )

    def _bucket_sizes(self) -> tuple[int, ...]:
        return tuple(b for b in CUDA_BATCH_BUCKETS if b < self.batch_size) + (self.batch_size,)

    def _padded(self, chunk: torch.Tensor) -> torch.Tensor:
        """`chunk` with zero crops appended up to its bucket size when `pad_batches` (on CUDA);
        on CPU a new shape costs nothing and padding would cost compute."""
        if not self.pad_batches:
            return chunk
        size = next(b for b in self._bucket_sizes() if b >= len(chunk))
        return torch.cat([chunk, chunk.new_zeros(size - len(chunk), *chunk.shape[1:])])

    def _predict_member(self, member: Member, batch: torch.Tensor, pairs: PairInputs | None) -> np.ndarray:
        if member.needs_pairs and pairs is None:
            raise ConfigError(
                f"model {member.entry.id} compares each face with the same person's neighbouring "
                "crop; it scores videos, after tracking, not single crops"
            )
        logits = []
        with inference_context(self.device, self.dtype):
            for start in range(0, len(batch), self.batch_size):
                chunk = batch[start : start + self.batch_size]
                inputs = [self._padded(chunk).to(
                    self.device, non_blocking=True, memory_format=torch.channels_last
                )]
                if member.needs_pairs:
                    assert pairs is not None
                    inputs += [
                        self._padded(torch.from_numpy(part[start : start + self.batch_size])).to(
                            self.device, non_blocking=True)
                        for part in (pairs.maps, pairs.stats)
                    ]
                logits.append(member.model(*inputs).float().reshape(-1)[: len(chunk)])
        # float64 before the sigmoid: in float32 every logit above ~17 rounds to P(fake) = 1, and
        # MesoNet's logits reach 40, so the probability would no longer say which crop was surer.
        calibrated = torch.cat(logits).double() / member.entry.temperature
        return torch.sigmoid(calibrated).cpu().numpy()
