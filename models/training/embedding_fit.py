"""Fit the seed-002 member on cached trunk maps: a triplet-trained embedding, then an SVM on it.

The batches are drawn exactly as for the logistic members (`top_fit.view_weights`: half real,
the fake half split between self-blended and genuine fakes by family and source), so the
embedding learns the same label-not-source task; within a batch, semi-hard triplets are mined
between real and fake views (`triplet.py`). The SVM is then fitted on the eval-mode embeddings of
every training view, weighted by the same sampling weights, and becomes the model's SVM buffers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.training.members import MemberRecipe
from models.training.pool import TrainingClip, ViewPool
from models.training.svm import fit_calibrated_svm, torch_svm
from models.training.top_fit import (
    GRAD_CLIP_NORM,
    FitConfig,
    optimiser_for,
    over_maps,
    view_weights,
)
from models.training.triplet import semi_hard_triplet_loss
from models.training.trunk import set_train_mode, top_features

# L2 penalty on the dense layer's kernel, as the DACON winner's Keras `kernel_regularizer=l2(...)`.
DENSE_L2 = 1e-4


def embed_maps(model: nn.Module, recipe: MemberRecipe, maps: np.ndarray) -> np.ndarray:
    """Eval-mode embeddings (N, D) of cached trunk maps."""
    return over_maps(model, maps, lambda chunk: model.embed(top_features(model, recipe, chunk)))


def fit_embedding_svm(recipe: MemberRecipe, pool: ViewPool, clips: list[TrainingClip],
                      in_training: np.ndarray, config: FitConfig) -> nn.Module:
    """A whole `embedding_svm` member fitted on the views of `in_training` clips."""
    torch.manual_seed(config.seed)
    model = recipe.build()
    optimiser, scheduler = optimiser_for(model, recipe, config.steps)
    weights = view_weights(pool, clips, in_training, config.sbi_fraction)
    rng = np.random.default_rng([config.seed, 1])
    targets = torch.from_numpy(pool.targets)
    set_train_mode(model, recipe)
    for _ in range(config.steps):
        batch = rng.choice(len(weights), size=config.batch_size, p=weights)
        maps = torch.from_numpy(pool.maps[batch].astype(np.float32))
        embeddings = model.embed(top_features(model, recipe, maps))
        loss = semi_hard_triplet_loss(embeddings, targets[batch]) + DENSE_L2 * model.dense.weight.square().sum()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
        optimiser.step()
        scheduler.step()
    chosen = np.flatnonzero(weights > 0)
    embeddings = embed_maps(model, recipe, pool.maps[chosen])
    svm = fit_calibrated_svm(embeddings, pool.targets[chosen].astype(np.int64),
                             weights[chosen] * len(chosen), str(recipe.params["kernel"]))
    model.svm = torch_svm(svm)
    return model.eval()
