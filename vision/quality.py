"""The teachable quality model: surface features of one fruit, and a small ridge model on them.

Owns (1) ``extract_features``: generic, physically motivated measures of a fruit's surface
from its image and mask (colour in CIELAB/HSV, dull, dark and pale shares, wrinkle and
texture energy, gloss, shape irregularity, local blemishes); (2) ``QualityModel``: a
standardised ridge regression from those features to a human grade, fitted in numpy in
well under a second, stored as a small inspectable JSON file; (3) honest evaluation helpers
(stratified k-fold, ROC AUC, Spearman). Reading photos and label files is the caller's job;
nothing here opens files except ``QualityModel.save``/``load``.

Scores run from 0 (best grade seen in training) to 1 (worst); grades are ordinal numbers
with 1 = best, as staff write them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "FEATURE_NAMES",
    "FORMAT_VERSION",
    "CrossValidation",
    "FoldResult",
    "QualityModel",
    "QualityModelError",
    "QualityPrediction",
    "cross_validate",
    "extract_features",
    "roc_auc",
    "spearman",
    "stratified_folds",
]

FORMAT_VERSION = 1

# Texture and blemish measures depend on scale; every fruit is resampled so its equivalent
# diameter is this many pixels, which makes a wrinkle on a small photo count like one on a
# large photo.
_NORMALISED_DIAMETER_PX = 160
# The outer rim of a fruit's silhouette is foreshortened, darker and mixed with background;
# surface statistics use the inside only.
_RIM_SHARE = 0.06

# Shares, counts and texture energies are heavy-tailed (most fruit near zero, a few far out);
# the model sees their logarithm so one rotten fruit does not dominate the fit.
_LOG_FLOOR = 1e-3

FEATURE_NAMES: tuple[str, ...] = (
    # colour of the skin (highlights excluded)
    "lab_l_mean",  # lightness
    "lab_a_mean",  # green (-) .. red (+)
    "lab_b_mean",  # blue (-) .. yellow (+)
    "chroma_mean",  # colourfulness in Lab; drops as skin dulls
    "hue_angle_deg",  # atan2(b, a): red ~ 30 deg, orange ~ 50, yellow ~ 90
    "lab_l_std",  # patchiness of lightness
    "chroma_std",  # patchiness of colour
    "lab_l_p10",  # lightness of the darkest tenth of the skin
    "hsv_saturation_mean",
    "hsv_saturation_p10",  # saturation of the dullest tenth
    # shares of the surface (log)
    "log_dull_share",  # low saturation: pale, papery or mouldy patches
    "log_dark_share",  # dark: bruises, rot, sunken spots
    "log_pale_share",  # much lighter than the skin yet not a highlight: mould, dried tissue
    "log_blemish_share",  # spots clearly darker than the skin around them
    "log_specular_share",  # glossy highlights
    # gloss and texture (log)
    "log_highlight_blobs",  # turgid skin gives one compact highlight; wrinkled skin scatters it
    "log_dog_fine",  # lightness detail at 0.7-1.5 px (of a 160 px fruit): fine wrinkles
    "log_dog_mid",  # 1.5-3 px
    "log_dog_coarse",  # 3-6 px: folds, dents
    "log_ridge_1",  # Hessian ridge strength at sigma 1, 2, 4 px: creases of each width
    "log_ridge_2",
    "log_ridge_4",
    "log_edge_density",  # share of skin on a lightness edge
    "log_gradient_energy",  # mean lightness gradient, general roughness
    # shape
    "solidity",  # area / convex hull area: dents and collapse
    "log_outline_roughness_px",  # outline wobble around its smoothed self, away from image edges
)


class QualityModelError(Exception):
    """A model file is unreadable, of another format version, or inconsistent."""


def _interior_mask(mask: np.ndarray, diameter_px: float) -> np.ndarray:
    rim_px = max(1, int(round(diameter_px * _RIM_SHARE)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rim_px + 1, 2 * rim_px + 1))
    return cv2.erode(mask, kernel) > 0


def _normalised_crop(image_bgr: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(mask)
    if ys.size < 50:
        raise ValueError("fruit mask is empty or too small to measure")
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    diameter_px = math.sqrt(4.0 * float(ys.size) / math.pi)
    factor = _NORMALISED_DIAMETER_PX / diameter_px
    size = (max(1, round((right - left) * factor)), max(1, round((bottom - top) * factor)))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    crop_img = cv2.resize(image_bgr[top:bottom, left:right], size, interpolation=interpolation)
    crop_mask = cv2.resize(mask[top:bottom, left:right], size, interpolation=cv2.INTER_NEAREST)
    return crop_img, (crop_mask > 0).astype(np.uint8) * 255


def _share(selected: np.ndarray, within: np.ndarray) -> float:
    total = int(within.sum())
    return float((selected & within).sum()) / total if total else 0.0


def _log(value: float) -> float:
    return math.log(value + _LOG_FLOOR)


def _ridge_strength(lightness: np.ndarray, sigma: float) -> np.ndarray:
    """Largest absolute Hessian eigenvalue, scale-normalised (sigma^2): crease strength."""
    g = cv2.GaussianBlur(lightness, (0, 0), sigma)
    dxx = cv2.Sobel(g, cv2.CV_32F, 2, 0)
    dyy = cv2.Sobel(g, cv2.CV_32F, 0, 2)
    dxy = cv2.Sobel(g, cv2.CV_32F, 1, 1)
    half_trace = (dxx + dyy) / 2.0
    root = np.sqrt(((dxx - dyy) / 2.0) ** 2 + dxy**2)
    return np.asarray(np.abs(half_trace) + root) * sigma * sigma


def _dog_rms(lightness: np.ndarray, zone: np.ndarray, fine: float, coarse: float) -> float:
    band = cv2.GaussianBlur(lightness, (0, 0), fine) - cv2.GaussianBlur(lightness, (0, 0), coarse)
    return float(np.sqrt(np.mean(band[zone] ** 2)))


def _outline_roughness_px(fruit: np.ndarray) -> float:
    contours, _ = cv2.findContours(fruit, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    points = max(contours, key=cv2.contourArea)[:, 0, :].astype(np.float64)
    if len(points) < 40:
        return 0.0
    taps = np.exp(-0.5 * (np.arange(-15, 16) / 5.0) ** 2)
    taps /= taps.sum()
    wrapped = np.concatenate([points[-15:], points, points[:15]])
    smooth = np.stack([np.convolve(wrapped[:, i], taps, "valid") for i in (0, 1)], axis=1)
    height, width = fruit.shape
    # Where a close crop cuts the fruit, the outline is the image edge, not the fruit.
    away = (points[:, 0] > 1) & (points[:, 1] > 1) & (points[:, 0] < width - 2) & (points[:, 1] < height - 2)
    if not away.any():
        return 0.0
    return float(np.linalg.norm(points - smooth, axis=1)[away].mean())


def extract_features(image_bgr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The feature vector (order of ``FEATURE_NAMES``) for one fruit.

    ``mask`` is non-zero on the fruit (uint8 or bool, image-sized). Raises ``ValueError``
    when the mask is empty or does not match the image.
    """
    if mask.shape[:2] != image_bgr.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image_bgr.shape}")
    img, fruit = _normalised_crop(image_bgr, (mask > 0).astype(np.uint8) * 255)
    inside = _interior_mask(fruit, _NORMALISED_DIAMETER_PX)
    if inside.sum() < 50:
        inside = fruit > 0

    unit = img.astype(np.float32) / 255.0
    lab = cv2.cvtColor(unit, cv2.COLOR_BGR2Lab)
    hsv = cv2.cvtColor(unit, cv2.COLOR_BGR2HSV)  # H 0..360, S and V 0..1
    lightness, a_star, b_star = lab[..., 0], lab[..., 1], lab[..., 2]
    saturation, value = hsv[..., 1], hsv[..., 2]
    chroma = np.hypot(a_star, b_star)

    # Highlights are the light source, not the skin: keep them out of colour statistics.
    specular = (value > 0.85) & (saturation < 0.45)
    skin = inside & ~specular
    if skin.sum() < 50:
        skin = inside
    # Highlights also have sharp edges of their own; measure texture away from them.
    texture_zone = skin & (cv2.dilate(specular.astype(np.uint8), np.ones((5, 5), np.uint8)) == 0)
    if texture_zone.sum() < 50:
        texture_zone = skin

    l_skin = lightness[skin]
    a_mean = float(a_star[skin].mean())
    b_mean = float(b_star[skin].mean())
    l_median = float(np.median(l_skin))

    # A blemish is darker than the skin around it, not than the whole fruit: compare with a
    # broad local median so shading across a round fruit does not count.
    l8 = np.clip(lightness * 2.55, 0, 255).astype(np.uint8)
    local = cv2.medianBlur(l8, 21).astype(np.float32) / 2.55
    blemish = (local - lightness) > 12.0

    smooth = cv2.GaussianBlur(lightness, (0, 0), 1.0)
    gradient = np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    edges = cv2.Canny(l8, 20, 50) > 0
    highlight_blobs = cv2.connectedComponents((specular & inside).astype(np.uint8))[0] - 1

    contours, _ = cv2.findContours(fruit, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=cv2.contourArea)
    hull_area = cv2.contourArea(cv2.convexHull(outline))

    values = {
        "lab_l_mean": float(l_skin.mean()),
        "lab_a_mean": a_mean,
        "lab_b_mean": b_mean,
        "chroma_mean": float(chroma[skin].mean()),
        "hue_angle_deg": math.degrees(math.atan2(b_mean, a_mean)),
        "lab_l_std": float(l_skin.std()),
        "chroma_std": float(chroma[skin].std()),
        "lab_l_p10": float(np.percentile(l_skin, 10)),
        "hsv_saturation_mean": float(saturation[skin].mean()),
        "hsv_saturation_p10": float(np.percentile(saturation[skin], 10)),
        "log_dull_share": _log(_share(saturation < 0.45, skin)),
        "log_dark_share": _log(_share(lightness < 30.0, skin)),
        "log_pale_share": _log(_share((lightness > l_median + 20.0) & (saturation < 0.6), skin)),
        "log_blemish_share": _log(_share(blemish, texture_zone)),
        "log_specular_share": _log(_share(specular, inside)),
        "log_highlight_blobs": math.log1p(highlight_blobs),
        "log_dog_fine": _log(_dog_rms(lightness, texture_zone, 0.7, 1.5)),
        "log_dog_mid": _log(_dog_rms(lightness, texture_zone, 1.5, 3.0)),
        "log_dog_coarse": _log(_dog_rms(lightness, texture_zone, 3.0, 6.0)),
        "log_ridge_1": _log(float(_ridge_strength(lightness, 1.0)[texture_zone].mean())),
        "log_ridge_2": _log(float(_ridge_strength(lightness, 2.0)[texture_zone].mean())),
        "log_ridge_4": _log(float(_ridge_strength(lightness, 4.0)[texture_zone].mean())),
        "log_edge_density": _log(_share(edges, texture_zone)),
        "log_gradient_energy": _log(float(gradient[texture_zone].mean())),
        "solidity": float(cv2.contourArea(outline) / hull_area) if hull_area > 0 else 1.0,
        "log_outline_roughness_px": _log(_outline_roughness_px(fruit)),
    }
    return np.array([values[name] for name in FEATURE_NAMES], dtype=np.float64)


