"""The teachable quality model: what decay looks like on one fruit, and a linear model on it.

Owns (1) ``extract_features``: measures of a fruit's surface from its image and mask, each
chosen for what decay and damage look like (colour and its spread; darkening and loss of
gloss; wrinkling and mould texture, also as local binary patterns and gradient statistics;
dark, dull or discoloured regions relative to the fruit's own skin; collapse of the
outline), and ``colour_statistics``, the plain colour
summary the model is compared against; (2) ``QualityModel``: a ridge regression from the
features to the staff's grade (scikit-learn), its strength chosen by cross-validation that
keeps each fruit's photos together, with an out-of-distribution check, stored as a small
JSON file a person can read; (3) evaluation: folds grouped by fruit, ROC AUC, Spearman and
a bootstrap over fruit for the confidence interval. Reading photos and label files is the
caller's job; nothing here opens files except ``QualityModel.save``/``load``.

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
from typing import Any

import cv2
import numpy as np

# scikit-learn and scipy.stats take seconds to import; the line only scores with a fitted
# model (numpy), so they are imported where fitting and evaluation need them.

__all__ = [
    "BASELINE_NAMES",
    "FEATURE_NAMES",
    "FORMAT_VERSION",
    "CrossValidation",
    "FoldResult",
    "QualityAssessment",
    "QualityModel",
    "QualityModelError",
    "QualityPrediction",
    "bootstrap_interval",
    "colour_statistics",
    "cross_validate",
    "extract_features",
    "grouped_folds",
    "roc_auc",
    "spearman",
    "stratified_folds",
]

# 2: features describing decay relative to the fruit's own skin, winsorised inputs, an
# out-of-distribution check. 3: local binary patterns and gradient statistics added to the
# texture group. Files of an earlier version name other features.
FORMAT_VERSION = 3

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

# Uniform local binary patterns (Ojala et al.): each skin pixel is compared with P points on
# a circle of radius r around it; a pattern with at most two 0/1 changes round the circle is
# "uniform" and named by its count of brighter neighbours (0 = a pit or a dark spot, P = a
# bump, P/2 = an edge or a crease), all others share one bin. The histogram says how much of
# the skin is smooth, creased or pitted at each radius, whatever the skin's colour.
_LBP_RADII_PX = (1, 2, 4)
_LBP_POINTS = 8
# A neighbour counts as brighter only if it is this many L* brighter: JPEG noise on smooth
# skin would otherwise flip patterns at random.
_LBP_TOLERANCE_L = 0.5
_LBP_NAMES: tuple[str, ...] = tuple(
    f"lbp_r{r}_{code}" for r in _LBP_RADII_PX for code in (*map(str, range(_LBP_POINTS + 1)), "other")
)
# Lightness gradients at three smoothing scales (mean, 90th percentile, and coherence of
# their direction: parallel wrinkles are coherent, mould and pitting are not) and lightness
# steps between pixels 1-8 px apart (mean absolute and mean square), all relative to the
# skin's own lightness.
_GRADIENT_SIGMAS_PX = (1, 2, 4)
_STEP_DISTANCES_PX = (1, 2, 4, 8)
_GRADIENT_NAMES: tuple[str, ...] = (
    *(f"{stat}_s{sigma}" for sigma in _GRADIENT_SIGMAS_PX for stat in ("log_gradient_mean", "log_gradient_p90", "gradient_coherence")),
    *(f"{stat}_{d}px" for d in _STEP_DISTANCES_PX for stat in ("log_step_mean", "log_step_ms")),
)

FEATURE_NAMES: tuple[str, ...] = (
    # colour of the skin (highlights excluded) and its spread: ripening and browning move
    # the whole distribution, decay widens it
    "lab_l_mean",  # lightness
    "lab_l_p10",  # the darkest tenth
    "lab_l_p90",
    "lab_a_p10",  # green (-) .. red (+), at both ends of the distribution
    "lab_a_p50",
    "lab_a_p90",
    "lab_b_p10",  # blue (-) .. yellow (+)
    "lab_b_p50",
    "lab_b_p90",
    "chroma_p50",  # colourfulness; drops as skin dulls
    "chroma_iqr",  # patchiness of colourfulness
    "hue_angle_deg",  # atan2(b, a) of the median colour
    "hue_spread_deg",  # chroma-weighted circular spread of hue: mixed colours
    # darkening and loss of gloss
    "log_darker_10_share",  # skin more than 10 L* darker than the fruit's own median
    "log_darker_20_share",  # ... more than 20 L* darker
    "log_specular_share",  # glossy highlights
    "log_highlight_blobs",  # turgid skin gives one compact highlight; wrinkled skin scatters it
    "highlight_contrast",  # brightest skin over the median (HSV value): a matte skin has none
    # texture: wrinkling and mould, relative to the skin's own lightness (exposure-free)
    "log_dog_fine",  # lightness detail at 0.7-1.5 px (of a 160 px fruit): fine wrinkles
    "log_dog_mid",  # 1.5-3 px
    "log_dog_coarse",  # 3-6 px: folds, dents
    "log_ridge_1",  # Hessian ridge strength at sigma 1, 2, 4 px: creases of each width
    "log_ridge_2",
    "log_ridge_4",
    "log_gradient_energy",  # mean lightness gradient, general roughness
    "log_colour_texture",  # local spread of a*, b*: fuzzy, variegated mould
    # texture as classical descriptors see it: the local patterns of the skin (uniform local
    # binary patterns at three radii) and how strong and how oriented its lightness steps are
    *_LBP_NAMES,
    *_GRADIENT_NAMES,
    # local dark, dull or discoloured regions relative to the fruit's own skin
    "log_blemish_share",  # > 12 L* darker than the skin within ~1/8 of the fruit
    "log_soft_spot_share",  # > 8 L* darker than the skin within ~1/4: broad, sunken patches
    "log_discoloured_share",  # colour far (delta E > 20) from the fruit's median skin colour
    "log_dull_share",  # saturation below 60 % of the fruit's median: dull or water-soaked
    "log_pale_share",  # much lighter than the skin and grey, not a highlight: mould, dried tissue
    "log_largest_patch_share",  # largest connected discoloured or blemished patch
    # shape
    "solidity",  # area / convex hull area: dents and collapse
    "log_outline_roughness_px",  # outline wobble around its smoothed self, away from image edges
)

# The baseline a quality model must beat: the colour a plain colour sorter sees.
BASELINE_NAMES: tuple[str, ...] = (
    "lab_l_mean", "lab_a_mean", "lab_b_mean", "lab_l_std", "lab_a_std", "lab_b_std",
    "hsv_s_mean", "hsv_v_mean", "hsv_s_std", "hsv_v_std",
)  # fmt: skip


class QualityModelError(Exception):
    """A model file is unreadable, of another format version, or inconsistent."""


# --- features ----------------------------------------------------------------------------


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


def _masked_mean(values: np.ndarray, zone: np.ndarray, size: int) -> np.ndarray:
    """Mean of ``values`` over the pixels of ``zone`` in a ``size`` box around each pixel
    (normalised convolution), so the fruit's rim is compared with skin, not background."""
    weight = zone.astype(np.float32)
    total = cv2.boxFilter(values * weight, -1, (size, size), normalize=False)
    count = cv2.boxFilter(weight, -1, (size, size), normalize=False)
    return np.asarray(total / np.maximum(count, 1.0))


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


