"""Which threshold a video is judged at, and under which aggregation policy.

Presets belong to an ensemble as a whole (their rates were measured on its scores under one
policy), so they apply when that ensemble is loaded by name (or as the default) and a request
scores with all of it; the policy they were measured under is then the default policy too.
Models without presets fall back to `DEFAULT_THRESHOLD`, and the result then names no preset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.config import DEFAULT_POLICY, DEFAULT_THRESHOLD, DetectOptions, DetectorConfig
from models.errors import ConfigError
from models.registry import Registry, ThresholdPresets


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    preset: str | None  # None when the threshold was given as a number or no preset exists


def ensemble_presets(registry: Registry, models: Sequence[str] | None) -> ThresholdPresets | None:
    """The presets of the ensemble `models` names (None: the default ensemble), if it has any."""
    if models is None:
        return registry.presets.get(registry.default_ensemble)
    if len(models) == 1:
        return registry.presets.get(models[0])
    return None


def operating_point(
    options: DetectOptions, config: DetectorConfig, presets: ThresholdPresets | None,
    whole_ensemble: bool,
) -> OperatingPoint:
    """A request's threshold: its own number, its preset, the detector's number, the detector's
    preset, the ensemble's default preset, then `DEFAULT_THRESHOLD`, in that order.

    Raises:
        ConfigError: a preset was asked for where none was measured (no presets, or only part of
            the ensemble scores).
    """
    if options.threshold is not None:
        return OperatingPoint(options.threshold, None)
    if options.preset is None and config.threshold is not None:
        return OperatingPoint(config.threshold, None)
    name = options.preset or config.preset
    if presets is None or not whole_ensemble:
        if name is not None:
            why = "these models have no measured presets" if presets is None else (
                "presets were measured on the whole ensemble, not on a subset of its models")
            raise ConfigError(f"threshold preset {name!r} cannot be used: {why}; give a threshold")
        return OperatingPoint(DEFAULT_THRESHOLD, None)
    point = presets.get(name)
    return OperatingPoint(point.threshold, point.name)


def aggregation_policy(
    options: DetectOptions, config: DetectorConfig, presets: ThresholdPresets | None,
    whole_ensemble: bool,
) -> str:
    """A request's policy: its own, the detector's, the one the ensemble's presets were measured
    under (when they apply), then `DEFAULT_POLICY`."""
    if options.policy is not None:
        return options.policy
    if config.policy is not None:
        return config.policy
    if presets is not None and whole_ensemble:
        return presets.measured_policy
    return DEFAULT_POLICY
