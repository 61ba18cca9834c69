"""Skin defects inside one fruit's analysed zone, and the specular highlights to ignore.

Owns what counts as a defect pixel (skin that falls in no colour class of the recipe and is
not glare), the cleanup of class-border slivers, and each defect's surface area and position
on the fitted spheroid, so the tracker can count a defect once across views.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from vision.views import CANON_SIZE, WEIGHT_SCALE, DefectView, VisionSettings

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_RECT3 = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))


def highlight_disk(
    lab: np.ndarray, zone: np.ndarray, s: VisionSettings, gain: float = 1.0
) -> tuple[tuple[int, int], int] | None:
    """Specular glare as a disk (centre, radius in pixels), or None when there is none.

    The core is the bright, nearly grey pixels in the zone; the disk grows it by the glare's
    own size so the desaturated fringe (skin blended toward white) goes with it. Masking
    generously costs little: the fruit spins under the fixed glare, so what it hides in one
    view is seen in others.
    """
    c = s.highlight_chroma / 2
    # under brighter light the glare saturates the sensor; once the gain is undone it sits
    # at 255 / gain, below the usual threshold
    light = min(s.highlight_l * 2.55, 0.93 * 255.0 / gain) if gain > 1.0 else s.highlight_l * 2.55
    core = cv2.inRange(
        lab,
        np.array([min(255, math.ceil(light)), 128 - c, 128 - c], np.float64),
        np.array([255, 128 + c, 128 + c], np.float64),
    )
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
    usable: np.ndarray,
    lab: np.ndarray,
    to_canon: np.ndarray,
    mm_per_px: float,
    s: VisionSettings,
) -> list[DefectView]:
    """Connected blobs of defect pixels with their surface area (mm2) and spheroid position.

    Slivers one or two pixels wide appear where two skin classes meet (the blurred border
    mixes them into no class); an opening with a 3-pixel cross removes them while keeping
    cracks, which are wider than that at the working resolution. ``usable`` is the zone
    without the glare: a blob touching its border is only partly seen.
    """
    min_px = s.min_defect_area_mm2 / (mm_per_px * mm_per_px) / 3  # the weight is at most ~3
    if cv2.countNonZero(candidate) < min_px:
        return []
    cand = cv2.morphologyEx(candidate, cv2.MORPH_OPEN, _CROSS)
    if cv2.countNonZero(cand) == 0:
        return []
    n, labels, stats, _ = cv2.connectedComponentsWithStats(cand, connectivity=8)
    if n <= 1:
        return []
    px_area_mm2 = mm_per_px * mm_per_px
    area_w = np.bincount(labels.ravel(), weights=weight.ravel(), minlength=n) / WEIGHT_SCALE * px_area_mm2
    keep = [i for i in range(1, n) if area_w[i] >= s.min_defect_area_mm2]
    if not keep:
        return []
    border = cv2.bitwise_and(usable, cv2.bitwise_not(cv2.erode(usable, _RECT3)))
    on_border = np.bincount(labels[border > 0], minlength=n)
    ys, xs = np.nonzero(labels)
    lab_of = labels[ys, xs]
    wts = weight[ys, xs].astype(np.float64)
    sum_w = np.bincount(lab_of, weights=wts, minlength=n)
    mx = np.bincount(lab_of, weights=wts * xs, minlength=n)
    my = np.bincount(lab_of, weights=wts * ys, minlength=n)
    half = CANON_SIZE / 2
    out: list[DefectView] = []
    for i in keep:
        x, y = mx[i] / sum_w[i], my[i] / sum_w[i]
        cu = to_canon[0, 0] * x + to_canon[0, 1] * y + to_canon[0, 2]
        cv = to_canon[1, 0] * x + to_canon[1, 1] * y + to_canon[1, 2]
        u, v = (cu + 0.5) / half - 1, (cv + 0.5) / half - 1
        depth = math.sqrt(max(1e-6, 1.0 - u * u - v * v))
        theta = math.acos(max(-1.0, min(1.0, -v)))
        phi = math.atan2(u, depth)
        area = _unmixed_area(i, stats[i], labels, weight, usable, lab)
        if area == _SLIVER:
            continue
        area_mm2 = float(area_w[i]) if area is None else area * px_area_mm2
        out.append(DefectView(theta, phi, area_mm2, bool(on_border[i] > 0)))
    return out


_SLIVER = -1.0  # _unmixed_area's verdict for a border between two skin colours


def _unmixed_area(
    index: int, stat: np.ndarray, labels: np.ndarray, weight: np.ndarray, usable: np.ndarray, lab: np.ndarray
) -> float | None:
    """Surface area (in weighted pixels) of one blob, counting edge pixels by how much of
    them is defect; ``_SLIVER`` when the blob is only the blurred border of two skin colours;
    None when it cannot tell (then the thresholded area stands).

    A blurred edge pixel mixes skin and defect; thresholding counts it all or nothing, which
    matters for cracks a few pixels wide. Each pixel within one pixel of the blob gets the
    share alpha of defect along the line from the surrounding skin colour (median of a ring
    around the blob) to the defect's own colour (median of its innermost pixels).

    Where two skin classes meet, blur mixes them into colours of no class; with strong blur
    the band is wider than the opening removes. Such a blob's colour lies on the line between
    the two skin colours around it, which a real defect's does not.
    """
    x, y, w, h = (int(stat[k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    pad = 4
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(labels.shape[1], x + w + pad), min(labels.shape[0], y + h + pad)
    sub_labels = labels[y0:y1, x0:x1]
    core = (sub_labels == index).astype(np.uint8)
    ok = usable[y0:y1, x0:x1] > 0
    near = cv2.dilate(core, _RECT3) > 0
    ring = (cv2.dilate(core, cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7))) > 0) & ~near & ok & (sub_labels == 0)
    if int(ring.sum()) < 6:
        return None
    sub_lab = lab[y0:y1, x0:x1].astype(np.float32)
    skin = np.median(sub_lab[ring], axis=0)
    inner = cv2.erode(core, _CROSS) > 0
    if int(inner.sum()) < 3:
        inner = core > 0
    defect = np.median(sub_lab[inner], axis=0)
    if _between_two_skins(sub_lab[ring], defect):
        return _SLIVER
    direction = defect - skin
    span = float(direction @ direction)
    if span < 100.0:  # defect too close to the skin colour to unmix (under 10 Lab-8 units)
        return None
    region = near & ok
    alpha = np.clip(((sub_lab[region] - skin) @ direction) / span, 0.0, 1.0)
    return float((alpha * weight[y0:y1, x0:x1][region]).sum()) / WEIGHT_SCALE


def _between_two_skins(ring: np.ndarray, colour: np.ndarray) -> bool:
    """True when the ring holds two distinct skin colours and ``colour`` is a mix of them."""
    centred = ring - ring.mean(axis=0)
    # split the ring along its main colour direction into two groups
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    side = centred @ vt[0] > 0
    if side.all() or not side.any():
        return False
    a = np.median(ring[side], axis=0)
    b = np.median(ring[~side], axis=0)
    seg = b - a
    length2 = float(seg @ seg)
    if length2 < 25.0**2:  # one skin colour around (in Lab-8 units)
        return False
    t = float(np.clip((colour - a) @ seg / length2, 0.0, 1.0))
    gap = colour - (a + t * seg)
    return float(gap @ gap) < 12.0**2
