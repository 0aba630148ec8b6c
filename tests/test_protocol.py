"""The evaluation protocol: leave-sources-out folds and the figures reported on them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from models.datasets import FAKE, REAL, LabeledVideo
from models.errors import ConfigError
from models.protocol.folds import leave_sources_out, source_units
from models.protocol.metrics import (
    VideoScore,
    base_rate_log_loss,
    equal_error_rate,
    protocol_metrics,
    protocol_report,
    tpr_at_fpr,
)
from models.protocol.tables import report_tables


def clip(name: str, label: int, group: str, subset: str, family: str = "") -> LabeledVideo:
    return LabeledVideo(Path(name), label, group, subset, family or ("none" if label == REAL else "faceswap"))


def research_like() -> list[LabeledVideo]:
    """Sources shaped like the research set: a mixed dataset whose fakes share groups with reals
    across two compressions, one-label repositories, and mixed repositories."""
    videos = []
    for person in range(4):  # ffpp-like: real and fake of one person at c23 and c40
        for compression in ("c23", "c40"):
            videos.append(clip(f"ff{person}{compression}r", REAL, f"ff:{person}", f"ff_{compression}"))
            videos.append(clip(f"ff{person}{compression}f", FAKE, f"ff:{person}", f"ff_{compression}"))
    videos += [clip(f"live{i}", REAL, f"live:{i}", "liveportrait") for i in range(3)]
    videos += [clip(f"w2l{i}", FAKE, f"w2l:{i}", f"wav2lip_{i}", "lipsync") for i in range(3)]
    for repo in ("sad", "hyper", "edt"):
        videos += [clip(f"{repo}r", REAL, f"{repo}:a", repo), clip(f"{repo}f", FAKE, f"{repo}:b", repo,
                                                                     "portrait-animation")]
    return videos


def test_units_join_clips_that_share_a_group_or_a_subset() -> None:
    units = source_units(research_like())
    ffpp = next(u for u in units if any(v.subset == "ff_c23" for v in u))
    assert {v.subset for v in ffpp} == {"ff_c23", "ff_c40"}  # joined through shared groups
    assert len(ffpp) == 16
    sad = next(u for u in units if any(v.subset == "sad" for v in u))
    assert {v.group for v in sad} == {"sad:a", "sad:b"}  # joined through the shared subset


def test_folds_keep_sources_and_people_apart_and_hold_both_labels() -> None:
    videos = research_like()
    folds = leave_sources_out(videos, 3)
    assert sorted(v.path for f in folds for v in f.videos) == sorted(v.path for v in videos)
    for fold in folds:
        assert {v.label for v in fold.videos} == {REAL, FAKE}
        others = [v for f in folds if f is not fold for v in f.videos]
        assert not fold.groups & {v.group for v in others}
        assert not set(fold.sources) & {v.subset for v in others}


def test_folds_refuse_what_cannot_give_every_fold_both_labels() -> None:
    videos = [clip("a", REAL, "g1", "s1"), clip("b", FAKE, "g1", "s1")]
    with pytest.raises(ConfigError, match="one label only"):
        leave_sources_out(videos, 2)
    with pytest.raises(ConfigError, match="at least 2 folds"):
        leave_sources_out(research_like(), 1)


def score(name: str, label: int, p: float, family: str = "", source: str = "s") -> VideoScore:
    return VideoScore(name, label, p, group=name, source=source,
                      family=family or ("none" if label == REAL else "faceswap"))


def test_rates_at_fixed_false_positive_rates() -> None:
    labels = np.array([0] * 10 + [1] * 10)
    reals = np.linspace(0.0, 0.45, 10)  # highest real: 0.45, next 0.40
    fakes = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.42, 0.3, 0.2, 0.1, 0.05])
    scores = np.concatenate([reals, fakes])
    assert tpr_at_fpr(labels, scores, 0.0) == pytest.approx(0.5)  # above every real: 5 fakes
    assert tpr_at_fpr(labels, scores, 0.10) == pytest.approx(0.6)  # one real allowed: 0.42 too
    assert 0.0 < equal_error_rate(labels, scores) < 0.5
    assert equal_error_rate(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 0.0


def test_base_rate_log_loss_is_the_entropy_of_the_label_share() -> None:
    assert base_rate_log_loss(np.array([0, 1])) == pytest.approx(math.log(2))
    assert base_rate_log_loss(np.array([0, 0, 0, 1])) == pytest.approx(
        -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


def test_metrics_use_each_clips_own_threshold_when_it_has_one() -> None:
    scores = [score("r1", REAL, 0.6), score("r2", REAL, 0.2), score("f1", FAKE, 0.7), score("f2", FAKE, 0.4)]
    at_half = protocol_metrics(scores, 0.5)
    assert (at_half.fpr_at_threshold, at_half.tpr_at_threshold) == (0.5, 0.5)
    own = [VideoScore(**{**vars(s), "threshold": 0.65}) for s in scores]
    crossfit = protocol_metrics(own, 0.5)
    assert (crossfit.fpr_at_threshold, crossfit.tpr_at_threshold) == (0.0, 0.5)
    assert crossfit.auc == at_half.auc == 0.75


def test_interval_brackets_the_auc_and_needs_both_labels() -> None:
    rng = np.random.default_rng(0)
    scores = [score(f"r{i}", REAL, float(rng.uniform(0, 0.7))) for i in range(30)]
    scores += [score(f"f{i}", FAKE, float(rng.uniform(0.3, 1.0))) for i in range(30)]
    m = protocol_metrics(scores, 0.5)
    assert m.auc_low < m.auc < m.auc_high
    only_fakes = protocol_metrics([s for s in scores if s.label == FAKE], 0.5)
    assert only_fakes.auc is None and only_fakes.auc_low is None and only_fakes.fpr_at_threshold is None


def test_report_scores_each_family_against_every_real_clip() -> None:
    scores = [score("r1", REAL, 0.1, source="a"), score("r2", REAL, 0.3, source="b"),
              score("swap", FAKE, 0.9, "faceswap", "a"), score("lips", FAKE, 0.2, "lipsync", "c")]
    report = protocol_report(scores, 0.5, {"fold 0": ["r1", "swap"]})
    assert report.by_family["faceswap"].auc == 1.0
    assert report.by_family["lipsync"].auc == 0.5  # 0.2 sits between the two reals
    assert report.by_family["lipsync"].reals == 2
    assert report.by_source["c"].videos == 3  # one-label source: against the other label
    assert report.by_fold["fold 0"].videos == 2
    text = report_tables(report)
    assert "| lipsync | 3 (1) | 0.500" in text and "held-out fold" in text


def test_rank_auc_equals_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    from models.protocol.metrics import rank_auc

    rng = np.random.default_rng(3)
    for _ in range(20):
        labels = rng.integers(0, 2, 40)
        labels[:2] = (0, 1)
        scores = np.round(rng.random(40), 1)  # many ties
        assert rank_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
