"""Every architecture builds and maps (N, 3, H, W) (and SSIM inputs, where it reads them) to (N,)
logits; reference key layouts hold."""

from __future__ import annotations

import pytest
import timm
import torch

from models.errors import ConfigError
from models.zoo import ARCHITECTURES, build_classifier
from models.zoo._coccomini_parts import patchify
from models.zoo.cross_efficient_vit import CrossEfficientViT
from models.zoo.efficient_vit import EfficientViT
from tests.tiny_models import TINY_BACKBONE, model_inputs, seeded_model

# Small settings: the B0 extractor stays the published one; at 64 px its head map is 2x2 and its
# stage-2 map 16x16, so these patch sizes give 4 tokens per branch.
SMALL_EFFICIENT_VIT = {
    "image_size": 64,
    "patch_size": 1,
    "dim": 32,
    "depth": 1,
    "heads": 2,
    "dim_head": 16,
    "mlp_dim": 64,
    "emb_dim": 4,
}
SMALL_CROSS_VIT = {
    "image_size": 64,
    "sm_patch_size": 1,
    "lg_patch_size": 8,
    "sm_dim": 32,
    "lg_dim": 48,
    "depth": 1,
    "sm_enc_depth": 1,
    "lg_enc_depth": 1,
    "cross_attn_depth": 1,
    "sm_enc_heads": 2,
    "lg_enc_heads": 2,
    "cross_attn_heads": 2,
    "sm_enc_dim_head": 16,
    "lg_enc_dim_head": 16,
    "cross_attn_dim_head": 16,
    "sm_enc_mlp_dim": 64,
    "lg_enc_mlp_dim": 64,
}


CASES = [
    ("meso4", {}, 256),
    ("meso_inception4", {}, 256),
    ("meso_inception4_ssim", {}, 256),
    ("efficientnet", {"encoder": "tf_efficientnet_b0"}, 64),
    ("efficientnet", {"encoder": "tf_efficientnet_lite0"}, 64),
    (
        "hybrid_vit",
        {
            "backbone": TINY_BACKBONE,
            "image_size": 64,
            "dim": 32,
            "depth": 1,
            "heads": 2,
            "mlp_dim": 64,
        },
        64,
    ),
    (
        "hybrid_vit",
        {"image_size": 96, "dim": 32, "depth": 1, "heads": 2, "mlp_dim": 64, "out_block": 4},
        96,
    ),
    (
        "hybrid_vit_distilled",
        {"backbone": TINY_BACKBONE, "image_size": 64, "dim": 32, "depth": 1, "heads": 2, "mlp_dim": 64},
        64,
    ),
    ("efficient_vit", SMALL_EFFICIENT_VIT, 64),
    ("cross_efficient_vit", SMALL_CROSS_VIT, 64),
    ("embedding_svm", {"backbone": TINY_BACKBONE, "embedding_dim": 16, "support_vectors": 5}, 64),
]


@pytest.mark.parametrize(("architecture", "params", "size"), CASES)
def test_every_architecture_returns_one_logit_per_image(
    architecture: str, params: dict[str, object], size: int
) -> None:
    model = seeded_model(architecture, params, size, seed=0)
    with torch.no_grad():
        logits = model(*model_inputs(model, torch.rand(3, 3, size, size)))
    assert logits.shape == (3,) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert len(set(logits.tolist())) == 3  # different images, different scores


def test_cases_cover_every_architecture() -> None:
    assert {architecture for architecture, _, _ in CASES} == set(ARCHITECTURES)


def test_meso4_has_about_28k_parameters() -> None:
    count = sum(p.numel() for p in build_classifier("meso4").parameters())
    assert 27_000 <= count <= 29_000


def test_meso4_needs_a_multiple_of_32() -> None:
    with pytest.raises(ConfigError, match="multiple of 32"):
        build_classifier("meso4", image_size=100)


def test_unknown_architecture_lists_the_known_ones() -> None:
    with pytest.raises(
        ConfigError, match="known: cross_efficient_vit, efficient_vit, efficientnet"
    ):
        build_classifier("xception")


