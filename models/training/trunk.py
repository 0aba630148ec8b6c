"""Split a member at a frozen ImageNet trunk, so training runs on cached trunk maps.

The stem and the first `recipe.trunk_blocks` stages of EfficientNet-Lite0 keep their ImageNet weights
(batch-norm statistics too). Their output for every training view is computed once and cached;
each fit (one per protocol fold, then the final one) trains only the stages after it, the 1x1 head
convolution and the member's classifier on those maps. On 2 CPU cores that is the difference
between a cross-validated run in minutes and one fold in an hour: for Lite0 the first six stages
are ~90% of a forward pass, and a training step from stage 6 cost 6.7 ms per sample against 38 ms
from stage 5 and 70 ms from stage 4. The exported member is the whole network, trunk included.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from models.crops import CropSpec, crops_to_tensor
from models.training.members import MemberRecipe
from models.zoo.inference_form import to_inference_form

TRUNK_BATCH = 64


def backbone_of(model: nn.Module, recipe: MemberRecipe) -> nn.Module:
    return getattr(model, recipe.backbone)


def trunk_maps(backbone: nn.Module, blocks: int, inputs: torch.Tensor) -> torch.Tensor:
    """The frozen part: stem and the first `blocks` stages."""
    return backbone.blocks[:blocks](backbone.bn1(backbone.conv_stem(inputs)))


def top_map(model: nn.Module, recipe: MemberRecipe, maps: torch.Tensor) -> torch.Tensor:
    """The trained backbone part: the remaining stages and the head convolution."""
    backbone = backbone_of(model, recipe)
    return backbone.bn2(backbone.conv_head(backbone.blocks[recipe.trunk_blocks :](maps)))


def top_logits(model: nn.Module, recipe: MemberRecipe, maps: torch.Tensor) -> torch.Tensor:
    """The trained part: `top_map`, then the member's classifier."""
    return model.classify(top_map(model, recipe, maps))


def trainable_parameters(model: nn.Module, recipe: MemberRecipe) -> Iterator[tuple[str, nn.Parameter]]:
    """Everything after the trunk; the trunk's parameters are switched off for gradients."""
    backbone = backbone_of(model, recipe)
    frozen = [backbone.conv_stem, backbone.bn1, *backbone.blocks[: recipe.trunk_blocks]]
    frozen_ids = {id(p) for module in frozen for p in module.parameters()}
    for name, parameter in model.named_parameters():
        if id(parameter) in frozen_ids:
            parameter.requires_grad_(False)
        else:
            yield name, parameter


def set_train_mode(model: nn.Module, recipe: MemberRecipe) -> None:
    """Train mode after the trunk; the trunk stays in eval so its statistics stay ImageNet's."""
    model.train()
    backbone = backbone_of(model, recipe)
    for module in (backbone.conv_stem, backbone.bn1, *backbone.blocks[: recipe.trunk_blocks]):
        module.eval()


class Trunk:
    """The shared frozen trunk: the ImageNet backbone up to `recipe.trunk_blocks`, in eval mode.

    Every member is built on the same ImageNet backbone, so one set of cached maps serves both.
    It runs in the detector's inference form (batch norms folded), which computes the same maps
    to float rounding at half the cost on CPU.
    """

    def __init__(self, recipe: MemberRecipe, spec: CropSpec, device: torch.device, seed: int) -> None:
        torch.manual_seed(seed)  # as `fit_top` builds its members: the same trunk without ImageNet
        backbone = backbone_of(recipe.build(), recipe).eval()
        self.backbone = to_inference_form(backbone).to(device)
        self.blocks = recipe.trunk_blocks
        self.spec = spec
        self.device = device

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, C, h, w) float16 maps of uint8 RGB crops (at least one)."""
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(images), TRUNK_BATCH):
                batch = crops_to_tensor(images[start : start + TRUNK_BATCH], self.spec).to(self.device)
                outputs.append(trunk_maps(self.backbone, self.blocks, batch).to(torch.float16).cpu().numpy())
        return np.concatenate(outputs)
