"""The fast belt estimate and silhouette mask against plain references of the same rules."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vision.background import estimate_band_background
from vision.pipeline import settings_for_product
from vision.segment import _kernel, fruit_blobs, silhouettes


def _reference_belt(band: np.ndarray, margin_rows: int = 4) -> np.ndarray:
    height, width = band.shape[:2]
    m = max(1, min(margin_rows, height // 8))
    skip = 2 if height > 8 * m + 4 else 0
    step = 4 if width >= 64 else 1
    top = np.sort(band[skip : skip + m, ::step], axis=0)[m // 2]
    bottom = np.sort(band[height - skip - m : height - skip, ::step], axis=0)[m // 2]
    rows = np.stack([top, bottom])
    k = max(1, min(9, rows.shape[1] // 4) | 1)
    return cv2.resize(cv2.blur(rows, (k, 1)), (width, height), interpolation=cv2.INTER_LINEAR)


def _reference_mask(image: np.ndarray, belt: np.ndarray, product: str, mm_per_px: float) -> np.ndarray:
    s = settings_for_product(product, mm_per_px, 4)
    distance = cv2.absdiff(image, belt).max(axis=2)
    coarse = np.where(distance > s.foreground_threshold, 255, 0).astype(np.uint8)
    local = cv2.dilate(distance, _kernel(9, cv2.MORPH_RECT))
    level = np.maximum(cv2.convertScaleAbs(local, alpha=s.edge_level), int(s.foreground_threshold * 0.5))
    refined = (distance > level) & (cv2.dilate(coarse, _kernel(5, cv2.MORPH_RECT)) > 0)
    refined = np.where(refined | (cv2.erode(coarse, _kernel(9, cv2.MORPH_RECT)) > 0), 255, 0).astype(np.uint8)
    opened = cv2.morphologyEx(refined, cv2.MORPH_OPEN, _kernel(s.stalk_width_mm / s.mm_per_px))
    return opened | (refined & cv2.dilate(opened, _kernel(3, cv2.MORPH_RECT)))


@pytest.mark.parametrize("height", [1, 2, 7, 9, 37, 120, 121])
@pytest.mark.parametrize("width", [5, 63, 64, 1281])
@pytest.mark.parametrize("margin_rows", [1, 3, 4])
def test_belt_estimate_matches_sorted_median(height: int, width: int, margin_rows: int) -> None:
    rng = np.random.default_rng(height * 10_000 + width * 10 + margin_rows)
    frame = rng.integers(0, 256, (height + 6, width + 4, 3), dtype=np.uint8)
    band = frame[3 : 3 + height, 2 : 2 + width]  # a view, as the pipeline passes
    dst = np.empty_like(band)
    estimate_band_background(band, margin_rows, dst=dst)
    assert np.array_equal(dst, _reference_belt(band, margin_rows))


@pytest.mark.parametrize(("product", "mm_per_px"), [("apple", 0.8), ("cherry", 0.3), ("pomegranate", 0.3)])
def test_silhouette_mask_matches_reference(product: str, mm_per_px: float) -> None:
    rng = np.random.default_rng(7)
    belt = np.full((240, 640, 3), (60, 64, 70), np.uint8)
    image = (belt + rng.normal(0, 3, belt.shape)).clip(0, 255).astype(np.uint8)
    for _ in range(14):  # overlapping fruit of mixed colour and contrast, with thin stalks
        cx, cy, r = int(rng.integers(30, 610)), int(rng.integers(30, 210)), int(rng.integers(8, 45))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.circle(image, (cx, cy), r, colour, -1, cv2.LINE_AA)
        cv2.line(image, (cx, cy - r), (cx + 3, cy - r - 12), colour, 2, cv2.LINE_AA)
    image = cv2.GaussianBlur(image, (5, 5), 1.0)
    s = settings_for_product(product, mm_per_px, 4)
    mask = silhouettes(image, belt, s)
    assert np.array_equal(mask, _reference_mask(image, belt, product, mm_per_px))
    assert fruit_blobs(mask, s)  # the scene does make blobs
