"""Fine-tune one member: balanced augmented batches, per-epoch validation, keep the best epoch.

On this data a plain fine-tune peaks on validation after 2-3 epochs and then overfits (REFERENCE
§8), so every epoch is scored on the held-out groups and the epoch with the best video AUC (ties:
frame AUC) is kept; training stops after `patience` epochs without improvement.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from models.crops import CropSpec, crops_to_tensor
from models.device import autocast_dtype, inference_dtype
from models.training.augment import AugmentConfig
from models.training.calibration import balanced_weights, calibrated, log_loss_at
from models.training.members import MemberRecipe
from models.training.samples import BalancedSampler, TrainingClip, make_batch
from models.training.validation import ClipScores, validation_report

WARMUP_SHARE = 0.1  # of all steps, linear warm-up before the cosine decay
WEIGHT_DECAY = 0.05
GRAD_CLIP_NORM = 1.0
PREDICT_BATCH = 64


@dataclass(frozen=True)
class TrainConfig:
    """How long and how one member is trained.

    Attributes:
        epochs: maximum epochs.
        samples_per_epoch: draws per epoch (balanced, with replacement; see `samples`).
        batch_size: draws per optimiser step.
        sbi_fraction: share of fake draws made as self-blended images.
        patience: stop after this many epochs without a better validation score.
        seed: seeds weights, draws and augmentations.
        augment: augmentation probabilities.
    """

    epochs: int = 8
    samples_per_epoch: int = 1024
    batch_size: int = 32
    sbi_fraction: float = 0.5
    patience: int = 2
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class EpochLog:
    epoch: int
    train_loss: float
    val_loss: float
    val_frame_auc: float | None
    val_video_auc: float | None
    seconds: float

    def line(self, model_id: str) -> str:
        def auc(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        return (
            f"{model_id} epoch {self.epoch}: train loss {self.train_loss:.4f}, val loss "
            f"{self.val_loss:.4f}, val frame AUC {auc(self.val_frame_auc)}, val video AUC "
            f"{auc(self.val_video_auc)} ({self.seconds:.0f} s)"
        )


@dataclass
class FitResult:
    """The best epoch's model (eval mode) and its uncalibrated validation logits per clip."""

    model: nn.Module
    history: list[EpochLog]
    best_epoch: int
    val_logits: list[np.ndarray]
    seconds: float


def predict_logits(
    model: nn.Module, crops: np.ndarray, spec: CropSpec, device: torch.device
) -> np.ndarray:
    """Raw logits for (N, S, S, 3) uint8 crops, in eval mode, in the precision the detector
    scores in (so calibration and the card's figures hold for the detector)."""
    model.eval()
    dtype = inference_dtype(device)
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(crops), PREDICT_BATCH):
            batch = crops_to_tensor(list(crops[start : start + PREDICT_BATCH]), spec)
            batch = batch.to(device, memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=dtype) if dtype else nullcontext():
                outputs.append(model(batch).float().cpu())
    return torch.cat(outputs).numpy() if outputs else np.zeros(0, np.float32)


def _schedule(total_steps: int) -> Callable[[int], float]:
    warmup = max(1, int(total_steps * WARMUP_SHARE))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def _param_groups(model: nn.Module, recipe: MemberRecipe) -> list[dict]:
    frozen = {id(p) for module in recipe.frozen_modules(model) for p in module.parameters()}
    backbone = {id(p) for p in getattr(model, recipe.backbone).parameters()}
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if id(parameter) in frozen:
            parameter.requires_grad_(False)
            continue
        part = "backbone" if id(parameter) in backbone else "head"
        decay = parameter.ndim > 1 and not name.endswith(("pos_embed", "cls_token"))
        groups.setdefault((part, decay), []).append(parameter)
    lrs = {"backbone": recipe.backbone_lr, "head": recipe.head_lr}
    return [
        {"params": params, "lr": lrs[part], "weight_decay": WEIGHT_DECAY if decay else 0.0}
        for (part, decay), params in groups.items()
    ]


def _train_mode(model: nn.Module, recipe: MemberRecipe) -> None:
    """Train mode, except frozen modules, whose batch-norm statistics must stay ImageNet's."""
    model.train()
    for module in recipe.frozen_modules(model):
        module.eval()


