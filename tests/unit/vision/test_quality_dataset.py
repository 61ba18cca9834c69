"""The quality model on real photos: the FGrade tomato development sample (300 photos,
human freshness grades 1-10, 1 = freshest), under stratified 5-fold cross-validation.

Targets from the issue: grades 1-3 against 8-10 separated with ROC AUC >= 0.9, and grades
ranked with Spearman >= 0.6, both on held-out photos only. The figures and the command that
prints them are in docs/quality-model.md (``gradeline bench quality``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from api.cli.vision import LabelledFeatures, labelled_features
from vision.quality import (
    FEATURE_NAMES,
    QualityModel,
    cross_validate,
    roc_auc,
    spearman,
    stratified_folds,
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


def test_held_out_fold_meets_targets(tomatoes: LabelledFeatures) -> None:
    """Train on four folds, judge on the fifth, which the fit never saw."""
    folds = stratified_folds(tomatoes.grades, 5, seed=0)
    test = folds[0]
    train = np.setdiff1d(np.arange(len(tomatoes.grades)), test)
    model = QualityModel.fit(tomatoes.features[train], tomatoes.grades[train])
    scores = model.score_features(tomatoes.features[test])
    grades = tomatoes.grades[test]
    extremes = (grades <= 3) | (grades >= 8)
    assert roc_auc(scores[extremes], grades[extremes] >= 8) >= 0.9
    assert spearman(scores, grades) >= 0.6
    assert scores.min() >= 0 and scores.max() <= 1


def test_five_fold_cross_validation_meets_targets(tomatoes: LabelledFeatures) -> None:
    cv = cross_validate(tomatoes.features, tomatoes.grades, folds=5, seed=0)
    assert cv.mean_roc_auc_1_3_vs_8_10 >= 0.9
    assert cv.mean_spearman >= 0.6
    assert cv.pooled_roc_auc_1_3_vs_8_10 >= 0.9
    assert cv.pooled_spearman >= 0.6
    # No fold may be far off the mean: a single lucky fold must not carry the result.
    assert min(f.roc_auc_1_3_vs_8_10 or 0.0 for f in cv.folds) >= 0.8
    assert min(f.spearman for f in cv.folds) >= 0.5
