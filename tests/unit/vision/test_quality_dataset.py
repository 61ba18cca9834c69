"""The quality model on real photos: the FGrade tomato development sample (300 photos of 66
tomatoes, human freshness grades 1-10, 1 = freshest), under cross-validation grouped by
tomato, so no tomato is on both sides of a fold.

The issue's targets (AUC >= 0.93, Spearman >= 0.70, above the colour baseline) are reported
by ``gradeline bench quality`` and in docs/quality-model.md; they are not met on this
sample (0.918 / 0.697 grouped, model file format 3). The floors below were set under the
measured figures of format 2 (0.897 / 0.650) to catch a regression, not to claim the
targets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from api.cli.vision_teach import LabelledFeatures, evaluate, fruit_of, labelled_features
from vision.quality import (
    BASELINE_NAMES,
    FEATURE_NAMES,
    QualityModel,
    grouped_folds,
    roc_auc,
    spearman,
)

LABELS = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "fgrade_tomato_dev" / "labels.csv"


@pytest.fixture(scope="module")
def tomatoes() -> LabelledFeatures:
    # Not skipped when absent: CI has the sample at ../shared, and a silent skip would
    # report an accuracy check as passing without running it.
    assert LABELS.is_file(), f"dataset missing at {LABELS}"
    data = labelled_features(LABELS)
    assert data.problems == []
    assert data.features.shape == (300, len(FEATURE_NAMES))
    return data


def test_fruit_identity_comes_from_the_name_prefix(tomatoes: LabelledFeatures) -> None:
    assert fruit_of("images/3/Bbb050.jpg") == "Bbb"
    assert fruit_of("images/0/AAaa007.jpg") == "AAaa"
    assert fruit_of("images/0/001.jpg") == ""  # the unnamed series is one tomato too
    assert len(set(tomatoes.groups.tolist())) == 66
    assert tomatoes.baseline.shape == (300, len(BASELINE_NAMES))


def test_held_out_tomatoes_are_ranked(tomatoes: LabelledFeatures) -> None:
    """Train on four folds of tomatoes, judge on the fifth, whose tomatoes the fit never saw."""
    folds = grouped_folds(tomatoes.grades, tomatoes.groups, 5, seed=0)
    test = folds[0]
    train = np.setdiff1d(np.arange(len(tomatoes.grades)), test)
    assert not set(tomatoes.groups[test]) & set(tomatoes.groups[train])
    model = QualityModel.fit(tomatoes.features[train], tomatoes.grades[train], groups=tomatoes.groups[train])
    scores = model.score_features(tomatoes.features[test])
    grades = tomatoes.grades[test]
    extremes = (grades <= 3) | (grades >= 8)
    assert roc_auc(scores[extremes], grades[extremes] >= 8) >= 0.85
    assert spearman(scores, grades) >= 0.55
    assert scores.min() >= 0 and scores.max() <= 1


def test_grouped_cross_validation_beats_the_colour_baseline(tomatoes: LabelledFeatures) -> None:
    ev = evaluate(tomatoes, "grouped", 5, 0)
    assert ev.protocol.startswith("grouped by fruit (66 fruit")
    assert ev.model.mean_roc_auc_1_3_vs_8_10 >= 0.85
    assert ev.model.mean_spearman >= 0.6
    assert ev.model.mean_roc_auc_1_3_vs_8_10 > ev.baseline.mean_roc_auc_1_3_vs_8_10
    assert ev.model.mean_spearman > ev.baseline.mean_spearman
    low, high = ev.interval_spearman
    assert low < ev.model.pooled_spearman < high
