"""The colour lookup table against the exact CIELAB box test it replaces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vision.colour import CANONICAL_CLASSES, LUT_GLARE, classify_bgr, classify_lab8, colour_lut


@pytest.mark.parametrize("product", ["apple", "cherry"])
def test_table_agrees_with_the_box_test_away_from_class_borders(product: str) -> None:
    classes = CANONICAL_CLASSES[product]
    rng = np.random.default_rng(7)
    bgr = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    code = classify_bgr(bgr, colour_lut(classes, 80.0, 30.0))
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2Lab)
    exact = classify_lab8(lab, classes).astype(np.int16) + 1
    # a pixel more than 3 Lab-8 units inside or outside every box edge must get the exact class
    light, a, b = (lab[..., i].astype(np.float32) for i in range(3))
    margin = np.full(light.shape, np.inf, np.float32)
    for cls in classes:
        lo, hi = cls.bounds_8bit()
        for channel, k in ((light, 0), (a, 1), (b, 2)):
            margin = np.minimum(margin, np.minimum(np.abs(channel - lo[k]), np.abs(channel - hi[k])))
    clear = margin > 3
    assert clear.mean() > 0.5
    assert np.array_equal((code & (LUT_GLARE - 1))[clear], exact[clear])
    # overall the bins disagree only near borders: a few percent of uniformly random colours
    assert np.mean((code & (LUT_GLARE - 1)) == exact) > 0.97


def test_glare_flag_follows_the_threshold() -> None:
    classes = CANONICAL_CLASSES["apple"]
    grey = np.array([[[200, 200, 200], [235, 235, 235], [60, 60, 60]]], np.uint8)  # L ~ 80.6, 92.6, 25.4
    red = np.array([[[40, 40, 220]]], np.uint8)
    high = classify_bgr(np.concatenate([grey, np.concatenate([red] * 3, axis=1)]), colour_lut(classes, 85.0, 30.0))
    assert [bool(c >= LUT_GLARE) for c in high[0]] == [False, True, False]
    assert not (high[1] >= LUT_GLARE).any()
    low = classify_bgr(grey, colour_lut(classes, 75.0, 30.0))
    assert [bool(c >= LUT_GLARE) for c in low[0]] == [True, True, False]
