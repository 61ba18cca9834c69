"""Skin defects inside one fruit's analysed zone, and the specular highlights to ignore.

Owns what counts as a defect pixel (skin that falls in no colour class of the recipe and is
not glare), the cleanup of class-border slivers, and each defect's surface area and position
on the fitted spheroid, so the tracker can count a defect once across views.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from vision.views import DefectView, VisionSettings


def highlight_mask(lab8: np.ndarray, zone: np.ndarray, s: VisionSettings) -> np.ndarray:
    """Specular glare: bright, nearly grey pixels, grown by the glare's own size so its
    desaturated fringe (skin blended toward white) goes with it."""
    light = lab8[..., 0]
    chroma = np.abs(lab8[..., 1].astype(np.int16) - 128) + np.abs(lab8[..., 2].astype(np.int16) - 128)
    core = (light > s.highlight_l * 2.55) & (chroma < s.highlight_chroma) & zone
    n = int(core.sum())
    if n == 0:
        return core
    # The fringe (skin half blended toward white) reaches about two and a half core radii;
    # masking it generously costs little because the fruit spins under the fixed glare, so
    # whatever it hides is seen in other views.
    radius = math.sqrt(n / math.pi)
    size = int(2 * (s.highlight_grow * radius + 3)) | 1
    grown = cv2.dilate(core.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    return grown > 0


def find_defects(
    candidate: np.ndarray,
    zone: np.ndarray,
    weight: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    ratio: float,
    mm_per_px: float,
    s: VisionSettings,
) -> list[DefectView]:
    """Connected blobs of defect pixels with their surface area (mm2) and spheroid position.

    Slivers one or two pixels wide appear where two skin classes meet (the blurred border
    mixes them into no class); an opening with a 3-pixel cross removes them while keeping
    cracks, which are wider than that at the working resolution.
    """
    cand = candidate.astype(np.uint8)
    if not cand.any():
        return []
    cand = cv2.morphologyEx(cand, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(cand, connectivity=8)
    if n <= 1:
        return []
    px_area_mm2 = mm_per_px * mm_per_px
    min_px = max(2, int(s.min_defect_area_mm2 / px_area_mm2 * 0.5))
    # pixels on the zone's border: a blob touching it continues out of the analysed zone
    border = zone & ~(cv2.erode(zone.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))) > 0)
    out: list[DefectView] = []
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] < min_px:
            continue
        x, y, w, h = (int(stats[i, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
        blob = labels[y : y + h, x : x + w] == i
        wb = weight[y : y + h, x : x + w][blob]
        area_mm2 = float(wb.sum()) * px_area_mm2
        if area_mm2 < s.min_defect_area_mm2:
            continue
        ub = float((u[y : y + h, x : x + w][blob] * wb).sum() / wb.sum())
        vb = float((v[y : y + h, x : x + w][blob] * wb).sum() / wb.sum())
        depth = math.sqrt(max(1e-6, 1.0 - ub * ub - vb * vb))
        theta = math.acos(max(-1.0, min(1.0, -vb)))
        phi = math.atan2(ub, depth)
        partial = bool(border[y : y + h, x : x + w][blob].any())
        out.append(DefectView(theta, phi, area_mm2, partial))
    del ratio
    return out
