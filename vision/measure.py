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


class Skin(NamedTuple):
    """Colour read on one view's skin."""

    fractions: np.ndarray  # (classes,) surface share of each recipe colour class
    unclassified_mm2: float  # surface in no class and not glare: where defects can be
    mean_lab: tuple[float, float, float]  # CIELAB, a plain mean of the analysed skin
    # where the defect search looks, in frame pixels: the box holding the unclassified skin
    # (x0, y0, x1, y1, exclusive; empty when there is none) and the glare disk, if any
    unclassified_box: tuple[int, int, int, int]
    glare: tuple[tuple[float, float], float] | None


_LEVELS = np.arange(256, dtype=np.float32)  # weight value of each histogram column


def read_skin(
    code_half: np.ndarray,
    glare_half: np.ndarray,
    lab_grid: np.ndarray,
    zone: Zone,
    cx: float,
    cy: float,
    band_y0: int,
    s: VisionSettings,
) -> Skin:
    """Surface-weighted colour shares, unclassified surface and mean CIELAB of one view.

    Read on the frame's grid of every second row and column (thousands of pixels even on a
    small fruit, a quarter of the look-up, warp and histogram work): ``code_half`` holds its
    colour codes (``vision.colour.classify_bgr``), ``glare_half`` 255 where the code is glare,
    ``lab_grid`` the frame's 8-bit CIELAB on every ``LAB_STEP``-th row and column. ``zone``
    is in band pixels, ``cx, cy`` the silhouette's centre in frame pixels.
    """
    polar_px, equatorial_px, axis_angle, x0, y0, x1, y1 = zone
    # the zone's box on the half grid; half-grid pixel (j, i) is frame pixel (2 j, 2 i)
    hy0, hy1 = -(-(band_y0 + y0) // 2), min(code_half.shape[0], -(-(band_y0 + y1) // 2))
    hx0, hx1 = -(-x0 // 2), min(code_half.shape[1], -(-x1 // 2))
    # half-grid box pixel -> canonical weight map pixel (nearest neighbour: the map is smooth)
    ca, sa = math.cos(axis_angle), math.sin(axis_angle)
    half = CANON_SIZE / 2
    ke, kp = half / equatorial_px, half / polar_px
    ox, oy = 2 * hx0 - cx, 2 * hy0 - cy
    to_canon = np.array(
        [
            [2 * ke * ca, 2 * ke * sa, ke * (ca * ox + sa * oy) + half - 0.5],
            [-2 * kp * sa, 2 * kp * ca, kp * (ca * oy - sa * ox) + half - 0.5],
        ]
    )
    canon = canonical_weights(int(round(equatorial_px / polar_px * 100)), int(round(s.rim_fraction * 1000)))
    # the weight map doubles as the zone mask (nonzero inside the analysed rim)
    weight = cv2.warpAffine(
        canon, to_canon, (hx1 - hx0, hy1 - hy0), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0
    )
    glare = glare_half[hy0:hy1, hx0:hx1]
    disk = highlight_disk(glare, weight, s)
    if disk is not None:
        weight = weight.copy()
        cv2.circle(weight, disk[0], disk[1], 0, -1)
    code = code_half[hy0:hy1, hx0:hx1]
    # surface-weighted share of each class in one pass: a histogram over (class code, weight)
    # whose columns are then weighed by their weight value; glare codes fall outside it but
    # count in the total
    n_classes = len(s.colour_classes)
    hist = cv2.calcHist([code, weight], [0, 1], None, [n_classes + 1, 256], [0, n_classes + 1, 0, 256])
    sums = hist @ _LEVELS
    total = cv2.sumElems(weight)[0]
    if total <= 0:
        return Skin(np.zeros(n_classes), 0.0, (0.0, 0.0, 0.0), (0, 0, 0, 0), None)
    unclassified_mm2 = float(sums[0]) / WEIGHT_SCALE * (2 * s.mm_per_px) ** 2
    box = (0, 0, 0, 0)
    if unclassified_mm2 > 0:
        # code 0 (in no class) on usable skin: a comparison, then the weight as a mask by min
        unclassified = cv2.min(cv2.threshold(code, 0, 255, cv2.THRESH_BINARY_INV)[1], weight)
        bx, by, bw, bh = cv2.boundingRect(unclassified)
        box = (2 * (hx0 + bx), 2 * (hy0 + by), 2 * (hx0 + bx + bw) - 1, 2 * (hy0 + by + bh) - 1)
    # mean CIELAB: a plain pixel mean on every second pixel of the half grid
    grid_h, grid_w = lab_grid.shape[:2]
    gy0, gy1 = -(-hy0 // 2), min(grid_h, -(-hy1 // 2))
    gx0, gx1 = -(-hx0 // 2), min(grid_w, -(-hx1 // 2))
    gy, gx = 2 * gy0 - hy0, 2 * gx0 - hx0
    on_grid = weight[gy : gy + 2 * (gy1 - gy0) : 2, gx : gx + 2 * (gx1 - gx0) : 2]
    m = cv2.mean(lab_grid[gy0:gy1, gx0:gx1], mask=on_grid)
    return Skin(
        sums[1:] / total,
        unclassified_mm2,
        (m[0] * 100.0 / 255.0, m[1] - 128.0, m[2] - 128.0),
        box,
        None if disk is None else ((2.0 * (hx0 + disk[0][0]), 2.0 * (hy0 + disk[0][1])), 2.0 * disk[1]),
    )


def search_defects(
    bgr_band: np.ndarray, band_y0: int, blob: FruitBlob, zone: Zone, skin: Skin, s: VisionSettings, lut: np.ndarray
) -> list[DefectView]:
    """The defect blobs of one view, at full resolution, for a view whose unclassified skin
    (``read_skin``) could hold a defect. ``bgr_band`` is the lane band with the lighting gain
    undone, ``lut`` the colour table for that gain.

    Only the box around the unclassified skin found on the half grid is coded again at full
    resolution, with a margin for the ring of skin that ``find_defects`` reads around each
    blob; the glare disk is the half grid's, scaled (a little wider than one found at full
    resolution, which only hides a sliver more of skin that other views see).
    """
    polar_px, equatorial_px, axis_angle, zx0, zy0, zx1, zy1 = zone
    ux0, uy0, ux1, uy1 = skin.unclassified_box
    x0, x1 = max(zx0, ux0 - _SEARCH_MARGIN_PX), min(zx1, ux1 + _SEARCH_MARGIN_PX)
    y0, y1 = max(zy0, uy0 - band_y0 - _SEARCH_MARGIN_PX), min(zy1, uy1 - band_y0 + _SEARCH_MARGIN_PX)
    if x1 <= x0 or y1 <= y0:
        return []
    ca, sa = math.cos(axis_angle), math.sin(axis_angle)
    box_bgr = bgr_band[y0:y1, x0:x1]
    canon = canonical_weights(int(round(equatorial_px / polar_px * 100)), int(round(s.rim_fraction * 1000)))
    half = CANON_SIZE / 2
    ox, oy = x0 - blob.cx, y0 - blob.cy
    ke, kp = half / equatorial_px, half / polar_px
    to_canon = np.array(
        [
            [ke * ca, ke * sa, ke * (ca * ox + sa * oy) + half - 0.5],
            [-kp * sa, kp * ca, kp * (ca * oy - sa * ox) + half - 0.5],
        ]
    )
    code = classify_bgr(box_bgr, lut)
    weight = cv2.warpAffine(
        canon, to_canon, (x1 - x0, y1 - y0), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0
    )
    usable = weight
    if skin.glare is not None:
        (gx, gy), radius = skin.glare
        usable = weight.copy()
        cv2.circle(usable, (int(round(gx - x0)), int(round(gy - band_y0 - y0))), int(math.ceil(radius)), 0, -1)
    # code 0 (in no class) on usable skin
    candidate = cv2.min(cv2.threshold(code, 0, 255, cv2.THRESH_BINARY_INV)[1], usable)
    candidate = cv2.threshold(candidate, 0, 255, cv2.THRESH_BINARY, dst=candidate)[1]
    return find_defects(candidate, weight, usable, box_bgr, to_canon, s.mm_per_px, s)


_SEARCH_MARGIN_PX = 12  # around the half grid's unclassified box: the blob ring and rounding


def fruit_view(
    blob: FruitBlob,
    zone: Zone,
    lane: int,
    band_y0: int,
    s: VisionSettings,
    fractions: dict[str, float],
    mean_lab: tuple[float, float, float],
    defects: list[DefectView],
) -> FruitView:
    """One view of one fruit: size and shape from the silhouette and the spheroid's axes,
    with the skin's colour and defects as read."""
    mm = s.mm_per_px
    flags: set[str] = set()
    if blob.touches_edge:
        flags.add("edge")
    if blob.waist or blob.convexity < s.double_convexity:
        flags.add("double")
    elif blob.convexity < s.misshapen_convexity:
        flags.add("misshapen")
    equatorial_mm = 2 * zone.equatorial_px * mm
    polar_mm = 2 * zone.polar_px * mm
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
        defect_area_cm2=sum(d.area_mm2 for d in defects) / 100.0,
        elongation=major_mm / max(minor_mm, 1e-9),
        roundness=blob.roundness,
        convexity=blob.convexity,
        flags=frozenset(flags),
        equatorial_mm=equatorial_mm,
        polar_mm=polar_mm,
        defects=tuple(defects),
    )