def _lbp_histogram(lightness: np.ndarray, zone: np.ndarray, radius_px: int) -> list[float]:
    """Shares of the ``zone``'s pixels in each uniform local binary pattern at ``radius_px``
    (neighbours sampled bilinearly on the circle), ``_LBP_POINTS + 2`` bins."""
    height, width = lightness.shape
    centre = lightness[zone] + _LBP_TOLERANCE_L
    brighter = []
    for k in range(_LBP_POINTS):
        angle = 2.0 * math.pi * k / _LBP_POINTS
        shift = np.array([[1, 0, radius_px * math.cos(angle)], [0, 1, -radius_px * math.sin(angle)]], np.float32)
        # with WARP_INVERSE_MAP, output (x, y) samples the source at (x + dx, y + dy)
        neighbour = cv2.warpAffine(
            lightness, shift, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        brighter.append(neighbour[zone] >= centre)
    ones = np.sum(brighter, axis=0)
    changes = sum(brighter[k] != brighter[(k + 1) % _LBP_POINTS] for k in range(_LBP_POINTS))
    code = np.where(changes <= 2, ones, _LBP_POINTS + 1)
    counts = np.bincount(code, minlength=_LBP_POINTS + 2).astype(np.float64)
    return list(counts / max(counts.sum(), 1.0))


def _gradient_statistics(lightness: np.ndarray, zone: np.ndarray, relative: float) -> list[float]:
    """``_GRADIENT_NAMES``' values: gradient strength and coherence, and lightness steps."""
    out: list[float] = []
    for sigma in _GRADIENT_SIGMAS_PX:
        smooth = cv2.GaussianBlur(lightness, (0, 0), sigma)
        gx, gy = cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
        magnitude = np.hypot(gx, gy)[zone] * sigma / relative  # sigma: scale-normalised
        # structure tensor over twice the scale: 1 where all steps point one way
        jxx, jyy, jxy = (cv2.GaussianBlur(v, (0, 0), 2 * sigma) for v in (gx * gx, gy * gy, gx * gy))
        coherence = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (jxx + jyy + 1e-6)
        out += [_log(float(magnitude.mean())), _log(float(np.percentile(magnitude, 90))), float(coherence[zone].mean())]
    for d in _STEP_DISTANCES_PX:
        across = np.abs(lightness[:, d:] - lightness[:, :-d])[zone[:, d:] & zone[:, :-d]]
        down = np.abs(lightness[d:, :] - lightness[:-d, :])[zone[d:, :] & zone[:-d, :]]
        steps = np.concatenate([across, down]) / relative
        if steps.size == 0:
            steps = np.zeros(1)
        out += [_log(float(steps.mean())), math.log(float((steps**2).mean()) + 1e-6)]
    return out


@dataclass(frozen=True)
class _Surface:
    """A fruit normalised to ``_NORMALISED_DIAMETER_PX``, in CIELAB and HSV."""

    fruit: np.ndarray  # uint8 mask of the normalised crop
    inside: np.ndarray  # bool, inside the rim
    skin: np.ndarray  # bool, inside and not a highlight
    texture_zone: np.ndarray  # skin away from highlights' own edges
    specular: np.ndarray
    lab: np.ndarray  # float32, L 0..100
    hsv: np.ndarray  # float32, S and V 0..1


def _surface(image_bgr: np.ndarray, mask: np.ndarray) -> _Surface:
    if mask.shape[:2] != image_bgr.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image_bgr.shape}")
    img, fruit = _normalised_crop(image_bgr, (mask > 0).astype(np.uint8) * 255)
    inside = _interior_mask(fruit, _NORMALISED_DIAMETER_PX)
    if inside.sum() < 50:
        inside = fruit > 0
    unit = img.astype(np.float32) / 255.0
    lab = cv2.cvtColor(unit, cv2.COLOR_BGR2Lab)
    hsv = cv2.cvtColor(unit, cv2.COLOR_BGR2HSV)  # H 0..360, S and V 0..1
    # Highlights are the light source, not the skin: keep them out of colour statistics.
    specular = (hsv[..., 2] > 0.85) & (hsv[..., 1] < 0.45)
    skin = inside & ~specular
    if skin.sum() < 50:
        skin = inside
    # Highlights also have sharp edges of their own; measure texture away from them.
    texture_zone = skin & (cv2.dilate(specular.astype(np.uint8), np.ones((5, 5), np.uint8)) == 0)
    if texture_zone.sum() < 50:
        texture_zone = skin
    return _Surface(fruit, inside, skin, texture_zone, specular, lab, hsv)


