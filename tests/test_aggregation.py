"""Aggregation policies against hand-worked cases."""

import numpy as np
import pytest

from models.aggregation import (
    POLICIES,
    ConfidentPolicy,
    CropScores,
    MaxIdentityPolicy,
    MeanPolicy,
    get_policy,
    identity_scores,
)
from models.config import POLICY_NAMES
from models.errors import ConfigError


def scores(identities: list[int], **per_model: list[float]) -> CropScores:
    return CropScores(
        identities=np.array(identities),
        per_model={m: np.array(p, dtype=np.float64) for m, p in per_model.items()},
    )


class TestConfident:
    rule = ConfidentPolicy().rule

    def test_one_crop_is_its_own_score(self) -> None:
        # The original returned 0.5 here through a squeeze bug; we return the crop's score.
        assert self.rule(np.array([0.93])) == pytest.approx(0.93)

    def test_many_confident_fakes_use_only_those(self) -> None:
        # n=30: 30 // 2.5 = 12.0; 13 crops above 0.8 (> 12 and > 11) -> mean of those 13.
        p = np.array([0.9] * 12 + [1.0] + [0.5] * 17)
        assert self.rule(p) == pytest.approx((0.9 * 12 + 1.0) / 13)

    def test_eleven_fakes_are_not_enough(self) -> None:
        # 11 crops above 0.8 of 12: k > n // 2.5 holds but k > 11 does not -> plain mean.
        p = np.array([0.9] * 11 + [0.1])
        assert self.rule(p) == pytest.approx((0.9 * 11 + 0.1) / 12)

    def test_nearly_all_real_use_only_those(self) -> None:
        # 19 of 20 below 0.2 (> 0.9 * 20 = 18) -> mean of the 19.
        p = np.array([0.1] * 19 + [0.7])
        assert self.rule(p) == pytest.approx(0.1)

    def test_exactly_ninety_percent_real_is_not_enough(self) -> None:
        p = np.array([0.1] * 18 + [0.7, 0.7])
        assert self.rule(p) == pytest.approx((0.1 * 18 + 1.4) / 20)

    def test_mixed_is_plain_mean(self) -> None:
        p = np.array([0.1, 0.5, 0.9, 0.3])
        assert self.rule(p) == pytest.approx(0.45)

    def test_all_fake(self) -> None:
        assert self.rule(np.full(32, 0.95)) == pytest.approx(0.95)

    def test_thresholds_are_parameters(self) -> None:
        lenient = ConfidentPolicy(fake_threshold=0.6, min_fake_count=1, fake_count_divisor=2.5)
        p = np.array([0.7, 0.7, 0.1, 0.3])  # 2 above 0.6 > 4 // 2.5 = 1.0 and > 1
        assert lenient.rule(p) == pytest.approx(0.7)

    def test_applied_per_model_then_averaged(self) -> None:
        s = scores([0] * 20, a=[0.1] * 19 + [0.7], b=[0.5] * 20)
        assert ConfidentPolicy().video_score(s) == pytest.approx((0.1 + 0.5) / 2)


class TestMeanAndMaxIdentity:
    def test_mean_pools_all_crops_of_all_models(self) -> None:
        s = scores([0, 0, 1], a=[0.2, 0.4, 0.9], b=[0.4, 0.6, 0.7])
        assert MeanPolicy().video_score(s) == pytest.approx((0.3 + 0.5 + 0.8) / 3)

    def test_max_identity_flags_the_one_fake_person(self) -> None:
        # Person 0: three real crops; person 1: one fake crop. Mean says real, max-identity fake.
        s = scores([0, 0, 0, 1], a=[0.1, 0.1, 0.1, 0.9])
        assert MeanPolicy().video_score(s) == pytest.approx(0.3)
        assert MaxIdentityPolicy().video_score(s) == pytest.approx(0.9)

    def test_identity_scores(self) -> None:
        s = scores([0, 1, 0, 1], a=[0.2, 0.8, 0.4, 0.6])
        assert identity_scores(MaxIdentityPolicy(), s) == pytest.approx({0: 0.3, 1: 0.7})

    def test_all_real_and_all_fake(self) -> None:
        for value in (0.02, 0.98):
            s = scores([0, 0, 1, 1], a=[value] * 4, b=[value] * 4)
            for name in POLICY_NAMES:
                assert get_policy(name).video_score(s) == pytest.approx(value)


def test_trimmed_max_identity_ignores_a_few_odd_frames() -> None:
    steady = [0.1] * 8 + [0.95, 0.9]  # a real person with two odd frames (blur, a blink)
    s = scores([0] * 10 + [1] * 10, a=steady + [0.7] * 10)
    assert get_policy("trimmed-max-identity").video_score(s) == pytest.approx(0.7)
    alone = scores([0] * 10, a=steady)
    assert get_policy("trimmed-max-identity").video_score(alone) == pytest.approx(0.1)
    assert get_policy("max-identity").video_score(alone) == pytest.approx(0.265)


def test_the_cli_and_settings_know_every_policy() -> None:
    assert set(POLICY_NAMES) == set(POLICIES)


def test_unknown_policy_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="max-identity"):
        get_policy("median")


def test_no_crops_is_an_error_not_a_score() -> None:
    with pytest.raises(ValueError, match="no crops"):
        scores([], a=[])
