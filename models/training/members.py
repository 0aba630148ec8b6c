"""fakewatch's trainable members: what to build, what to initialise, how to train it, and the
registry ensembles `fakewatch train` can produce from them.

All start from ImageNet EfficientNet-Lite0 (the only suitable weights installable offline) and
share its frozen trunk (`trunk.py`); each trains the last backbone stage, the head convolution and
its own classifier, with one of two objectives: a logistic loss on the logit, or (seed 002) a
semi-hard triplet loss on an embedding followed by an SVM on it. The distilled hybrid ViT
learns from a teacher as well (`distill.py`, `teacher.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from models.training.imagenet import IMAGENET_ARCHITECTURE, IMAGENET_PACKAGE, init_from_imagenet
from models.zoo import build_classifier

# Lite0's stem and stages 0-5 (a 192 x 7 x 7 map at 224 px) stay ImageNet's; stage 6 is trained.
DEFAULT_TRUNK_BLOCKS = 6

LOGISTIC = "logistic"
TRIPLET_SVM = "triplet-svm"
OBJECTIVES = {
    LOGISTIC: "binary cross-entropy on the logit",
    TRIPLET_SVM: "semi-hard triplet loss on the L2-normalised embedding, then an SVM with a Platt "
    "sigmoid (scikit-learn, cross-validated) on the training views' embeddings",
}


@dataclass(frozen=True)
class MemberRecipe:
    """How to build and train one member.

    Attributes:
        model_id: registry id, also the weight file's stem.
        architecture: `models.zoo` architecture name.
        params: its constructor arguments, registered with the weights.
        backbone: attribute holding the timm EfficientNet to initialise from ImageNet (also the
            name of the constructor argument naming it).
        backbone_lr: peak learning rate of the trainable backbone blocks.
        head_lr: peak learning rate of everything after the backbone (new layers).
        trunk_blocks: the backbone's stem and this many first stages keep their ImageNet weights
            and are computed once per view (`trunk.py`); the stages after them are trained.
        description: one line for the registry and the card.
        imagenet_init: load ImageNet weights into the backbone (False: random, for tests and
            backbones without offline weights).
        objective: a key of `OBJECTIVES`, what the fit minimises.
        distilled: the architecture has a distillation head (`heads()`) trained on a teacher's
            scores; a run training it needs a teacher.
    """

    model_id: str
    architecture: str
    params: dict[str, Any] = field(hash=False)
    backbone: str
    backbone_lr: float
    head_lr: float
    description: str
    trunk_blocks: int = DEFAULT_TRUNK_BLOCKS
    imagenet_init: bool = True
    objective: str = LOGISTIC
    distilled: bool = False

    def build(self) -> nn.Module:
        """The architecture with the ImageNet backbone loaded strictly and the rest random."""
        model = build_classifier(self.architecture, **self.params)
        if self.imagenet_init:
            init_from_imagenet(getattr(model, self.backbone))
        return model

    @property
    def backbone_name(self) -> str:
        """The timm backbone: the constructor argument named like the backbone attribute."""
        return str(self.params[self.backbone])

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
    backbone_lr=1e-4,
    head_lr=3e-4,
    description="EfficientNet-Lite0 (ImageNet init) 1280x7x7 map as 49 tokens for a 4-layer "
    "pre-norm transformer trained from scratch; CLS logit.",
)

EMBEDDING_SVM = MemberRecipe(
    model_id="fakewatch-embedding-svm",
    architecture="embedding_svm",
    params={
        "backbone": IMAGENET_ARCHITECTURE,
        "embedding_dim": 512,
        "dropout": 0.4,
        "kernel": "rbf",
        "support_vectors": 1,  # set by the fit; the registry records the fitted count
    },
    backbone="backbone",
    backbone_lr=1e-4,
    head_lr=5e-4,
    description="Seed 002 (DACON winner): EfficientNet-Lite0 (ImageNet init) -> dropout 0.4 -> "
    "dense 512 -> L2-normalised embedding trained with a semi-hard triplet loss; an RBF SVM with "
    "a Platt sigmoid on the embedding, stored as tensors; Platt logit.",
    objective=TRIPLET_SVM,
)

HYBRID_VIT_DISTILLED = MemberRecipe(
    model_id="fakewatch-hybrid-vit-distilled",
    architecture="hybrid_vit_distilled",
    params=dict(HYBRID_VIT.params),
    backbone="backbone",
    backbone_lr=1e-4,
    head_lr=3e-4,
    description="The hybrid ViT with a distillation token (Heo et al., DeiT-style heads): CLS head "
    "trained on labels, distillation head on a teacher's scores; answers with the distillation logit.",
    distilled=True,
)

MEMBERS: dict[str, MemberRecipe] = {
    recipe.model_id: recipe
    for recipe in (EFFNET_LITE0, HYBRID_VIT, EMBEDDING_SVM, HYBRID_VIT_DISTILLED)
}


@dataclass(frozen=True)
class TrainedEnsemble:
    """A registry ensemble `fakewatch train` produces: its members and its model card's name."""

    name: str
    title: str
    card_stem: str
    members: tuple[str, ...]


TRAINED_ENSEMBLES: dict[str, TrainedEnsemble] = {
    ensemble.name: ensemble
    for ensemble in (
        TrainedEnsemble("fakewatch-sbi", "fakewatch SBI-trained ensemble", "fakewatch-sbi",
                        (EFFNET_LITE0.model_id, HYBRID_VIT.model_id)),
        TrainedEnsemble("embedding-svm", "fakewatch embedding + SVM (seed 002)",
                        "fakewatch-embedding-svm", (EMBEDDING_SVM.model_id,)),
        TrainedEnsemble("fakewatch-vit-distilled", "fakewatch distilled hybrid ViT (seed 001)",
                        "fakewatch-hybrid-vit-distilled", (HYBRID_VIT_DISTILLED.model_id,)),
    )
}
