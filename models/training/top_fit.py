"""Fit one member's trainable top on cached trunk maps, and score maps with it.

Each step draws a batch from the pool with weights that make the label independent of where a
clip came from: half the mass on real views (every real clip alike), the rest on fakes, split
between self-blended views of the real clips and genuine fakes; genuine fakes are shared equally
between manipulation families, then between the sources of a family, then between its clips. A
fixed number of steps, no early stopping: nothing is chosen on the clips the protocol reports.
A distilled member's loss also pulls its distillation head toward the teacher's score of each view.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.datasets import LabeledVideo
from models.errors import ConfigError
from models.training.distill import distillation_loss
from models.training.members import MemberRecipe
from models.training.pool import FAKE_VIEW, REAL_VIEW, SBI_VIEW, TrainingClip, ViewPool
from models.training.trunk import set_train_mode, top_features, top_logits, trainable_parameters

PREDICT_BATCH = 512
WARMUP_SHARE = 0.1  # of all steps, linear warm-up before the cosine decay
WEIGHT_DECAY = 0.05
GRAD_CLIP_NORM = 1.0


@dataclass(frozen=True)
class FitConfig:
    """How long one fit trains, on what mix.

    Attributes:
        steps: optimiser steps.
        batch_size: views per step.
        sbi_fraction: share of the fake mass given to self-blended views.
        seed: seeds the initial head weights and the draws.
    """

    steps: int = 600
    batch_size: int = 64
    sbi_fraction: float = 0.5
    seed: int = 0


def spread(mass: float, members: dict[str, list[int]], shares: np.ndarray) -> None:
    """Give `mass` to the named parts equally, and within a part to its entries equally."""
    parts = [indices for indices in members.values() if indices]
    for indices in parts:
        shares[indices] += mass / len(parts) / len(indices)


def view_weights(pool: ViewPool, clips: list[TrainingClip], in_training: np.ndarray,
                 sbi_fraction: float) -> np.ndarray:
    """Sampling probability of every view (zero for clips outside `in_training`)."""
    per_clip_views: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, (clip, kind) in enumerate(zip(pool.clip, pool.kind, strict=True)):
        if in_training[clip]:
            per_clip_views[(int(clip), int(kind))].append(index)
    shares = np.zeros(len(pool.clip))
    has_fakes = any(kind == FAKE_VIEW for _, kind in per_clip_views)
    sbi_mass = 0.5 * (sbi_fraction if has_fakes else 1.0)
    for kind, mass in ((REAL_VIEW, 0.5), (SBI_VIEW, sbi_mass)):
        clip_shares = np.zeros(len(pool.clip))
        spread(1.0, {str(c): v for (c, k), v in per_clip_views.items() if k == kind}, clip_shares)
        shares += mass * clip_shares
    fakes = {clips[c].video: views for (c, kind), views in per_clip_views.items() if kind == FAKE_VIEW}
    spread_fakes(0.5 - sbi_mass, fakes, shares)
    return shares / shares.sum()


def spread_fakes(mass: float, fakes: Mapping[LabeledVideo, list[int]], shares: np.ndarray) -> None:
    """Give `mass` to the fake clips' entries: equally between manipulation families, then
    between the sources of a family, then between its clips, then a clip's entries."""
    families: dict[str, dict[str, dict[str, list[int]]]] = defaultdict(lambda: defaultdict(dict))
    for video, entries in fakes.items():
        families[video.family or "unknown"][video.subset or video.group][str(video.path)] = entries
    for sources in families.values():
        for clip_entries in sources.values():
            spread(mass / len(families) / len(sources), clip_entries, shares)


def warmup_cosine(total_steps: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up, then cosine decay to zero."""
    warmup = max(1, int(total_steps * WARMUP_SHARE))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def optimiser_for(model: nn.Module, recipe: MemberRecipe, steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the parameters after the trunk, the recipe's two learning rates, warm-up + cosine."""
    backbone = {id(p) for p in getattr(model, recipe.backbone).parameters()}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = defaultdict(list)
    for name, parameter in trainable_parameters(model, recipe):
        decay = parameter.ndim > 1 and not name.endswith(("pos_embed", "cls_token", "dist_token"))
        groups[(id(parameter) in backbone, decay)].append(parameter)
    optimiser = torch.optim.AdamW([
        {"params": params, "lr": recipe.backbone_lr if in_backbone else recipe.head_lr,
         "weight_decay": WEIGHT_DECAY if decay else 0.0}
        for (in_backbone, decay), params in groups.items()
    ])
    return optimiser, torch.optim.lr_scheduler.LambdaLR(optimiser, warmup_cosine(steps))


def batch_loss(model: nn.Module, recipe: MemberRecipe, maps: torch.Tensor, targets: torch.Tensor,
               teacher: torch.Tensor | None) -> torch.Tensor:
    """BCE on the labels; for a distilled member, `distillation_loss` with the teacher's scores."""
    if not recipe.distilled:
        return nn.functional.binary_cross_entropy_with_logits(top_logits(model, recipe, maps), targets)
    if teacher is None:
        raise ConfigError(f"{recipe.model_id} is distilled: its views need a teacher's scores")
    class_logits, distillation_logits = model.heads(top_features(model, recipe, maps))
    return distillation_loss(class_logits, distillation_logits, targets, teacher)


def fit_top(recipe: MemberRecipe, pool: ViewPool, clips: list[TrainingClip], in_training: np.ndarray,
            config: FitConfig) -> nn.Module:
    """A whole member (ImageNet trunk, trained top) fitted on the views of `in_training` clips."""
    if recipe.distilled and pool.teacher is None:
        raise ConfigError(f"{recipe.model_id} is distilled: the run needs a teacher")
    torch.manual_seed(config.seed)
    model = recipe.build()
    optimiser, scheduler = optimiser_for(model, recipe, config.steps)
    weights = view_weights(pool, clips, in_training, config.sbi_fraction)
    rng = np.random.default_rng([config.seed, 1])
    targets = torch.from_numpy(pool.targets)
    teacher = None if pool.teacher is None else torch.from_numpy(pool.teacher)
    set_train_mode(model, recipe)
    for _ in range(config.steps):
        batch = rng.choice(len(weights), size=config.batch_size, p=weights)
        maps = torch.from_numpy(pool.maps[batch].astype(np.float32))
        loss = batch_loss(model, recipe, maps, targets[batch],
                          None if teacher is None else teacher[batch])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
        optimiser.step()
        scheduler.step()
    return model.eval()


def over_maps(model: nn.Module, maps: np.ndarray,
              forward: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
    """`forward` of cached trunk maps in batches, in eval mode and fp32 (as the detector scores on
    CPU); an empty array for no maps."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(maps), PREDICT_BATCH):
            chunk = torch.from_numpy(maps[start : start + PREDICT_BATCH].astype(np.float32))
            outputs.append(forward(chunk).numpy())
    return np.concatenate(outputs) if outputs else np.zeros(0, np.float32)


def predict_top(model: nn.Module, recipe: MemberRecipe, maps: np.ndarray) -> np.ndarray:
    """Logits of cached trunk maps."""
    return over_maps(model, maps, lambda chunk: top_logits(model, recipe, chunk))