def test_unknown_parameter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="meso4.*rejects parameters"):
        build_classifier("meso4", depth=3)


def test_unknown_timm_encoder_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown timm encoder"):
        build_classifier("efficientnet", encoder="tf_efficientnet_b99")


def test_deepfake_classifier_keeps_the_timm_classifier_and_its_width() -> None:
    model = build_classifier("efficientnet", encoder="tf_efficientnet_lite0")
    state = model.state_dict()
    assert state["encoder.classifier.weight"].shape == (1000, 1280)
    assert state["fc.weight"].shape == (1, 1280) and "fc.bias" in state


def test_hybrid_vit_tokenises_the_lite0_map() -> None:
    model = build_classifier("hybrid_vit")
    assert isinstance(model.backbone, timm.models.efficientnet.EfficientNet)
    assert model.pos_embed.shape == (1, 7 * 7 + 1, 256)  # 1280 x 7 x 7 at 224 px, plus CLS
    assert model.patch_embed.weight.shape == (256, 1280)
    with pytest.raises(ValueError, match="built for 224x224"):
        model.eval()(torch.rand(1, 3, 160, 160))


def test_hybrid_vit_rejects_heads_that_do_not_divide_dim() -> None:
    with pytest.raises(ConfigError, match="not divisible"):
        build_classifier("hybrid_vit", backbone=TINY_BACKBONE, image_size=64, dim=30, heads=4)


def test_efficient_vit_scores_do_not_depend_on_batch_position() -> None:
    model = seeded_model("efficient_vit", SMALL_EFFICIENT_VIT, 64, seed=0)
    images = torch.rand(6, 3, 64, 64)  # more samples than the 4-row position table
    with torch.no_grad():
        together = model(images)
        alone = torch.cat([model(images[i : i + 1]) for i in range(6)])
        reversed_order = model(images.flip(0)).flip(0)
    torch.testing.assert_close(alone, together, rtol=0, atol=1e-5)
    torch.testing.assert_close(reversed_order, together, rtol=0, atol=1e-5)


def shapes_after_one_224px_forward(model: torch.nn.Module) -> dict[str, torch.Size]:
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 3, 224, 224)).shape == (1,)
    return {k: v.shape for k, v in model.state_dict().items()}


def published_efficient_vit_forward(model: EfficientViT, images: torch.Tensor) -> torch.Tensor:
    """The authors' forward, position bug included: row i of the table goes to sample i."""
    features = model.efficient_net.extract_features(images)
    tokens = model.patch_to_embedding(patchify(features, model.patch_size))
    cls = model.cls_token.expand(tokens.shape[0], -1, -1)
    tokens = torch.cat((cls, tokens), dim=1) + model.pos_embedding[0 : tokens.shape[0]]
    return model.mlp_head(model.transformer(tokens)[:, 0]).squeeze(-1)


def test_efficient_vit_fix_keeps_the_published_score_of_a_face_scored_alone() -> None:
    model = seeded_model("efficient_vit", SMALL_EFFICIENT_VIT, 64, seed=0)
    images = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        ours = model(images)
        published_alone = torch.cat(
            [published_efficient_vit_forward(model, im[None]) for im in images]
        )
        published_batched = published_efficient_vit_forward(model, images)
    torch.testing.assert_close(ours, published_alone, rtol=0, atol=1e-5)
    assert not torch.allclose(ours[1:], published_batched[1:], atol=1e-3)  # the bug we fixed


@pytest.fixture(scope="module")
def published_efficient_vit() -> dict[str, torch.Size]:
    return shapes_after_one_224px_forward(EfficientViT())


