"""Per-fruit measurement in one view: size and shape from the silhouette, colour and defects
from the skin, all referred to a spheroid fitted to the silhouette.

Owns the spheroid model of a view: the silhouette ellipse (second moments of the hull) gives
the polar semi-axis (the near-vertical one, along the spin axis) and the equatorial one (also
the fruit's depth). From it each pixel gets its surface slope, so colour shares and defect
areas are surface areas, not projected ones. Pixels near the limb (outside ``rim_fraction``)
are left to other views: they are foreshortened, blurred into the belt, and hold the stem and
calyx cavities, which sit on the spin axis at the limb.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import cv2
import numpy as np

from vision.colour import classify_bgr
from vision.defects import find_defects, highlight_disk
from vision.segment import FruitBlob
from vision.views import CANON_SIZE, WEIGHT_SCALE, DefectView, FruitView, VisionSettings


@lru_cache(maxsize=1024)
def canonical_weights(ratio_centi: int, rim_milli: int) -> np.ndarray:
    """Surface area per projected pixel on a spheroid, sampled on the unit ellipse's frame.

    With u, v the pixel's position in semi-axes (u across the spin axis, v along it) and
    k = equatorial / polar, the spheroid's depth is w = sqrt(1 - u^2 - v^2) (in equatorial
    semi-axes) and dS/dA = sqrt(u^2 + (k v)^2 + w^2) / w. Zero outside the analysed rim.
    """
    k = ratio_centi / 100.0
    rim = rim_milli / 1000.0
    c = (np.arange(CANON_SIZE, dtype=np.float64) + 0.5) / CANON_SIZE * 2 - 1
    u, v = np.meshgrid(c, c)
    r2 = u * u + v * v
    w = np.sqrt(np.clip(1 - r2, 1e-6, None))
    weight = np.sqrt(u * u + (k * v) ** 2 + w * w) / w
    weight[r2 >= rim * rim] = 0.0
    return np.clip(np.round(weight * WEIGHT_SCALE), 0, 255).astype(np.uint8)


LAB_STEP = 4  # mean CIELAB is read on every fourth row and column
_LEVELS = np.arange(256, dtype=np.float64)  # weight value of each histogram column


def glare_threshold_l(s: VisionSettings, gain: float) -> float:
    """CIELAB L above which a nearly grey pixel is glare. Under brighter light the glare
    saturates the sensor; once the gain is undone it sits at 100 / gain, below the usual
    threshold. Rounded to half a unit so the colour table is built only a few times."""
    if gain <= 1.0:
        return s.highlight_l
    return min(s.highlight_l, math.floor(2 * 93.0 / gain) / 2)


class Zone(NamedTuple):
    """A view's spheroid axes and the box holding its analysed zone (band pixels)."""

    polar_px: float  # semi-axis along the spin axis
    equatorial_px: float  # semi-axis across it
    axis_angle: float  # direction of the equatorial axis from +x (rad)
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int


def analysed_zone(blob: FruitBlob, s: VisionSettings, band_h: int, band_w: int) -> Zone:
    """The spheroid's axes from the silhouette ellipse and the box of the zone read for skin."""
    # which axis is the spin axis: the one nearer the image vertical
    if abs(math.cos(blob.angle_major)) < math.sqrt(0.5):
        polar_px, equatorial_px = blob.semi_major_px, blob.semi_minor_px
        axis_angle = blob.angle_major - math.pi / 2 if math.sin(blob.angle_major) > 0 else blob.angle_major + math.pi / 2
    else:
        polar_px, equatorial_px = blob.semi_minor_px, blob.semi_major_px
        axis_angle = blob.angle_major
    ca, sa = math.cos(axis_angle), math.sin(axis_angle)
    rim_a, rim_b = s.rim_fraction * equatorial_px, s.rim_fraction * polar_px
    half_w = math.sqrt((rim_a * ca) ** 2 + (rim_b * sa) ** 2) + 1
    half_h = math.sqrt((rim_a * sa) ** 2 + (rim_b * ca) ** 2) + 1
    x0, x1 = max(0, int(blob.cx - half_w)), min(band_w, int(math.ceil(blob.cx + half_w)) + 1)
    y0, y1 = max(0, int(blob.cy - half_h)), min(band_h, int(math.ceil(blob.cy + half_h)) + 1)
    return Zone(polar_px, equatorial_px, axis_angle, x0, y0, x1, y1)


