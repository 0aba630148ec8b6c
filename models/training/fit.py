"""One entry point for fitting any member on cached trunk maps, whatever its objective."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from torch import nn

from models.training.embedding_fit import fit_embedding_svm
from models.training.members import LOGISTIC, TRIPLET_SVM, MemberRecipe
from models.training.pool import TrainingClip, ViewPool
from models.training.top_fit import FitConfig, fit_top

Fitter = Callable[[MemberRecipe, ViewPool, list[TrainingClip], np.ndarray, FitConfig], nn.Module]
FITTERS: dict[str, Fitter] = {LOGISTIC: fit_top, TRIPLET_SVM: fit_embedding_svm}


def fit_member(recipe: MemberRecipe, pool: ViewPool, clips: list[TrainingClip],
               in_training: np.ndarray, config: FitConfig) -> nn.Module:
    """The member fitted on the views of `in_training` clips with its recipe's objective."""
    return FITTERS[recipe.objective](recipe, pool, clips, in_training, config)


def fitted_recipe(recipe: MemberRecipe, model: nn.Module) -> MemberRecipe:
    """The recipe whose params rebuild `model`: an SVM's size is known only once it is fitted."""
    if recipe.objective != TRIPLET_SVM:
        return recipe
    support_vectors = int(model.svm.support_vectors.shape[0])
    return dataclasses.replace(recipe, params={**recipe.params, "support_vectors": support_vectors})
