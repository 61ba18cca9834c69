"""Skin defects inside one fruit's analysed zone, and the specular highlights to ignore.

Owns what counts as a defect pixel (skin that falls in no colour class of the recipe and is
not glare), the cleanup of class-border slivers, and each defect's surface area and position
on the fitted spheroid, so the tracker can count a defect once across views.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from vision.colour import LUT_GLARE
from vision.views import CANON_SIZE, WEIGHT_SCALE, DefectView, VisionSettings

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_RECT3 = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))


def highlight_disk(code: np.ndarray, zone: np.ndarray, s: VisionSettings) -> tuple[tuple[int, int], int] | None:
    """Specular glare as a disk (centre, radius in pixels), or None when there is none.

    ``code`` is the zone's colour code (``vision.colour.classify_bgr``): the core is the
    pixels flagged glare (bright, nearly grey) inside the zone; the disk grows it by the
    glare's own size so the desaturated fringe (skin blended toward white) goes with it.
    Masking generously costs little: the fruit spins under the fixed glare, so what it hides
    in one view is seen in others.
    """
    core = cv2.threshold(code, LUT_GLARE - 1, 255, cv2.THRESH_BINARY)[1]
    core = cv2.bitwise_and(core, core, mask=zone)
    n = cv2.countNonZero(core)
    if n == 0:
        return None
    x, y, w, h = cv2.boundingRect(core)
    core_radius = math.sqrt(n / math.pi)
    radius = (1 + s.highlight_grow) * core_radius + 3 + max(0.0, max(w, h) / 2 - core_radius)
    return (int(round(x + (w - 1) / 2)), int(round(y + (h - 1) / 2))), int(math.ceil(radius))


def find_defects(
    candidate: np.ndarray,
    weight: np.ndarray,
    usable_weight: np.ndarray,
    zone_bgr: np.ndarray,
    to_canon: np.ndarray,
    mm_per_px: float,
    s: VisionSettings,
) -> list[DefectView]:
    """Connected blobs of defect pixels with their surface area (mm2) and spheroid position.

    Slivers one or two pixels wide appear where two skin classes meet (the blurred border
    mixes them into no class); an opening with a 3-pixel cross removes them while keeping
    cracks, which are wider than that at the working resolution. ``usable_weight`` is the
    surface weight of the zone without the glare: a blob touching its border is only partly
    seen. Colour is converted to CIELAB only around the blobs that are large enough.
    """
    px_area_mm2 = mm_per_px * mm_per_px
    min_weighted = s.min_defect_area_mm2 / px_area_mm2 * WEIGHT_SCALE  # in weight units
    # no blob of fewer pixels can reach the minimum area, even where the surface is steepest
    min_px = min_weighted / max(1.0, cv2.minMaxLoc(weight)[1])
    if cv2.countNonZero(candidate) < min_px:
        return []
    cand = cv2.morphologyEx(candidate, cv2.MORPH_OPEN, _CROSS)
    # blobs as outer outlines (8-connected, like the blobs of a connected-component pass,
    # at a fraction of its cost on such small images); a blob is its filled outline's
    # candidate pixels
    contours, _ = cv2.findContours(cand, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    height, width = cand.shape
    half = CANON_SIZE / 2
    out: list[DefectView] = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if w * h < min_px:
            continue
        # the blob and a margin for the ring of skin around it (see _unmixed_area)
        x0, y0 = max(0, x - _PAD), max(0, y - _PAD)
        x1, y1 = min(width, x + w + _PAD), min(height, y + h + _PAD)
        sub_cand = cand[y0:y1, x0:x1]
        core = np.zeros_like(sub_cand)
        cv2.drawContours(core, [contour], 0, 255, cv2.FILLED, offset=(-x0, -y0))
        core = cv2.bitwise_and(core, sub_cand, dst=core)
        sub_weight = weight[y0:y1, x0:x1]
        m = cv2.moments(cv2.bitwise_and(sub_weight, sub_weight, mask=core))
        if m["m00"] < min_weighted:
            continue
        # position on the spheroid from the surface-weighted centre
        cx, cy = m["m10"] / m["m00"] + x0, m["m01"] / m["m00"] + y0
        cu = to_canon[0, 0] * cx + to_canon[0, 1] * cy + to_canon[0, 2]
        cv = to_canon[1, 0] * cx + to_canon[1, 1] * cy + to_canon[1, 2]
        u, v = (cu + 0.5) / half - 1, (cv + 0.5) / half - 1
        depth = math.sqrt(max(1e-6, 1.0 - u * u - v * v))
        theta = math.acos(max(-1.0, min(1.0, -v)))
        phi = math.atan2(u, depth)
        usable = usable_weight[y0:y1, x0:x1] > 0
        inside = core > 0
        # partly hidden: the blob touches the edge of the usable zone (analysed rim or glare)
        inner_usable = cv2.erode(usable.view(np.uint8), _RECT3, borderType=cv2.BORDER_REPLICATE)
        partial = bool(np.any(inside & (inner_usable == 0)))
        area = _unmixed_area(inside, sub_cand == 0, usable, sub_weight, zone_bgr[y0:y1, x0:x1])
        if area == _SLIVER:
            continue
        area_mm2 = m["m00"] / WEIGHT_SCALE * px_area_mm2 if area is None else area * px_area_mm2
        out.append(DefectView(theta, phi, area_mm2, partial))
    return out


_SLIVER = -1.0  # _unmixed_area's verdict for a border between two skin colours
_PAD = 4
_RECT7 = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7))


def _median3(values: np.ndarray) -> np.ndarray:
    """Per-column median of an (N, 3) array (upper median for even N: cheaper than np.median)."""
    k = len(values) // 2
    return np.partition(values, k, axis=0)[k]


def _unmixed_area(
    core: np.ndarray, background: np.ndarray, usable: np.ndarray, weight: np.ndarray, bgr: np.ndarray
) -> float | None:
    """Surface area (in weighted pixels) of one blob, counting edge pixels by how much of
    them is defect; ``_SLIVER`` when the blob is only the blurred border of two skin colours;
    None when it cannot tell (then the thresholded area stands). All arrays cover the blob's
    box plus a margin: ``core`` the blob, ``background`` no blob at all, ``usable`` the zone
    without the glare.

    A blurred edge pixel mixes skin and defect; thresholding counts it all or nothing, which
    matters for cracks a few pixels wide. Each pixel within one pixel of the blob gets the
    share alpha of defect along the line from the surrounding skin colour (median of a ring
    around the blob) to the defect's own colour (median of its innermost pixels).

    Where two skin classes meet, blur mixes them into colours of no class; with strong blur
    the band is wider than the opening removes. Such a blob's colour lies on the line between
    the two skin colours around it, which a real defect's does not.
    """
    core8 = core.view(np.uint8)
    near = cv2.dilate(core8, _RECT3) > 0
    ring = (cv2.dilate(core8, _RECT7) > 0) & ~near & usable & background
    if int(np.count_nonzero(ring)) < 6:
        return None
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2Lab).astype(np.float32)
    ring_lab = lab[ring]
    skin = _median3(ring_lab)
    inner = cv2.erode(core8, _CROSS) > 0
    if int(np.count_nonzero(inner)) < 3:
        inner = core
    defect = _median3(lab[inner])
    if _between_two_skins(ring_lab, defect):
        return _SLIVER
    direction = defect - skin
    span = float(direction @ direction)
    if span < 100.0:  # defect too close to the skin colour to unmix (under 10 Lab-8 units)
        return None
    region = near & usable
    alpha = np.clip(((lab[region] - skin) @ direction) / span, 0.0, 1.0)
    return float(alpha @ weight[region]) / WEIGHT_SCALE


def _between_two_skins(ring: np.ndarray, colour: np.ndarray) -> bool:
    """True when the ring holds two distinct skin colours and ``colour`` is a mix of them."""
    # split the ring along its main colour direction (the leading principal component)
    mean, vectors = cv2.PCACompute(ring, mean=None, maxComponents=1)  # type: ignore[call-overload]
    side = ring @ vectors[0] > float(mean[0] @ vectors[0])
    n_side = int(np.count_nonzero(side))
    if n_side == 0 or n_side == len(ring):
        return False
    a = _median3(ring[side])
    b = _median3(ring[~side])
    seg = b - a
    length2 = float(seg @ seg)
    if length2 < 25.0**2:  # one skin colour around (in Lab-8 units)
        return False
    t = min(1.0, max(0.0, float((colour - a) @ seg) / length2))
    gap = colour - (a + t * seg)
    return float(gap @ gap) < 12.0**2
