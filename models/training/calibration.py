"""Temperature scaling (Guo et al., 2017): one scalar that makes P(fake) = sigmoid(logit / T) honest.

Fitted on validation crops by minimising log loss with REAL and FAKE weighted equally, so the
calibrated probability assumes even odds rather than the validation set's share of fakes (which
says nothing about what users will upload). The detector applies it per member (`temperature` in
the registry), before averaging members and crops.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit

from models.training.errors import TrainingDataError

# Search range for T: below 0.05 or above 100 a model is broken, not miscalibrated (MesoNet's
# authors trained with a squared error on the sigmoid, which leaves logits of +-40 on crops it
# has no real evidence about: its fitted temperatures pass 20).
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 100.0


def calibrated(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """P(fake) = sigmoid(logits / temperature), as the detector applies it (without overflow for
    logits far from zero)."""
    return expit(np.asarray(logits, np.float64) / temperature)


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-sample weights giving each class half of the total weight."""
    labels = np.asarray(labels, dtype=int)
    fakes = int(labels.sum())
    reals = len(labels) - fakes
    if fakes == 0 or reals == 0:
        raise TrainingDataError("calibration needs both REAL and FAKE samples")
    return np.where(labels == 1, 0.5 / fakes, 0.5 / reals) * len(labels)


def log_loss_at(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray, temperature: float) -> float:
    """Weighted binary cross-entropy of sigmoid(logits / temperature), computed stably."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    y = np.asarray(labels, dtype=np.float64)
    # -[y log s(z) + (1-y) log(1-s(z))] = softplus(z) - y z
    losses = np.logaddexp(0.0, z) - y * z
    return float(np.sum(weights * losses) / np.sum(weights))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, balanced: bool = True) -> float:
    """The T in [0.05, 100] minimising (class-balanced) log loss of sigmoid(logits / T).

    Args:
        logits: raw model outputs, one per sample.
        labels: 1 for FAKE, 0 for REAL.
        balanced: weight the classes equally (see the module docstring).
    """
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=int).reshape(-1)
    if logits.shape != labels.shape or logits.size == 0:
        raise TrainingDataError("calibration needs one label per logit")
    if not np.all(np.isfinite(logits)):
        raise TrainingDataError("calibration got non-finite logits")
    weights = balanced_weights(labels) if balanced else np.ones(len(labels))
    result = minimize_scalar(
        lambda log_t: log_loss_at(logits, labels, weights, math.exp(log_t)),
        bounds=(math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE)),
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(math.exp(result.x))