def measure_fruit(
    bgr_band: np.ndarray,
    code_half: np.ndarray,
    blob: FruitBlob,
    zone: Zone,
    lane: int,
    band_y0: int,
    s: VisionSettings,
    lab_grid: np.ndarray,
    lut: np.ndarray,
) -> FruitView:
    """One view of one fruit; ``bgr_band`` is the lane band with the lighting gain already
    undone; ``code_half`` the whole frame's colour codes (``vision.colour.classify_bgr``:
    class and glare per pixel, from ``lut``, the table for that gain) on every second row and
    column, needed inside ``zone`` only; ``lab_grid`` the whole frame's 8-bit CIELAB on every
    ``LAB_STEP``-th row and column."""
    mm = s.mm_per_px
    polar_px, equatorial_px, axis_angle, x0, y0, x1, y1 = zone

    flags: set[str] = set()
    if blob.touches_edge:
        flags.add("edge")
    if blob.waist or blob.convexity < s.double_convexity:
        flags.add("double")
    elif blob.convexity < s.misshapen_convexity:
        flags.add("misshapen")

    # --- skin: colour and defects on the fitted spheroid, inside the analysed zone only ---
    ca, sa = math.cos(axis_angle), math.sin(axis_angle)
    zone_bgr = bgr_band[y0:y1, x0:x1]
    ratio = equatorial_px / polar_px
    canon = canonical_weights(int(round(ratio * 100)), int(round(s.rim_fraction * 1000)))
    h = CANON_SIZE / 2
    ox, oy = x0 - blob.cx, y0 - blob.cy
    ke, kp = h / equatorial_px, h / polar_px
    to_canon = np.array(
        [
            [ke * ca, ke * sa, ke * (ca * ox + sa * oy) + h - 0.5],
            [-kp * sa, kp * ca, kp * (-sa * ox + ca * oy) + h - 0.5],
        ],
        np.float64,
    )
    # Colour shares are read on the frame's grid of every second row and column (thousands
    # of pixels even on a small fruit, a quarter of the look-up, warp and histogram work);
    # the full-resolution codes are made only for a view that needs a defect search.
    frame_y0, frame_y1 = band_y0 + y0, band_y0 + y1
    hy0, hy1 = -(-frame_y0 // 2), min(code_half.shape[0], -(-frame_y1 // 2))
    hx0, hx1 = -(-x0 // 2), min(code_half.shape[1], -(-x1 // 2))
    code_h = code_half[hy0:hy1, hx0:hx1]
    # half-grid pixel (i, j) is zone pixel (2 j + off_x, 2 i + off_y)
    off_x, off_y = 2 * hx0 - x0, 2 * hy0 - frame_y0
    to_canon_h = to_canon @ np.array([[2.0, 0.0, off_x], [0.0, 2.0, off_y], [0.0, 0.0, 1.0]])
    weight_h = cv2.warpAffine(
        canon, to_canon_h, (hx1 - hx0, hy1 - hy0), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0
    )
    # the weight map doubles as the zone mask (nonzero inside the analysed rim)
    glare_h = highlight_disk(code_h, weight_h, s)
    if glare_h is not None:
        w_usable_h = weight_h.copy()
        cv2.circle(w_usable_h, glare_h[0], glare_h[1], 0, -1)
    else:
        w_usable_h = weight_h
    total = cv2.sumElems(w_usable_h)[0]
    # surface-weighted share of each class in one pass: a histogram over (class code, weight)
    # whose columns are then weighed by their weight value; glare codes fall outside it
    n_classes = len(s.colour_classes)
    hist = cv2.calcHist([code_h, w_usable_h], [0, 1], None, [n_classes + 1, 256], [0, n_classes + 1, 0, 256])
    sums = hist.astype(np.float64) @ _LEVELS
    fractions = {
        cls.name: float(sums[i + 1]) / total if total > 0 else 0.0 for i, cls in enumerate(s.colour_classes)
    }
    mean_lab = (0.0, 0.0, 0.0)
    if total > 0:
        # a plain pixel mean, estimated on the frame's grid of every fourth pixel in each
        # direction (every second pixel of the half grid)
        grid_h, grid_w = lab_grid.shape[:2]
        gy0, gy1 = -(-hy0 // 2), min(grid_h, -(-hy1 // 2))
        gx0, gx1 = -(-hx0 // 2), min(grid_w, -(-hx1 // 2))
        gy, gx = 2 * gy0 - hy0, 2 * gx0 - hx0
        on_grid = w_usable_h[gy : gy + 2 * (gy1 - gy0) : 2, gx : gx + 2 * (gx1 - gx0) : 2]
        m = cv2.mean(lab_grid[gy0:gy1, gx0:gx1], mask=on_grid)
        mean_lab = (m[0] * 100.0 / 255.0, m[1] - 128.0, m[2] - 128.0)

    defects: list[DefectView] = []
    # Skip the defect search when too little skin is unclassified to hold one defect. The
    # half grid samples a quarter of the pixels, so its estimate is noisy for a defect near
    # the minimum: search from half the minimum on.
    unclassified_mm2 = float(sums[0]) / WEIGHT_SCALE * (2 * mm) ** 2
    if unclassified_mm2 >= 0.5 * s.min_defect_area_mm2:
        # full resolution from here: the glare core must be found at full resolution, or its
        # desaturated fringe reads as a defect
        code = classify_bgr(zone_bgr, lut)
        weight = cv2.warpAffine(
            canon, to_canon, (x1 - x0, y1 - y0), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0
        )
        glare = highlight_disk(code, weight, s)
        if glare is not None:
            w_usable = weight.copy()
            cv2.circle(w_usable, glare[0], glare[1], 0, -1)
        else:
            w_usable = weight
        unclassified = cv2.threshold(code, 0, 255, cv2.THRESH_BINARY_INV)[1]  # code 0: in no class
        candidate = cv2.bitwise_and(unclassified, unclassified, mask=w_usable)
        defects = find_defects(candidate, weight, w_usable, zone_bgr, to_canon, mm, s)
    defect_area_mm2 = sum(d.area_mm2 for d in defects)

    equatorial_mm = 2 * equatorial_px * mm
    polar_mm = 2 * polar_px * mm
    major_mm, minor_mm = (equatorial_mm, polar_mm) if equatorial_mm >= polar_mm else (polar_mm, equatorial_mm)
    return FruitView(
        lane=lane,
        x_px=blob.cx,
        y_px=band_y0 + blob.cy,
        diameter_major_mm=major_mm,
        diameter_minor_mm=minor_mm,
        area_cm2=blob.area_px * mm * mm / 100.0,
        colour_fractions=fractions,
        mean_lab=mean_lab,
        defect_count=len(defects),
        defect_area_cm2=defect_area_mm2 / 100.0,
        elongation=major_mm / max(minor_mm, 1e-9),
        roundness=blob.roundness,
        convexity=blob.convexity,
        flags=frozenset(flags),
        equatorial_mm=equatorial_mm,
        polar_mm=polar_mm,
        defects=tuple(defects),
    )