@dataclass(frozen=True)
class QualityPrediction:
    quality_score: float  # 0 = best grade seen in training, 1 = worst
    predicted_grade: int


# Ridge strengths tried by inner cross-validation, in units of "samples": lambda = 1 barely
# regularises 300 photos, 300 pulls weights strongly toward zero.
DEFAULT_RIDGE_LAMBDAS: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)


@dataclass(frozen=True)
class QualityModel:
    """Standardised ridge regression: grade ~ intercept + weights . (x - mean) / scale."""

    feature_names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float
    grade_best: float
    grade_worst: float
    ridge_lambda: float
    samples: int
    notes: dict[str, object] = field(default_factory=dict)

    # --- fitting -----------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        grades: Sequence[float] | np.ndarray,
        *,
        ridge_lambda: float | None = None,
        lambdas: Sequence[float] = DEFAULT_RIDGE_LAMBDAS,
        inner_folds: int = 5,
        seed: int = 0,
        feature_names: Sequence[str] = FEATURE_NAMES,
    ) -> QualityModel:
        """Fit on ``features`` (rows in ``FEATURE_NAMES`` order) and ordinal ``grades``.

        Without ``ridge_lambda``, the strength is picked from ``lambdas`` by inner stratified
        cross-validation on the training rows only (lowest squared error), so no held-out photo
        ever influences it.
        """
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(grades, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(feature_names):
            raise ValueError(f"features must be (n, {len(feature_names)}), got {x.shape}")
        if x.shape[0] != y.shape[0]:
            raise ValueError("features and grades differ in length")
        if len(np.unique(y)) < 2:
            raise ValueError("need at least two different grades to learn from")
        if not np.all(np.isfinite(x)):
            raise ValueError("features contain NaN or infinity")
        if ridge_lambda is None:
            ridge_lambda = _pick_lambda(x, y, lambdas, inner_folds, seed, feature_names)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-9] = 1.0  # a constant feature carries no information; keep it inert
        z = (x - mean) / scale
        intercept = float(y.mean())
        gram = z.T @ z + ridge_lambda * np.eye(z.shape[1])
        weights = np.linalg.solve(gram, z.T @ (y - intercept))
        return cls(
            feature_names=tuple(feature_names),
            mean=tuple(float(v) for v in mean),
            scale=tuple(float(v) for v in scale),
            weights=tuple(float(v) for v in weights),
            intercept=intercept,
            grade_best=float(y.min()),
            grade_worst=float(y.max()),
            ridge_lambda=float(ridge_lambda),
            samples=int(x.shape[0]),
        )

    # --- prediction --------------------------------------------------------------------

    def grade_value(self, features: np.ndarray) -> np.ndarray:
        """The continuous grade estimate for one feature vector or a matrix of them."""
        x = np.atleast_2d(np.asarray(features, dtype=np.float64))
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        out: np.ndarray = self.intercept + z @ np.asarray(self.weights)
        return out

    def score_features(self, features: np.ndarray) -> np.ndarray:
        """Quality score in [0, 1] (0 = best) for one or many feature vectors."""
        span = self.grade_worst - self.grade_best
        return np.clip((self.grade_value(features) - self.grade_best) / span, 0.0, 1.0)

    def predict_features(self, features: np.ndarray) -> QualityPrediction:
        value = float(self.grade_value(features)[0])
        span = self.grade_worst - self.grade_best
        score = min(1.0, max(0.0, (value - self.grade_best) / span))
        grade = int(round(min(self.grade_worst, max(self.grade_best, value))))
        return QualityPrediction(quality_score=score, predicted_grade=grade)

    def score(self, image_bgr: np.ndarray, mask: np.ndarray) -> float:
        """Quality score in [0, 1] (0 = best) for the fruit under ``mask``."""
        return float(self.score_features(extract_features(image_bgr, mask))[0])

    def predict(self, image_bgr: np.ndarray, mask: np.ndarray) -> QualityPrediction:
        return self.predict_features(extract_features(image_bgr, mask))

    # --- storage -----------------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {
            "format": "gradeline-quality-model",
            "format_version": FORMAT_VERSION,
            "model": "standardised ridge regression on grade (1 = best)",
            "feature_names": list(self.feature_names),
            "normalisation": {"mean": list(self.mean), "scale": list(self.scale)},
            "weights": list(self.weights),
            "intercept": self.intercept,
            "grade_best": self.grade_best,
            "grade_worst": self.grade_worst,
            "ridge_lambda": self.ridge_lambda,
            "samples": self.samples,
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, data: object, source: str = "<model>") -> QualityModel:
        if not isinstance(data, dict) or data.get("format") != "gradeline-quality-model":
            raise QualityModelError(f"{source}: not a gradeline quality model")
        if data.get("format_version") != FORMAT_VERSION:
            raise QualityModelError(
                f"{source}: format version {data.get('format_version')!r}, this gradeline reads {FORMAT_VERSION}"
            )
        try:
            names = tuple(str(n) for n in data["feature_names"])
            norm = data["normalisation"]
            model = cls(
                feature_names=names,
                mean=tuple(float(v) for v in norm["mean"]),
                scale=tuple(float(v) for v in norm["scale"]),
                weights=tuple(float(v) for v in data["weights"]),
                intercept=float(data["intercept"]),
                grade_best=float(data["grade_best"]),
                grade_worst=float(data["grade_worst"]),
                ridge_lambda=float(data["ridge_lambda"]),
                samples=int(data["samples"]),
                notes=dict(data.get("notes", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise QualityModelError(f"{source}: malformed model: {exc}") from exc
        if names != FEATURE_NAMES:
            # The weights only mean something for the features they were fitted on.
            raise QualityModelError(f"{source}: model features {list(names)} differ from this gradeline's")
        if not len(model.mean) == len(model.scale) == len(model.weights) == len(names):
            raise QualityModelError(f"{source}: feature, normalisation and weight lengths differ")
        if not model.grade_worst > model.grade_best:
            raise QualityModelError(f"{source}: grade_worst must exceed grade_best")
        return model

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> QualityModel:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise QualityModelError(f"{path}: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise QualityModelError(f"{path}: not JSON: {exc}") from exc
        return cls.from_json(data, str(path))


# --- evaluation ------------------------------------------------------------------------


def stratified_folds(grades: Sequence[float] | np.ndarray, folds: int, seed: int = 0) -> list[np.ndarray]:
    """Test-row indices for each of ``folds`` folds, every grade spread evenly over them.

    Rows are sorted by grade (ties in random order) and dealt to the folds in turn, so
    each fold gets the same share of every grade; this works for continuous grades too.
    """
    y = np.asarray(grades, dtype=np.float64)
    if folds < 2:
        raise ValueError("need at least 2 folds")
    if len(y) < folds:
        raise ValueError(f"{len(y)} rows cannot fill {folds} folds")
    tie_break = np.random.default_rng(seed).permutation(len(y))
    order = np.lexsort((tie_break, y))
    assignment = np.empty(len(y), dtype=np.int64)
    assignment[order] = np.arange(len(y)) % folds
    return [np.flatnonzero(assignment == k) for k in range(folds)]


def _rank(values: np.ndarray) -> np.ndarray:
    """Ranks starting at 1, ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_vals)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(values)]])
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return ranks


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation (Pearson on tie-averaged ranks)."""
    rx, ry = _rank(np.asarray(x, dtype=np.float64)), _rank(np.asarray(y, dtype=np.float64))
    rx -= rx.mean()
    ry -= ry.mean()
    denominator = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denominator if denominator else 0.0


def roc_auc(scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half."""
    s = np.asarray(scores, dtype=np.float64)
    p = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(p.sum()), int((~p).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs both positives and negatives")
    ranks = _rank(s)
    return (float(ranks[p].sum()) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _pick_lambda(
    x: np.ndarray, y: np.ndarray, lambdas: Sequence[float], folds: int, seed: int, names: Sequence[str]
) -> float:
    folds = min(folds, len(y) // 2)
    if folds < 2 or len(lambdas) == 1:
        return float(lambdas[len(lambdas) // 2])
    best_lambda, best_error = float(lambdas[0]), math.inf
    splits = stratified_folds(y, folds, seed + 1)
    for lam in lambdas:
        predicted = np.empty(len(y))
        for test in splits:
            train = np.setdiff1d(np.arange(len(y)), test)
            model = QualityModel.fit(x[train], y[train], ridge_lambda=lam, feature_names=names)
            predicted[test] = model.grade_value(x[test])
        # Squared error, not rank agreement: a model shrunk to near-constant output can rank
        # as well but would put every fruit in the middle grade.
        error = float(np.mean((predicted - y) ** 2))
        if error < best_error:
            best_lambda, best_error = float(lam), error
    return best_lambda


@dataclass(frozen=True)
class FoldResult:
    fold: int
    train_count: int
    test_count: int
    roc_auc_1_3_vs_8_10: float | None  # None when a fold lacks one of the two groups
    spearman: float
    ridge_lambda: float
    train_s: float


@dataclass(frozen=True)
class CrossValidation:
    folds: list[FoldResult]
    pooled_roc_auc_1_3_vs_8_10: float
    pooled_spearman: float

    @property
    def mean_roc_auc_1_3_vs_8_10(self) -> float:
        values = [f.roc_auc_1_3_vs_8_10 for f in self.folds if f.roc_auc_1_3_vs_8_10 is not None]
        return float(np.mean(values)) if values else float("nan")

    @property
    def mean_spearman(self) -> float:
        return float(np.mean([f.spearman for f in self.folds]))


def _good_vs_bad_auc(scores: np.ndarray, grades: np.ndarray, good_max: float, bad_min: float) -> float | None:
    keep = (grades <= good_max) | (grades >= bad_min)
    positive = grades[keep] >= bad_min
    if positive.all() or not positive.any():
        return None
    return roc_auc(scores[keep], positive)


def cross_validate(
    features: np.ndarray,
    grades: Sequence[float] | np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
    good_max: float = 3,
    bad_min: float = 8,
    test_folds: Sequence[np.ndarray] | None = None,
    columns: Sequence[int] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> CrossValidation:
    """k-fold evaluation: fit on k-1 folds (lambda by inner CV), score the held-out fold.

    Folds are stratified by grade unless ``test_folds`` (test-row indices per fold) are
    given, e.g. to keep photos of one fruit together. ``columns`` restricts the model to
    some features (for baselines). The AUC separates grades <= ``good_max`` (negatives)
    from grades >= ``bad_min`` (positives): a higher predicted grade should mean worse
    fruit. ``clock`` times each fit.
    """
    x = np.asarray(features, dtype=np.float64)
    names: Sequence[str] = FEATURE_NAMES
    if columns is not None:
        x = x[:, list(columns)]
        names = [FEATURE_NAMES[c] for c in columns]
    y = np.asarray(grades, dtype=np.float64)
    splits = list(test_folds) if test_folds is not None else stratified_folds(y, folds, seed)
    predicted = np.empty(len(y))
    results = []
    for k, test in enumerate(splits):
        train = np.setdiff1d(np.arange(len(y)), test)
        started = clock()
        model = QualityModel.fit(x[train], y[train], seed=seed, feature_names=names)
        train_s = clock() - started
        predicted[test] = model.grade_value(x[test])
        results.append(
            FoldResult(
                fold=k,
                train_count=len(train),
                test_count=len(test),
                roc_auc_1_3_vs_8_10=_good_vs_bad_auc(predicted[test], y[test], good_max, bad_min),
                spearman=spearman(predicted[test], y[test]),
                ridge_lambda=model.ridge_lambda,
                train_s=train_s,
            )
        )
    pooled_auc = _good_vs_bad_auc(predicted, y, good_max, bad_min)
    return CrossValidation(
        folds=results,
        pooled_roc_auc_1_3_vs_8_10=float("nan") if pooled_auc is None else pooled_auc,
        pooled_spearman=spearman(predicted, y),
    )
