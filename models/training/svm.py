"""Fit the embedding member's SVM with scikit-learn and turn it into the model's tensors.

`CalibratedClassifierCV(SVC, method="sigmoid", ensemble=False)` fits one SVC on every embedding
and a Platt sigmoid on cross-validated decision values (scikit-learn's replacement for the
deprecated `SVC(probability=True)`). Only numbers leave scikit-learn: the support vectors, dual
coefficients, intercept, kernel width and the sigmoid's two parameters, loaded into
`KernelSVM`'s buffers. No estimator is pickled.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import SVC

from models.zoo.embedding_svm import KernelSVM

SVM_C = 1.0  # scikit-learn's default penalty; the embedding, not C, is what training tunes
CALIBRATION_FOLDS = 5  # the Platt sigmoid is fitted on decision values of held-out embeddings


def fit_calibrated_svm(
    embeddings: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray, kernel: str
) -> CalibratedClassifierCV:
    """An SVC (labels: 1 = fake) with a Platt sigmoid fitted on cross-validated decision values."""
    svc = SVC(kernel=kernel, C=SVM_C, gamma="scale")
    calibrated = CalibratedClassifierCV(svc, method="sigmoid", cv=CALIBRATION_FOLDS, ensemble=False)
    return calibrated.fit(embeddings, labels, sample_weight=sample_weight)


def _vector(value: object) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value, np.float64).reshape(-1), dtype=torch.float32)


def svm_state(calibrated: CalibratedClassifierCV) -> dict[str, torch.Tensor]:
    """`KernelSVM` buffers that compute the same decision values and probabilities.

    Raises:
        ValueError: not a binary SVC with classes 0 and 1 and a sigmoid calibration.
    """
    fitted = calibrated.calibrated_classifiers_[0]
    svc, sigmoid = fitted.estimator, fitted.calibrators[0]
    if not isinstance(svc, SVC) or list(svc.classes_) != [0, 1] or fitted.method != "sigmoid":
        raise ValueError("expected a sigmoid-calibrated binary SVC on labels 0 (real) and 1 (fake)")
    return {
        "support_vectors": torch.as_tensor(svc.support_vectors_, dtype=torch.float32),
        "dual_coef": _vector(svc.dual_coef_),
        "intercept": _vector(svc.intercept_),
        "gamma": _vector(svc._gamma if svc.kernel == "rbf" else 1.0),
        "platt_a": _vector(sigmoid.a_),
        "platt_b": _vector(sigmoid.b_),
    }


def torch_svm(calibrated: CalibratedClassifierCV) -> KernelSVM:
    """The fitted SVM as a `KernelSVM` module."""
    state = svm_state(calibrated)
    svc = calibrated.calibrated_classifiers_[0].estimator
    module = KernelSVM(state["support_vectors"].shape[1], state["support_vectors"].shape[0], svc.kernel)
    module.load_state_dict(state, strict=True)
    return module.eval()