def test_efficient_vit_has_the_published_keys_and_shapes(
    published_efficient_vit: dict[str, torch.Size],
) -> None:
    shapes = published_efficient_vit
    assert shapes["pos_embedding"] == (32, 1, 1024)
    assert shapes["cls_token"] == (1, 1, 1024)
    assert shapes["patch_to_embedding.weight"] == (1024, 1280 * 7 * 7)
    assert shapes["transformer.layers.5.0.fn.to_qkv.weight"] == (3 * 8 * 64, 1024)
    assert shapes["transformer.layers.5.0.fn.to_out.0.weight"] == (1024, 512)
    assert shapes["transformer.layers.5.1.fn.net.0.weight"] == (2048, 1024)
    assert shapes["transformer.layers.5.1.fn.net.3.weight"] == (1024, 2048)
    assert shapes["transformer.layers.0.0.norm.weight"] == (1024,)
    assert shapes["mlp_head.0.weight"] == (2048, 1024) and shapes["mlp_head.2.weight"] == (1, 2048)
    # lukemelas B0, 1000-class head included, as EfficientNet.from_pretrained built it
    assert shapes["efficient_net._conv_stem.weight"] == (32, 3, 3, 3)
    assert shapes["efficient_net._blocks.15._project_conv.weight"] == (320, 1152, 1, 1)
    assert shapes["efficient_net._fc.weight"] == (1000, 1280)
    assert "transformer.layers.6.0.norm.weight" not in shapes


@pytest.fixture(scope="module")
def published_cross_vit() -> dict[str, torch.Size]:
    return shapes_after_one_224px_forward(CrossEfficientViT())


def test_cross_efficient_vit_has_the_published_keys_and_shapes(
    published_cross_vit: dict[str, torch.Size],
) -> None:
    shapes = published_cross_vit
    assert {k.split(".")[0] for k in shapes} == {
        "sm_image_embedder",
        "lg_image_embedder",
        "multi_scale_encoder",
        "sm_mlp_head",
        "lg_mlp_head",
    }
    assert shapes["sm_image_embedder.to_patch_embedding.1.weight"] == (192, 1280 * 7 * 7)
    assert shapes["lg_image_embedder.to_patch_embedding.1.weight"] == (384, 24 * 56 * 56)
    assert shapes["sm_image_embedder.pos_embedding"] == (1, (224 // 7) ** 2 + 1, 192)
    assert shapes["lg_image_embedder.pos_embedding"] == (1, (224 // 56) ** 2 + 1, 384)
    assert shapes["lg_image_embedder.efficient_net._fc.weight"] == (1000, 1280)
    enc = "multi_scale_encoder.layers.3"
    assert shapes[f"{enc}.0.layers.1.0.fn.to_q.weight"] == (512, 192)
    assert shapes[f"{enc}.0.layers.1.0.fn.to_kv.weight"] == (1024, 192)
    assert shapes[f"{enc}.1.layers.2.1.fn.net.0.weight"] == (2048, 384)
    assert shapes[f"{enc}.1.norm.weight"] == (384,)
    assert shapes[f"{enc}.2.layers.1.0.project_in.weight"] == (384, 192)
    assert shapes[f"{enc}.2.layers.1.0.fn.norm.weight"] == (384,)
    assert shapes[f"{enc}.2.layers.1.1.fn.fn.to_kv.weight"] == (1024, 192)
    assert shapes[f"{enc}.2.layers.1.1.project_out.weight"] == (384, 192)
    assert shapes["sm_mlp_head.0.weight"] == (192,) and shapes["sm_mlp_head.1.weight"] == (1, 192)
    assert shapes["lg_mlp_head.1.weight"] == (1, 384)
    assert "multi_scale_encoder.layers.4.0.norm.weight" not in shapes


def test_cross_efficient_vit_logit_is_the_sum_of_both_heads() -> None:
    model = seeded_model("cross_efficient_vit", SMALL_CROSS_VIT, 64, seed=0)
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        both = model(images)
        torch.nn.init.zeros_(model.lg_mlp_head[1].weight)
        torch.nn.init.zeros_(model.lg_mlp_head[1].bias)
        small_only = model(images)
        sm_tokens, _ = model.multi_scale_encoder(
            model.sm_image_embedder(images), model.lg_image_embedder(images)
        )
        expected = model.sm_mlp_head(sm_tokens[:, 0]).squeeze(-1)
    torch.testing.assert_close(small_only, expected)
    assert not torch.allclose(both, small_only)