def extract_features(image_bgr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The feature vector (order of ``FEATURE_NAMES``) for one fruit.

    ``mask`` is non-zero on the fruit (uint8 or bool, image-sized). Raises ``ValueError``
    when the mask is empty or does not match the image.
    """
    s = _surface(image_bgr, mask)
    lightness, a_star, b_star = s.lab[..., 0], s.lab[..., 1], s.lab[..., 2]
    saturation, value = s.hsv[..., 1], s.hsv[..., 2]
    chroma = np.hypot(a_star, b_star)
    skin, zone = s.skin, s.texture_zone

    l_skin, a_skin, b_skin = lightness[skin], a_star[skin], b_star[skin]
    l_median = float(np.median(l_skin))
    a_median, b_median = float(np.median(a_skin)), float(np.median(b_skin))
    relative = max(l_median, 5.0)  # texture as a share of the skin's own lightness
    hue = np.arctan2(b_skin, a_skin)
    weight = chroma[skin] / max(float(chroma[skin].sum()), 1e-6)
    resultant = math.hypot(float((weight * np.cos(hue)).sum()), float((weight * np.sin(hue)).sum()))
    hue_spread_deg = math.degrees(math.sqrt(max(0.0, -2.0 * math.log(max(resultant, 1e-6)))))

    # Dark, soft-looking or discoloured regions are judged against the fruit's own skin: a
    # dark-red variety is not a bruise. Local references are masked means over the skin at
    # two widths, so shading across a round fruit does not count.
    local_fine = _masked_mean(lightness, skin, _NORMALISED_DIAMETER_PX // 8 | 1)
    local_broad = _masked_mean(lightness, skin, _NORMALISED_DIAMETER_PX // 4 | 1)
    blemish = (local_fine - lightness) > 12.0
    soft_spot = (local_broad - lightness) > 8.0
    delta_e = np.sqrt((lightness - l_median) ** 2 + (a_star - a_median) ** 2 + (b_star - b_median) ** 2)
    discoloured = delta_e > 20.0
    s_median = float(np.median(saturation[skin]))
    patches = ((discoloured | blemish) & zone).astype(np.uint8)
    count, _labels, stats, _ = cv2.connectedComponentsWithStats(patches, connectivity=8)
    largest_px = int(stats[1:, cv2.CC_STAT_AREA].max()) if count > 1 else 0

    colour_spread = np.sqrt(
        np.maximum(cv2.blur(a_star * a_star, (7, 7)) - cv2.blur(a_star, (7, 7)) ** 2, 0)
        + np.maximum(cv2.blur(b_star * b_star, (7, 7)) - cv2.blur(b_star, (7, 7)) ** 2, 0)
    )
    highlight_blobs = cv2.connectedComponents((s.specular & s.inside).astype(np.uint8))[0] - 1
    v_inside = value[s.inside]
    # patterns of the lightly smoothed skin: the smoothing keeps JPEG blocks out of them
    patterned = cv2.GaussianBlur(lightness, (0, 0), 0.7)
    lbp = [share for r in _LBP_RADII_PX for share in _lbp_histogram(patterned, zone, r)]
    gradients = dict(zip(_GRADIENT_NAMES, _gradient_statistics(lightness, zone, relative), strict=True))

    contours, _ = cv2.findContours(s.fruit, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=cv2.contourArea)
    hull_area = cv2.contourArea(cv2.convexHull(outline))
    l10, l90 = np.percentile(l_skin, (10, 90))
    a10, a50, a90 = np.percentile(a_skin, (10, 50, 90))
    b10, b50, b90 = np.percentile(b_skin, (10, 50, 90))
    c25, c50, c75 = np.percentile(chroma[skin], (25, 50, 75))

    values = {
        "lab_l_mean": float(l_skin.mean()),
        "lab_l_p10": float(l10),
        "lab_l_p90": float(l90),
        "lab_a_p10": float(a10),
        "lab_a_p50": float(a50),
        "lab_a_p90": float(a90),
        "lab_b_p10": float(b10),
        "lab_b_p50": float(b50),
        "lab_b_p90": float(b90),
        "chroma_p50": float(c50),
        "chroma_iqr": float(c75 - c25),
        "hue_angle_deg": math.degrees(math.atan2(b_median, a_median)),
        "hue_spread_deg": hue_spread_deg,
        "log_darker_10_share": _log(_share(lightness < l_median - 10.0, skin)),
        "log_darker_20_share": _log(_share(lightness < l_median - 20.0, skin)),
        "log_specular_share": _log(_share(s.specular, s.inside)),
        "log_highlight_blobs": math.log1p(highlight_blobs),
        "highlight_contrast": float(np.percentile(v_inside, 99.5) - np.median(v_inside)),
        "log_dog_fine": _log(_dog_rms(lightness, zone, 0.7, 1.5) / relative),
        "log_dog_mid": _log(_dog_rms(lightness, zone, 1.5, 3.0) / relative),
        "log_dog_coarse": _log(_dog_rms(lightness, zone, 3.0, 6.0) / relative),
        "log_ridge_1": _log(float(_ridge_strength(lightness, 1.0)[zone].mean()) / relative),
        "log_ridge_2": _log(float(_ridge_strength(lightness, 2.0)[zone].mean()) / relative),
        "log_ridge_4": _log(float(_ridge_strength(lightness, 4.0)[zone].mean()) / relative),
        # the mean gradient at sigma 1, relative to the skin: format 2's name for what the
        # gradient statistics now also report as log_gradient_mean_s1
        "log_gradient_energy": gradients["log_gradient_mean_s1"],
        "log_colour_texture": _log(float(colour_spread[zone].mean())),
        **dict(zip(_LBP_NAMES, lbp, strict=True)),
        **gradients,
        "log_blemish_share": _log(_share(blemish, zone)),
        "log_soft_spot_share": _log(_share(soft_spot, zone)),
        "log_discoloured_share": _log(_share(discoloured, skin)),
        "log_dull_share": _log(_share(saturation < 0.6 * s_median, skin)),
        "log_pale_share": _log(_share((lightness > l_median + 20.0) & (saturation < 0.6 * s_median), skin)),
        "log_largest_patch_share": _log(largest_px / max(int(zone.sum()), 1)),
        "solidity": float(cv2.contourArea(outline) / hull_area) if hull_area > 0 else 1.0,
        "log_outline_roughness_px": _log(_outline_roughness_px(s.fruit)),
    }
    return np.array([values[name] for name in FEATURE_NAMES], dtype=np.float64)


def colour_statistics(image_bgr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The baseline's inputs (``BASELINE_NAMES``): means and spreads of CIELAB and of HSV
    saturation and value over the same skin the features read."""
    s = _surface(image_bgr, mask)
    lab, hsv = s.lab[s.skin], s.hsv[s.skin]
    return np.array(
        [*lab.mean(axis=0), *lab.std(axis=0), hsv[:, 1].mean(), hsv[:, 2].mean(), hsv[:, 1].std(), hsv[:, 2].std()],
        dtype=np.float64,
    )


# --- model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityPrediction:
    quality_score: float  # 0 = best grade seen in training, 1 = worst
    predicted_grade: int


@dataclass(frozen=True)
class QualityAssessment:
    """A prediction and how far the photo lies from the training photos."""

    quality_score: float
    predicted_grade: int | None  # None when out of distribution: no grade is claimed
    distance: float  # Mahalanobis distance from the training photos, in standard units
    out_of_distribution: bool


# Ridge strengths tried by inner cross-validation (scikit-learn's alpha, in units of
# "samples"): 0.1 barely regularises 300 photos, 1000 pulls weights strongly toward zero.
# Fixed before any figure was seen.
DEFAULT_RIDGE_LAMBDAS: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
# Inputs are clipped to the training photos' 1st and 99th percentiles before scaling: one
# odd photo (a reflection, a sticker) then cannot push a score beyond what training saw.
_CLIP_PERCENTILES = (1.0, 99.0)
# A photo is out of distribution when its Mahalanobis distance from the training photos
# exceeds the 99.9 % point of a chi-square with as many degrees of freedom as features,
# or 1.25 times the 99th percentile of the training photos' own, whichever is larger (real
# features are heavier-tailed than Gaussian).
_OOD_QUANTILE = 0.999
_OOD_MARGIN = 1.25


def _ridge_pipeline() -> Any:
    """Clip to the training percentiles, standardise, ridge: a scikit-learn pipeline, so the
    inner search refits all three on each inner training split."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    class Winsorise(FunctionTransformer):
        def fit(self, x: np.ndarray, y: object = None) -> Winsorise:
            self.low_, self.high_ = np.percentile(x, _CLIP_PERCENTILES, axis=0)
            return self

        def transform(self, x: np.ndarray) -> np.ndarray:
            return np.clip(x, self.low_, self.high_)

    return Pipeline([("clip", Winsorise()), ("scale", StandardScaler()), ("ridge", Ridge())])


def _inner_folds(groups: np.ndarray, folds: int) -> int:
    return min(folds, len(np.unique(groups)))


@dataclass(frozen=True)
class QualityModel:
    """grade ~ intercept + weights . (clip(x, low, high) - mean) / scale; ridge-fitted."""

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
    clip_low: tuple[float, ...] | None = None  # None: inputs are not clipped
    clip_high: tuple[float, ...] | None = None
    # out-of-distribution check on the standardised, unclipped inputs: the training photos'
    # centre and precision matrix (Ledoit-Wolf), and the distance beyond which a photo is
    # unlike them; None: no check
    ood_centre: tuple[float, ...] | None = None
    ood_precision: tuple[tuple[float, ...], ...] | None = None
    ood_threshold: float | None = None

    # --- fitting -----------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        grades: Sequence[float] | np.ndarray,
        *,
        groups: Sequence[object] | np.ndarray | None = None,
        ridge_lambda: float | None = None,
        lambdas: Sequence[float] = DEFAULT_RIDGE_LAMBDAS,
        inner_folds: int = 5,
        feature_names: Sequence[str] = FEATURE_NAMES,
    ) -> QualityModel:
        """Fit on ``features`` (rows in ``feature_names`` order) and ordinal ``grades``.

        Without ``ridge_lambda``, the strength is picked from ``lambdas`` by inner
        cross-validation on the training rows only (lowest squared error), with folds that
        keep each of ``groups`` (one fruit's photos) together; without ``groups`` every row
        is its own fruit.
        """
        from scipy.stats import chi2
        from sklearn.covariance import LedoitWolf
        from sklearn.model_selection import GridSearchCV, GroupKFold

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
        g = np.arange(len(y)) if groups is None else np.asarray(groups)
        pipeline = _ridge_pipeline()
        folds = _inner_folds(g, inner_folds)
        if ridge_lambda is None and folds >= 2 and len(lambdas) > 1:
            # Squared error, not rank agreement: a model shrunk to near-constant output can
            # rank as well but would put every fruit in the middle grade.
            search = GridSearchCV(
                pipeline, {"ridge__alpha": list(lambdas)}, cv=GroupKFold(n_splits=folds),
                scoring="neg_mean_squared_error",
            )
            search.fit(x, y, groups=g)
            pipeline = search.best_estimator_
        else:
            alpha = ridge_lambda if ridge_lambda is not None else lambdas[len(lambdas) // 2]
            pipeline.set_params(ridge__alpha=alpha).fit(x, y)
        clip, scaler, ridge = pipeline.named_steps["clip"], pipeline.named_steps["scale"], pipeline.named_steps["ridge"]
        scale = np.where(scaler.scale_ < 1e-9, 1.0, scaler.scale_)
        # the out-of-distribution check sees unclipped inputs: clipping would hide the outlier
        z = (x - scaler.mean_) / scale
        covariance = LedoitWolf().fit(z)
        distances = np.sqrt(covariance.mahalanobis(z))
        threshold = max(
            math.sqrt(float(chi2.ppf(_OOD_QUANTILE, x.shape[1]))), _OOD_MARGIN * float(np.percentile(distances, 99))
        )
        return cls(
            feature_names=tuple(feature_names),
            mean=tuple(float(v) for v in scaler.mean_),
            scale=tuple(float(v) for v in scale),
            weights=tuple(float(v) for v in ridge.coef_),
            intercept=float(ridge.intercept_),
            grade_best=float(y.min()),
            grade_worst=float(y.max()),
            ridge_lambda=float(ridge.alpha),
            samples=int(x.shape[0]),
            clip_low=tuple(float(v) for v in clip.low_),
            clip_high=tuple(float(v) for v in clip.high_),
            ood_centre=tuple(float(v) for v in covariance.location_),
            ood_precision=tuple(tuple(float(v) for v in row) for row in covariance.precision_),
            ood_threshold=threshold,
        )

    # --- prediction --------------------------------------------------------------------

    def _rows(self, features: np.ndarray) -> np.ndarray:
        return np.atleast_2d(np.asarray(features, dtype=np.float64))

    def grade_value(self, features: np.ndarray) -> np.ndarray:
        """The continuous grade estimate for one feature vector or a matrix of them."""
        x = self._rows(features)
        if self.clip_low is not None and self.clip_high is not None:
            x = np.clip(x, self.clip_low, self.clip_high)
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        out: np.ndarray = self.intercept + z @ np.asarray(self.weights)
        return out

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row from the training photos (0 without a check)."""
        x = self._rows(features)
        if self.ood_precision is None or self.ood_centre is None:
            return np.zeros(len(x))
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale) - np.asarray(self.ood_centre)
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", z, np.asarray(self.ood_precision), z), 0.0))

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

    def assess_features(self, features: np.ndarray) -> QualityAssessment:
        prediction = self.predict_features(features)
        distance = float(self.distance(features)[0])
        outside = self.ood_threshold is not None and distance > self.ood_threshold
        return QualityAssessment(
            prediction.quality_score, None if outside else prediction.predicted_grade, distance, outside
        )

    def score(self, image_bgr: np.ndarray, mask: np.ndarray) -> float:
        """Quality score in [0, 1] (0 = best) for the fruit under ``mask``."""
        return float(self.score_features(extract_features(image_bgr, mask))[0])

    def predict(self, image_bgr: np.ndarray, mask: np.ndarray) -> QualityPrediction:
        return self.predict_features(extract_features(image_bgr, mask))

    def assess(self, image_bgr: np.ndarray, mask: np.ndarray) -> QualityAssessment:
        return self.assess_features(extract_features(image_bgr, mask))

    # --- storage -----------------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        return {
            "format": "gradeline-quality-model",
            "format_version": FORMAT_VERSION,
            "model": "ridge regression on grade (1 = best), inputs clipped to the training percentiles and standardised",
            "feature_names": list(self.feature_names),
            "clip": None if self.clip_low is None else {"low": list(self.clip_low), "high": list(self.clip_high or ())},
            "normalisation": {"mean": list(self.mean), "scale": list(self.scale)},
            "weights": list(self.weights),
            "intercept": self.intercept,
            "grade_best": self.grade_best,
            "grade_worst": self.grade_worst,
            "ridge_lambda": self.ridge_lambda,
            "samples": self.samples,
            "out_of_distribution": None
            if self.ood_precision is None
            else {
                "centre": list(self.ood_centre or ()),
                # seven significant digits: the file stays small, distances move < 1e-5
                "precision": [[float(f"{v:.7g}") for v in row] for row in self.ood_precision],
                "threshold": self.ood_threshold,
            },
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, data: object, source: str = "<model>") -> QualityModel:
        if not isinstance(data, dict) or data.get("format") != "gradeline-quality-model":
            raise QualityModelError(f"{source}: not a gradeline quality model")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            hint = (
                "; it was trained on the features of an earlier gradeline: train it again with "
                "'gradeline vision train'" if isinstance(version, int) and version < FORMAT_VERSION else ""
            )
            raise QualityModelError(f"{source}: format version {version!r}, this gradeline reads {FORMAT_VERSION}{hint}")
        try:
            names = tuple(str(n) for n in data["feature_names"])
            norm = data["normalisation"]
            clip = data.get("clip")
            ood = data.get("out_of_distribution")
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
                clip_low=None if clip is None else tuple(float(v) for v in clip["low"]),
                clip_high=None if clip is None else tuple(float(v) for v in clip["high"]),
                ood_centre=None if ood is None else tuple(float(v) for v in ood["centre"]),
                ood_precision=None if ood is None else tuple(tuple(float(v) for v in row) for row in ood["precision"]),
                ood_threshold=None if ood is None else float(ood["threshold"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise QualityModelError(f"{source}: malformed model: {exc}") from exc
        if names != FEATURE_NAMES:
            # The weights only mean something for the features they were fitted on.
            raise QualityModelError(f"{source}: model features {list(names)} differ from this gradeline's")
        n = len(names)
        lengths = [len(model.mean), len(model.scale), len(model.weights)]
        lengths += [len(v) for v in (model.clip_low, model.clip_high, model.ood_centre) if v is not None]
        lengths += [len(model.ood_precision)] + [len(r) for r in model.ood_precision] if model.ood_precision else []
        if any(length != n for length in lengths):
            raise QualityModelError(f"{source}: feature, normalisation and weight lengths differ")
        if not model.grade_worst > model.grade_best:
            raise QualityModelError(f"{source}: grade_worst must exceed grade_best")
        return model

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

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

    Rows are sorted by grade (ties in random order) and dealt to the folds in turn. This
    lets photos of one fruit land on both sides, so it flatters a model: use it only to
    compare with ``grouped_folds``.
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


def grouped_folds(
    grades: Sequence[float] | np.ndarray, groups: Sequence[object] | np.ndarray, folds: int, seed: int = 0
) -> list[np.ndarray]:
    """Test-row indices per fold: every photo of one group (one fruit) in the same fold, and
    the grades spread over the folds as evenly as that allows (scikit-learn's
    ``StratifiedGroupKFold``, shuffled by ``seed``)."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    y = np.asarray(grades, dtype=np.float64)
    g = np.asarray(groups)
    if len(np.unique(g)) < folds:
        raise ValueError(f"{len(np.unique(g))} fruit cannot fill {folds} folds")
    strata = np.round(y).astype(int)
    if np.unique(strata, return_counts=True)[1].min() >= folds:
        splitter: StratifiedGroupKFold | GroupKFold = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:  # a grade too rare to spread over every fold: groups alone
        splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [test for _, test in splitter.split(np.zeros(len(y)), strata, g)]


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation (ties share their mean rank); 0 when one side is constant."""
    from scipy.stats import spearmanr

    value = float(spearmanr(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)).statistic)
    return 0.0 if math.isnan(value) else value


def roc_auc(scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half."""
    from sklearn.metrics import roc_auc_score

    p = np.asarray(positive, dtype=bool)
    if p.all() or not p.any():
        raise ValueError("ROC AUC needs both positives and negatives")
    return float(roc_auc_score(p, np.asarray(scores, dtype=np.float64)))


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
    predicted: np.ndarray  # the out-of-fold grade estimate of every row

    @property
    def mean_roc_auc_1_3_vs_8_10(self) -> float:
        values = [f.roc_auc_1_3_vs_8_10 for f in self.folds if f.roc_auc_1_3_vs_8_10 is not None]
        return float(np.mean(values)) if values else float("nan")

    @property
    def mean_spearman(self) -> float:
        return float(np.mean([f.spearman for f in self.folds]))


def good_vs_bad_auc(scores: np.ndarray, grades: np.ndarray, good_max: float = 3, bad_min: float = 8) -> float | None:
    keep = (grades <= good_max) | (grades >= bad_min)
    positive = grades[keep] >= bad_min
    if positive.all() or not positive.any():
        return None
    return roc_auc(scores[keep], positive)


def cross_validate(
    features: np.ndarray,
    grades: Sequence[float] | np.ndarray,
    *,
    test_folds: Sequence[np.ndarray],
    groups: Sequence[object] | np.ndarray | None = None,
    good_max: float = 3,
    bad_min: float = 8,
    feature_names: Sequence[str] = FEATURE_NAMES,
    clock: Callable[[], float] = time.perf_counter,
) -> CrossValidation:
    """Fit on all folds but one (strength by inner cross-validation grouped by ``groups``),
    score the held-out fold, for each of ``test_folds`` (test-row indices per fold).

    The AUC separates grades <= ``good_max`` (negatives) from grades >= ``bad_min``
    (positives): a higher predicted grade should mean worse fruit. ``clock`` times each fit.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(grades, dtype=np.float64)
    g = np.arange(len(y)) if groups is None else np.asarray(groups)
    predicted = np.empty(len(y))
    results = []
    for k, test in enumerate(test_folds):
        train = np.setdiff1d(np.arange(len(y)), test)
        started = clock()
        model = QualityModel.fit(x[train], y[train], groups=g[train], feature_names=feature_names)
        train_s = clock() - started
        predicted[test] = model.grade_value(x[test])
        results.append(
            FoldResult(
                fold=k,
                train_count=len(train),
                test_count=len(test),
                roc_auc_1_3_vs_8_10=good_vs_bad_auc(predicted[test], y[test], good_max, bad_min),
                spearman=spearman(predicted[test], y[test]),
                ridge_lambda=model.ridge_lambda,
                train_s=train_s,
            )
        )
    pooled_auc = good_vs_bad_auc(predicted, y, good_max, bad_min)
    return CrossValidation(
        folds=results,
        pooled_roc_auc_1_3_vs_8_10=float("nan") if pooled_auc is None else pooled_auc,
        pooled_spearman=spearman(predicted, y),
        predicted=predicted,
    )


def bootstrap_interval(
    metric: Callable[[np.ndarray, np.ndarray], float | None],
    predicted: np.ndarray,
    grades: np.ndarray,
    groups: Sequence[object] | np.ndarray,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``metric(predicted, grades)`` over resamples of whole groups
    (fruit) with replacement: photos of one fruit are not independent evidence."""
    g = np.asarray(groups)
    names, inverse = np.unique(g, return_inverse=True)
    members = [np.flatnonzero(inverse == i) for i in range(len(names))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        rows = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        value = metric(predicted[rows], grades[rows])
        if value is not None and math.isfinite(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, (tail, 100 - tail))
    return float(low), float(high)
