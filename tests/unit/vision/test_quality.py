"""The quality model's maths and features, against exact ground truth and synthetic fruit."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.photo import NoFruitFound, segment_fruit, segment_fruits
from vision.quality import (
    _GRADIENT_NAMES,
    FEATURE_NAMES,
    FORMAT_VERSION,
    QualityModel,
    QualityModelError,
    _gradient_statistics,
    _lbp_histogram,
    bootstrap_interval,
    cross_validate,
    extract_features,
    grouped_folds,
    roc_auc,
    spearman,
    stratified_folds,
)


def _feature(features: np.ndarray, name: str) -> float:
    return float(features[FEATURE_NAMES.index(name)])


# --- metrics -----------------------------------------------------------------------------


def test_spearman_exact_values() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ties share their mean rank: ranks x = 1, 2.5, 2.5, 4 against 1, 2, 3, 4.
    x_ranks = np.array([1, 2.5, 2.5, 4]) - 2.5
    y_ranks = np.array([1, 2, 3, 4]) - 2.5
    expected = (x_ranks @ y_ranks) / np.sqrt((x_ranks @ x_ranks) * (y_ranks @ y_ranks))
    assert spearman([5, 7, 7, 9], [1, 2, 3, 4]) == pytest.approx(expected)


def test_roc_auc_exact_values() -> None:
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == pytest.approx(1.0)
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == pytest.approx(0.0)
    # Pairs (pos, neg): (0.5, 0.1) win, (0.5, 0.5) tie, (0.3, 0.1) win, (0.3, 0.5) loss -> 2.5 / 4.
    assert roc_auc([0.1, 0.5, 0.5, 0.3], [False, False, True, True]) == pytest.approx(0.625)
    with pytest.raises(ValueError):
        roc_auc([0.1, 0.2], [True, True])


def test_grouped_folds_keep_each_fruit_in_one_fold() -> None:
    grades = np.repeat(np.arange(1, 11), 30)
    groups = np.arange(300) // 5  # 60 fruit, five photos each
    folds = grouped_folds(grades, groups, 5, seed=3)
    assert sorted(np.concatenate(folds).tolist()) == list(range(300))
    for k, test in enumerate(folds):
        others = np.concatenate([f for j, f in enumerate(folds) if j != k])
        assert not set(groups[test]) & set(groups[others])
    with pytest.raises(ValueError, match="fruit"):
        grouped_folds(grades[:10], np.zeros(10), 5)


def test_bootstrap_interval_resamples_whole_fruit() -> None:
    rng = np.random.default_rng(0)
    grades = np.repeat(np.arange(1, 11, dtype=float), 20)
    groups = np.arange(200) // 4
    good = grades + rng.normal(scale=1.0, size=200)
    low, high = bootstrap_interval(spearman, good, grades, groups, resamples=300)
    assert low < spearman(good, grades) < high
    assert low > 0.8 and high <= 1.0
    # resampling photos one by one would treat a fruit's photos as independent evidence;
    # by fruit, a prediction that is right for some fruit only has a wider interval
    per_fruit_noise = grades + np.repeat(rng.normal(scale=3.0, size=50), 4)
    wide_low, wide_high = bootstrap_interval(spearman, per_fruit_noise, grades, groups, resamples=300)
    assert wide_high - wide_low > high - low


def test_stratified_folds_partition_and_balance() -> None:
    grades = np.repeat(np.arange(1, 11), 30)
    folds = stratified_folds(grades, 5, seed=7)
    assert sorted(np.concatenate(folds).tolist()) == list(range(300))
    for test in folds:
        assert np.all(np.unique(grades[test], return_counts=True)[1] == 6)
    assert [f.tolist() for f in folds] == [f.tolist() for f in stratified_folds(grades, 5, seed=7)]


# --- model -------------------------------------------------------------------------------


def _linear_data(n: int = 200, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURE_NAMES))) * rng.uniform(0.1, 10, size=len(FEATURE_NAMES))
    true_w = np.zeros(len(FEATURE_NAMES))
    true_w[[0, 5, 12]] = [0.5, -0.2, 0.05]
    grade = 5.5 + x @ true_w
    return x, grade, true_w


def test_fit_recovers_a_linear_grade() -> None:
    x, grade, true_w = _linear_data(n=600)  # several rows per feature, as in real training sets
    model = QualityModel.fit(x, grade, ridge_lambda=1e-6)
    # Inputs are clipped to the training percentiles, which bends the fit a little at the
    # tails; rows clear of the clip are predicted closely.
    signal = [0, 5, 12]  # the features the grade depends on
    clear = np.all((x[:, signal] > np.array(model.clip_low)[signal]) & (x[:, signal] < np.array(model.clip_high)[signal]), axis=1)
    assert clear.sum() > 50
    assert np.allclose(model.grade_value(x[clear]), grade[clear], atol=0.15 * grade.std())
    # Weights are stored for standardised features: undo the scale to compare.
    assert np.allclose(np.array(model.weights) / np.array(model.scale), true_w, atol=0.1 * np.abs(true_w).max())
    assert spearman(model.grade_value(x), grade) > 0.99


def test_scores_are_clipped_to_unit_interval_and_ordered() -> None:
    x, grade, _ = _linear_data()
    model = QualityModel.fit(x, grade)
    scores = model.score_features(x)
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    assert spearman(scores, grade) > 0.99
    # a fit whose estimate runs past the worst grade seen still scores 1, not more
    beyond = dataclasses.replace(model, intercept=model.intercept + 100.0)
    assert beyond.predict_features(x[0]).quality_score == 1.0
    assert beyond.predict_features(x[0]).predicted_grade == int(model.grade_worst)


def test_lambda_is_chosen_by_inner_cv_from_the_grid() -> None:
    x, grade, _ = _linear_data()
    noisy = grade + np.random.default_rng(1).normal(scale=0.5, size=len(grade))
    model = QualityModel.fit(x, noisy, lambdas=(0.1, 1000.0))
    assert model.ridge_lambda == 0.1  # a strong pull to zero loses on a real linear signal
    # pure noise: the strong pull wins
    model = QualityModel.fit(x, np.random.default_rng(2).normal(size=len(grade)), lambdas=(0.1, 1000.0))
    assert model.ridge_lambda == 1000.0


def test_inner_search_is_grouped_by_fruit() -> None:
    """Photos of one fruit share a random offset the features cannot see. Folds that split a
    fruit reward memorising it (weak regularisation); folds by fruit do not."""
    rng = np.random.default_rng(5)
    fruit = np.repeat(np.arange(40), 6)
    identity = rng.normal(size=(40, len(FEATURE_NAMES)))[fruit] * 3 + rng.normal(size=(240, len(FEATURE_NAMES))) * 0.1
    grade = np.repeat(rng.normal(size=40), 6) * 3 + 5  # the grade is the fruit's, not the features'
    by_photo = QualityModel.fit(identity, grade, lambdas=(0.1, 1e5))
    by_fruit = QualityModel.fit(identity, grade, groups=fruit, lambdas=(0.1, 1e5))
    assert by_photo.ridge_lambda == 0.1
    assert by_fruit.ridge_lambda == 1e5


def test_a_photo_unlike_the_training_set_is_flagged() -> None:
    x, grade, _ = _linear_data(n=300)
    model = QualityModel.fit(x, grade)
    inside = [model.assess_features(row) for row in x[:50]]
    assert sum(a.out_of_distribution for a in inside) <= 1
    odd = x[0].copy()
    odd[[3, 7]] += 12 * np.array(model.scale)[[3, 7]]  # two features far beyond anything seen
    outside = model.assess_features(odd)
    assert outside.out_of_distribution and outside.predicted_grade is None
    assert outside.distance > model.ood_threshold


def test_save_load_round_trip(tmp_path: Path) -> None:
    x, grade, _ = _linear_data()
    model = QualityModel.fit(x, grade)
    path = tmp_path / "model.json"
    model.save(path)
    data = json.loads(path.read_text())
    assert data["format_version"] == FORMAT_VERSION == 3
    assert data["feature_names"] == list(FEATURE_NAMES)
    assert set(data["normalisation"]) == {"mean", "scale"}
    assert path.stat().st_size < 160_000  # small enough to read and to mail
    loaded = QualityModel.load(path)
    assert np.allclose(loaded.grade_value(x), model.grade_value(x))
    assert np.allclose(loaded.distance(x), model.distance(x))


@pytest.mark.parametrize("version", [1, 2])
def test_a_model_file_of_an_earlier_feature_set_asks_for_retraining(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": "gradeline-quality-model", "format_version": version, "weights": []}))
    with pytest.raises(QualityModelError, match="train it again"):
        QualityModel.load(path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format_version=99), "format version"),
        (lambda d: d.update(feature_names=["a", "b"]), "differ"),
        (lambda d: d.pop("weights"), "malformed"),
        (lambda d: d.update(format="something-else"), "not a gradeline quality model"),
    ],
)
def test_bad_model_files_are_refused(tmp_path: Path, mutate, message: str) -> None:
    x, grade, _ = _linear_data()
    data = QualityModel.fit(x, grade).to_json()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(QualityModelError, match=message):
        QualityModel.load(path)


def test_unreadable_model_file(tmp_path: Path) -> None:
    with pytest.raises(QualityModelError):
        QualityModel.load(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(QualityModelError, match="not JSON"):
        QualityModel.load(tmp_path / "junk.json")


def test_cross_validate_on_a_learnable_signal() -> None:
    x, grade, _ = _linear_data(n=300)
    grades = np.clip(np.round(grade), 1, 10)
    cv = cross_validate(x, grades, test_folds=stratified_folds(grades, 5, seed=0))
    assert len(cv.folds) == 5
    assert cv.mean_spearman > 0.9
    assert all(f.train_count + f.test_count == 300 for f in cv.folds)


# --- features on synthetic fruit ----------------------------------------------------------


def _fruit(size_px: int = 240, *, wrinkles: int = 0, dark_spot: bool = False, highlights: int = 1, scale: float = 1.0) -> np.ndarray:
    """A red ellipse on white, shaded like a sphere, with optional wrinkles, spot, glints."""
    s = int(size_px * scale)
    image = np.full((s, s, 3), 255, np.uint8)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    cx, cy, rx, ry = s / 2, s / 2, 0.42 * s, 0.36 * s
    r2 = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    inside = r2 < 1
    shade = np.sqrt(np.clip(1 - r2, 0, 1)) * 0.35 + 0.65
    if wrinkles:
        # Fine creases: sinusoidal ridges in lightness across the fruit.
        shade = shade * (1 - 0.12 * (np.sin(xx / s * wrinkles * 2 * np.pi) > 0.7))
    colour = np.array([40, 50, 200], np.float32)  # BGR red
    body = (shade[..., None] * colour).clip(0, 255).astype(np.uint8)
    image[inside] = body[inside]
    if dark_spot:
        cv2.circle(image, (int(cx + 0.15 * s), int(cy)), int(0.07 * s), (20, 30, 50), -1, cv2.LINE_AA)
    for k in range(highlights):
        angle = 2 * np.pi * k / max(highlights, 1)
        hx = int(cx - 0.12 * s + (0.18 * s * np.cos(angle) if highlights > 1 else 0))
        hy = int(cy - 0.1 * s + (0.14 * s * np.sin(angle) if highlights > 1 else 0))
        cv2.circle(image, (hx, hy), max(2, int(0.025 * s)), (250, 250, 250), -1, cv2.LINE_AA)
    return image


def _features(image: np.ndarray) -> np.ndarray:
    return extract_features(image, segment_fruit(image))


def test_features_have_the_documented_length_and_are_finite() -> None:
    f = _features(_fruit())
    assert f.shape == (len(FEATURE_NAMES),)
    assert np.all(np.isfinite(f))


def test_wrinkles_raise_texture_features() -> None:
    smooth, wrinkled = _features(_fruit()), _features(_fruit(wrinkles=14))
    for name in ("log_dog_fine", "log_dog_mid", "log_ridge_1", "log_ridge_2", "log_gradient_energy",
                 "log_gradient_p90_s1", "log_step_mean_2px"):
        assert _feature(wrinkled, name) > _feature(smooth, name) + 0.3, name
    # creased skin has fewer flat patterns (code 0 at radius 2) than smooth skin
    assert _feature(wrinkled, "lbp_r2_0") < _feature(smooth, "lbp_r2_0") - 0.05


def test_local_binary_patterns_of_a_flat_field_and_a_step() -> None:
    """Exact codes: on flat skin no neighbour is brighter (code 0 everywhere); along a
    vertical step of 10 L*, the dark column's three right-hand neighbours (at -45, 0 and
    45 degrees, sampled bilinearly) are brighter, a uniform pattern with 3 ones."""
    flat = np.full((30, 30), 50.0, np.float32)
    zone = np.zeros((30, 30), bool)
    zone[5:25, 5:25] = True
    assert _lbp_histogram(flat, zone, 1) == pytest.approx([1.0] + [0.0] * 9)
    step = flat.copy()
    step[:, 15:] = 60.0
    column = np.zeros_like(zone)
    column[5:25, 14] = True
    shares = _lbp_histogram(step, column, 1)
    assert shares[3] == pytest.approx(1.0)
    whole = _lbp_histogram(step, zone, 1)
    assert sum(whole) == pytest.approx(1.0)
    # the bright column's left neighbours are darker, so it stays 0 like the flat skin
    assert whole[0] == pytest.approx(19 / 20) and whole[3] == pytest.approx(1 / 20)


def test_parallel_creases_are_more_coherent_than_pitting() -> None:
    """Wrinkles run side by side; mould and pitting have no direction."""
    yy, xx = np.mgrid[0:160, 0:160].astype(np.float32)
    zone = np.hypot(xx - 80, yy - 80) < 70
    creases = (50 + 5 * np.sin(xx / 3.0)).astype(np.float32)
    pits = (50 + 5 * cv2.GaussianBlur(np.random.default_rng(0).normal(size=(160, 160)).astype(np.float32), (0, 0), 2) * 4)
    names = list(_GRADIENT_NAMES)
    a, b = _gradient_statistics(creases, zone, 50.0), _gradient_statistics(pits.astype(np.float32), zone, 50.0)
    for sigma in (1, 2, 4):
        k = names.index(f"gradient_coherence_s{sigma}")
        assert a[k] > 0.9 > b[k] + 0.3, sigma
    flat = _gradient_statistics(np.full((160, 160), 50.0, np.float32), zone, 50.0)
    assert all(a[names.index(f"log_step_mean_{d}px")] > flat[names.index(f"log_step_mean_{d}px")] + 2 for d in (1, 2, 4, 8))


def test_dark_spot_raises_the_shares_relative_to_the_own_skin() -> None:
    clean, spotted = _features(_fruit()), _features(_fruit(dark_spot=True))
    for name in ("log_darker_20_share", "log_blemish_share", "log_discoloured_share", "log_largest_patch_share"):
        assert _feature(spotted, name) > _feature(clean, name) + 1.0, name


def test_a_darker_variety_is_not_a_blemish() -> None:
    """Darkness is judged against the fruit's own skin: a uniformly darker fruit has no more
    blemish, dark or discoloured surface than a lighter one."""
    light = _fruit()
    dark = (light.astype(np.float32) * np.where(light < 250, 0.6, 1.0)).astype(np.uint8)
    a, b = _features(light), _features(dark)
    assert _feature(b, "lab_l_mean") < _feature(a, "lab_l_mean") - 10
    for name in ("log_darker_10_share", "log_blemish_share", "log_discoloured_share", "log_soft_spot_share"):
        assert np.exp(_feature(b, name)) == pytest.approx(np.exp(_feature(a, name)), abs=0.01), name


def test_scattered_highlights_are_counted() -> None:
    one, many = _features(_fruit(highlights=1)), _features(_fruit(highlights=6))
    assert np.exp(_feature(one, "log_highlight_blobs")) - 1 == pytest.approx(1)
    assert np.exp(_feature(many, "log_highlight_blobs")) - 1 == pytest.approx(6)


def test_features_do_not_depend_on_photo_resolution() -> None:
    small = _features(_fruit(wrinkles=10, scale=1.0))
    large = _features(_fruit(wrinkles=10, scale=2.0))
    for name in ("lab_l_mean", "lab_a_p50", "chroma_p50", "log_dog_mid", "log_ridge_2", "solidity"):
        assert _feature(large, name) == pytest.approx(_feature(small, name), rel=0.1, abs=0.15), name


def test_score_from_image_and_mask_is_in_unit_interval() -> None:
    images = [_fruit(wrinkles=w) for w in (0, 0, 6, 10, 14, 18)] * 2
    grades = np.array([1, 1, 4, 6, 8, 10] * 2, dtype=float)
    x = np.array([_features(i) for i in images])
    model = QualityModel.fit(x, grades)
    smooth, wrinkled = _fruit(), _fruit(wrinkles=16)
    s_smooth = model.score(smooth, segment_fruit(smooth))
    s_wrinkled = model.score(wrinkled, segment_fruit(wrinkled))
    assert 0.0 <= s_smooth < s_wrinkled <= 1.0


def test_empty_or_mismatched_mask_is_refused() -> None:
    image = _fruit()
    with pytest.raises(ValueError, match="empty"):
        extract_features(image, np.zeros(image.shape[:2], np.uint8))
    with pytest.raises(ValueError, match="shape"):
        extract_features(image, np.ones((5, 5), np.uint8))


# --- photo segmentation (vision.photo), which the features rely on ----------------------


def test_segmentation_fills_highlights_and_keeps_fruit_cut_by_the_crop() -> None:
    full = _fruit(highlights=3)
    truth = segment_fruit(full) > 0
    crop = (slice(40, 200), slice(0, 240))  # the 240 px photo cut at top and bottom
    cut = segment_fruit(np.ascontiguousarray(full[crop])) > 0
    # Highlights are near-white like the background, yet sit inside the fruit.
    assert np.all(truth[120 - 20 : 120 + 5, 120 - 45 : 120 + 10])
    assert cut.sum() == pytest.approx(truth[crop].sum(), rel=0.02)
    expected_area = np.pi * (0.42 * 240) * (0.36 * 240)
    assert truth.sum() == pytest.approx(expected_area, rel=0.02)


def test_segmentation_on_a_grey_background_finds_each_fruit() -> None:
    image = np.full((200, 400, 3), 128, np.uint8)
    cv2.circle(image, (100, 100), 50, (40, 50, 200), -1)
    cv2.circle(image, (300, 100), 30, (40, 180, 60), -1)
    masks = segment_fruits(image)
    assert len(masks) == 2
    assert (masks[0] > 0).sum() == pytest.approx(np.pi * 50**2, rel=0.03)
    with pytest.raises(NoFruitFound):
        segment_fruits(np.full((100, 100, 3), 128, np.uint8))
