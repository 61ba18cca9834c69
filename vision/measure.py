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
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import cv2
import numpy as np

from vision.colour import classify_bgr
from vision.defects import find_defects
from vision.segment import FruitBlob
from vision.skin import NO_GLARE, PARAMS, read_pixels
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

    fractions: list[float]  # surface share of each recipe colour class
    unclassified_mm2: float  # surface in no class and not glare: where defects can be
    mean_lab: tuple[float, float, float]  # CIELAB, a plain mean of the analysed skin
    # where the defect search looks, in frame pixels: the box holding the unclassified skin
    # (x0, y0, x1, y1, inclusive; all 0 when there is too little to search) and the glare
    # disk, if any
    unclassified_box: tuple[int, int, int, int]
    glare: tuple[tuple[float, float], float] | None


def read_skins(
    code_half: np.ndarray,
    lab_grid: np.ndarray,
    fruit: Sequence[tuple[Zone, float, float, int]],
    s: VisionSettings,
    search_from_mm2: float,
) -> list[Skin]:
    """Surface-weighted colour shares, unclassified surface and mean CIELAB of each view of a
    frame (``vision.skin.read_pixels`` does the pixels).

    Read on the frame's grid of every second row and column (thousands of pixels even on a
    small fruit): ``code_half`` holds its colour codes (``vision.colour.classify_bgr``),
    ``lab_grid`` the frame's 8-bit CIELAB on every ``LAB_STEP``-th row and column. ``fruit``
    gives per view its zone (band pixels), the silhouette's centre (frame pixels) and the
    first row of its lane band. The box of the unclassified skin is kept only for views with
    ``search_from_mm2`` of it.
    """
    height_h, width_h = code_half.shape
    rows, box_rows = [], []
    for zone, cx, cy, band_y0 in fruit:
        polar_px, equatorial_px, axis_angle, x0, y0, x1, y1 = zone
        rows.append(
            (
                cx, cy, math.cos(axis_angle), math.sin(axis_angle), 1.0 / equatorial_px, 1.0 / polar_px,
                (equatorial_px / polar_px) ** 2 - 1.0,
            )
        )
        # the zone's box on the half grid; half-grid pixel (j, i) is frame pixel (2 j, 2 i)
        box_rows.append(
            (-(-x0 // 2), -(-(band_y0 + y0) // 2), min(width_h, -(-x1 // 2)), min(height_h, -(-(band_y0 + y1) // 2)))
        )
    n_classes = len(s.colour_classes)
    params = np.array(rows, np.float64).reshape(-1, len(PARAMS))
    boxes = np.array(box_rows, np.int64).reshape(-1, 4)
    sums, lab, glare, unclassified = read_pixels(
        code_half, lab_grid, params, boxes, s.rim_fraction, n_classes, s.highlight_grow
    )
    # the per-fruit arithmetic on whole arrays, then plain floats for the records
    total = sums.sum(axis=1)
    seen = np.maximum(total, 1e-12)[:, None]
    fractions = (sums[:, 1 : n_classes + 1] / seen).tolist()
    unclassified_mm2 = np.where(total > 0, sums[:, 0] * (2 * s.mm_per_px) ** 2, 0.0).tolist()
    count = np.maximum(lab[:, 3:], 1.0)
    mean_lab = np.where(lab[:, 3:] > 0, (lab[:, :3] / count - (0.0, 128.0, 128.0)) * (100.0 / 255.0, 1.0, 1.0), 0.0)
    skins: list[Skin] = []
    for f, u_mm2, m, (disk_x, disk_y, radius), (ux0, uy0, ux1, uy1) in zip(
        fractions, unclassified_mm2, mean_lab.tolist(), glare.tolist(), unclassified.tolist(), strict=True
    ):
        box = (2 * ux0, 2 * uy0, 2 * ux1 + 1, 2 * uy1 + 1) if u_mm2 >= search_from_mm2 else (0, 0, 0, 0)
        disk = None if radius == NO_GLARE else ((2.0 * disk_x, 2.0 * disk_y), 2.0 * radius)
        skins.append(Skin(f, u_mm2, (m[0], m[1], m[2]), box, disk))
    return skins


def search_defects(
    bgr_band: np.ndarray, band_y0: int, blob: FruitBlob, zone: Zone, skin: Skin, s: VisionSettings, lut: np.ndarray
) -> list[DefectView]:
    """The defect blobs of one view, at full resolution, for a view whose unclassified skin
    (``read_skins``) could hold a defect. ``bgr_band`` is the lane band with the lighting gain
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
    quality_score: float | None = None,
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
        quality_score=quality_score,
    )
