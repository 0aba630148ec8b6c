"""The default ensemble's two members: what to build, what to initialise, what to train and how fast.

Both start from ImageNet EfficientNet-Lite0 (the only suitable weights installable offline). The
stem and first three blocks (strides 2 to 8) stay frozen: their edge and texture filters are
generic, freezing them more than halves the cost of a step on CPU (20 vs 9.6 crops/s on 2 cores),
and with a few hundred real faces fewer trainable weights overfit less (a run training from block 2
on fit its training clips within 3 epochs while validation stood still). The learning rates are
the lower of those tried: at twice these, training loss fell to 0.49 by epoch 3 while validation
loss rose from epoch 1; at these it stayed near 0.6 and validation loss fell until epoch 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from models.training.imagenet import IMAGENET_ARCHITECTURE, IMAGENET_PACKAGE, init_from_imagenet
from models.zoo import build_classifier


@dataclass(frozen=True)
class MemberRecipe:
    """How to build and train one member.

    Attributes:
        model_id: registry id, also the weight file's stem.
        architecture: `models.zoo` architecture name.
        params: its constructor arguments, registered with the weights.
        backbone: attribute holding the timm EfficientNet to initialise from ImageNet.
        frozen_blocks: the backbone's stem and this many of its first blocks are not trained.
        backbone_lr: peak learning rate of the trainable backbone blocks.
        head_lr: peak learning rate of everything after the backbone (new layers).
        description: one line for the registry and the card.
        imagenet_init: load ImageNet weights into the backbone (False: random, for tests and
            backbones without offline weights).
    """

    model_id: str
    architecture: str
    params: dict[str, Any] = field(hash=False)
    backbone: str
    frozen_blocks: int
    backbone_lr: float
    head_lr: float
    description: str
    imagenet_init: bool = True

    def build(self) -> nn.Module:
        """The architecture with the ImageNet backbone loaded strictly and the rest random."""
        model = build_classifier(self.architecture, **self.params)
        if self.imagenet_init:
            init_from_imagenet(getattr(model, self.backbone))
        return model

    def frozen_modules(self, model: nn.Module) -> list[nn.Module]:
        backbone = getattr(model, self.backbone)
        return [backbone.conv_stem, backbone.bn1, *backbone.blocks[: self.frozen_blocks]]

    @property
    def init_weights(self) -> str:
        if not self.imagenet_init:
            return "random"
        return f"{IMAGENET_ARCHITECTURE} ImageNet-1k from the {IMAGENET_PACKAGE} package (Apache-2.0)"


EFFNET_LITE0 = MemberRecipe(
    model_id="fakewatch-effnet-lite0",
    architecture="efficientnet",
    params={"encoder": IMAGENET_ARCHITECTURE, "dropout": 0.2, "drop_path_rate": 0.1},
    backbone="encoder",
    frozen_blocks=3,
    backbone_lr=1e-4,
    head_lr=5e-4,
    description="EfficientNet-Lite0 (ImageNet init) fine-tuned on fakewatch face crops and "
    "self-blended images; one logit per crop.",
)

HYBRID_VIT = MemberRecipe(
    model_id="fakewatch-hybrid-vit",
    architecture="hybrid_vit",
    params={
        "backbone": IMAGENET_ARCHITECTURE,
        "image_size": 224,
        "dim": 256,
        "depth": 4,
        "heads": 8,
        "mlp_dim": 512,
        "dropout": 0.1,
    },
    backbone="backbone",
    frozen_blocks=3,
    backbone_lr=1e-4,
    head_lr=3e-4,
    description="EfficientNet-Lite0 (ImageNet init) 1280x7x7 map as 49 tokens for a 4-layer "
    "pre-norm transformer trained from scratch; CLS logit.",
)

MEMBERS: dict[str, MemberRecipe] = {recipe.model_id: recipe for recipe in (EFFNET_LITE0, HYBRID_VIT)}