def _score(log: EpochLog) -> tuple[float, float]:
    return (log.val_video_auc or 0.0, log.val_frame_auc or 0.0)


class _Optimiser:
    """AdamW with warm-up and cosine decay, gradient clipping, and loss scaling for fp16 CUDA."""

    def __init__(self, model: nn.Module, recipe: MemberRecipe, config: TrainConfig, device: torch.device):
        self.optimizer = torch.optim.AdamW(_param_groups(model, recipe))
        steps = config.epochs * math.ceil(config.samples_per_epoch / config.batch_size)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _schedule(steps))
        self.dtype = autocast_dtype(device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        self.device = device
        self.loss_fn = nn.BCEWithLogitsLoss()

    def step(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
        inputs = inputs.to(self.device, memory_format=torch.channels_last)
        targets = targets.to(self.device)
        with torch.autocast(self.device.type, dtype=self.dtype) if self.dtype else nullcontext():
            logits = model(inputs)
        loss = self.loss_fn(logits.float(), targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(loss.detach())


def _train_epoch(
    model: nn.Module, recipe: MemberRecipe, optimiser: _Optimiser, sampler: BalancedSampler,
    clips: list[TrainingClip], spec: CropSpec, config: TrainConfig, epoch: int,
) -> float:
    """One epoch of balanced, augmented draws; returns the mean training loss."""
    _train_mode(model, recipe)
    draws = sampler.epoch(epoch, config.samples_per_epoch, config.seed)
    losses: list[float] = []
    bar = tqdm(
        range(0, len(draws), config.batch_size), desc=f"{recipe.model_id} epoch {epoch}",
        unit="batch", file=sys.stderr, disable=None, leave=False,
    )
    for start in bar:
        inputs, targets = make_batch(draws[start : start + config.batch_size], clips, spec, config.augment)
        losses.append(optimiser.step(model, inputs, targets))
        bar.set_postfix(loss=f"{np.mean(losses):.4f}")
    return float(np.mean(losses))


def fit_member(
    recipe: MemberRecipe,
    train_clips: list[TrainingClip],
    val_clips: list[TrainingClip],
    spec: CropSpec,
    config: TrainConfig,
    device: torch.device,
    echo: Callable[[str], None] = print,
) -> FitResult:
    """Train `recipe` on `train_clips`, select its epoch on `val_clips`, return the best model."""
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    # channels_last: a lite0 training step ran 1.5x faster on this CPU than in NCHW.
    model = recipe.build().to(device, memory_format=torch.channels_last)
    optimiser = _Optimiser(model, recipe, config, device)
    sampler = BalancedSampler(train_clips, config.sbi_fraction)
    val_labels = np.concatenate([np.full(len(c.crops), c.video.label) for c in val_clips])
    val_weights = balanced_weights(val_labels)
    history: list[EpochLog] = []
    best: tuple[tuple[float, float], int, dict[str, torch.Tensor], list[np.ndarray]] | None = None
    for epoch in range(1, config.epochs + 1):
        epoch_started = time.perf_counter()
        train_loss = _train_epoch(model, recipe, optimiser, sampler, train_clips, spec, config, epoch)
        val_logits = [predict_logits(model, c.crops.crops, spec, device) for c in val_clips]
        report = validation_report(
            [ClipScores(c.video, calibrated(z)) for c, z in zip(val_clips, val_logits, strict=True)]
        )
        log = EpochLog(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=log_loss_at(np.concatenate(val_logits), val_labels, val_weights, 1.0),
            val_frame_auc=report.frame.auc,
            val_video_auc=report.video.auc,
            seconds=time.perf_counter() - epoch_started,
        )
        history.append(log)
        echo(log.line(recipe.model_id))
        if best is None or _score(log) > best[0]:
            best = (_score(log), epoch, copy.deepcopy(model.state_dict()), val_logits)
        elif epoch - best[1] >= config.patience:
            echo(f"{recipe.model_id}: no better validation score for {config.patience} epochs, stopping")
            break
    assert best is not None
    model.load_state_dict(best[2])
    model.eval()
    return FitResult(
        model=model,
        history=history,
        best_epoch=best[1],
        val_logits=best[3],
        seconds=time.perf_counter() - started,
    )
