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

import dataclasses
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import cv2
import numpy as np

from vision.colour import classify_bgr
from vision.defects import find_defects
from vision.segment import FruitBlob
from vision.skin import (
    NO_GLARE,
    OWN_SKIN_SPREAD,
    PARAMS,
    RING_CONTRAST_SPREADS,
    darker_than_own_skin,
    read_pixels,
)
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
    # skin in a colour class yet clearly darker than the fruit's own skin of that class
    # around it (``vision.skin.darker_than_own_skin``), and the darkening (8-bit L) that
    # counted as clear on this fruit
    darker_mm2: float = 0.0
    darker_l8: float = 0.0


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
        code_half, lab_grid, params, boxes, s.rim_fraction, n_classes, s.highlight_grow, s.own_skin_darker_l * 2.55
    )
    # candidates from half the contrast a defect needs (at least): the ring test decides
    darker = darker_than_own_skin(
        code_half, lab_grid, params, boxes, glare, s.rim_fraction, n_classes, 0.5 * s.own_skin_darker_l * 2.55,
        OWN_SKIN_SPREAD,
    )
    darker_mm2 = (darker[:, 0] * (2 * s.mm_per_px) ** 2).tolist()
    # the per-fruit arithmetic on whole arrays, then plain floats for the records
    total = sums.sum(axis=1)
    seen = np.maximum(total, 1e-12)[:, None]
    fractions = (sums[:, 1 : n_classes + 1] / seen).tolist()
    unclassified_mm2 = np.where(total > 0, sums[:, 0] * (2 * s.mm_per_px) ** 2, 0.0).tolist()
    count = np.maximum(lab[:, 3:], 1.0)
    mean_lab = np.where(lab[:, 3:] > 0, (lab[:, :3] / count - (0.0, 128.0, 128.0)) * (100.0 / 255.0, 1.0, 1.0), 0.0)
    skins: list[Skin] = []
    for f, u_mm2, m, (disk_x, disk_y, radius), (ux0, uy0, ux1, uy1), d_mm2, (_, d_l8, _) in zip(
        fractions, unclassified_mm2, mean_lab.tolist(), glare.tolist(), unclassified.tolist(), darker_mm2,
        darker.tolist(), strict=True,
    ):
        box = (2 * ux0, 2 * uy0, 2 * ux1 + 1, 2 * uy1 + 1) if u_mm2 >= search_from_mm2 else (0, 0, 0, 0)
        disk = None if radius == NO_GLARE else ((2.0 * disk_x, 2.0 * disk_y), 2.0 * radius)
        skins.append(Skin(f, u_mm2, (m[0], m[1], m[2]), box, disk, d_mm2, d_l8))
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
    resolution, which only hides a sliver more of skin that other views see). Inside the
    disk, skin darker than the fruit's mean by ``own_skin_darker_l`` stays usable: a highlight
    only adds light, so that is the skin's own, and a bruise beside a highlight is searched.
    """
    polar_px, equatorial_px, axis_angle, zx0, zy0, zx1, zy1 = zone
    own_skin = skin.darker_mm2 >= darker_search_from_mm2(s)
    if own_skin:
        # darker skin inside a class is judged against the skin around it: the whole zone
        x0, y0, x1, y1 = zx0, zy0, zx1, zy1
    else:
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
    lab = cv2.cvtColor(box_bgr, cv2.COLOR_BGR2Lab)
    usable = weight
    if skin.glare is not None:
        (gx, gy), radius = skin.glare
        usable = weight.copy()
        cv2.circle(usable, (int(round(gx - x0)), int(round(gy - band_y0 - y0))), int(math.ceil(radius)), 0, -1)
        # a highlight only adds light: skin in the disk darker than the fruit's mean is the
        # skin's own, and stays (as read_pixels counts it on the half grid)
        dark = lab[..., 0] < (skin.mean_lab[0] - s.own_skin_darker_l) * 2.55
        usable[dark] = weight[dark]
    # code 0 (in no class) on usable skin
    candidate = cv2.min(cv2.threshold(code, 0, 255, cv2.THRESH_BINARY_INV)[1], usable)
    candidate = cv2.threshold(candidate, 0, 255, cv2.THRESH_BINARY, dst=candidate)[1]
    if own_skin:
        candidate = cv2.bitwise_or(candidate, _darker_than_own_skin(lab[..., 0], code, usable, len(s.colour_classes), equatorial_px, skin.darker_l8))
    # a defect stands out from the skin right around it by more than that skin varies by itself
    contrast = s.own_skin_darker_l * 2.55
    found = find_defects(candidate, weight, usable, lab, to_canon, s.mm_per_px, s, contrast, code, RING_CONTRAST_SPREADS)
    return _about_the_spin_axis(found, zone)


# The cup rollers hold the spin axis across the belt; the fruit sits in them tilted by a few
# degrees at most. A line across the belt stays parallel to the image's vertical under a
# camera looking straight down, so the axis's image is vertical within that tilt.
MAX_AXIS_TILT_RAD = math.radians(8.0)


def _about_the_spin_axis(defects: list[DefectView], zone: Zone) -> list[DefectView]:
    """The defects' polar angle and azimuth about the spin axis as the rollers hold it.

    The silhouette ellipse's orientation stands for the spin axis, but on a nearly round fruit
    it is set by noise, the stalk or the perspective stretch away from the image centre (a
    round fruit's outline is widened radially, so its long axis points at the image centre,
    up to 45 degrees off the spin axis). Positions measured about such an axis put a pole's
    cavity on the cheek, and give one defect a different latitude in every view, so the
    tracker cannot chain it. Where the ellipse's axis is tilted more than the rollers allow,
    the positions are turned about the line of sight to the nearest tilt they do allow."""
    tilt = (zone.axis_angle + math.pi / 2) % math.pi - math.pi / 2  # the equatorial axis from +x
    delta = max(-MAX_AXIS_TILT_RAD, min(MAX_AXIS_TILT_RAD, tilt)) - tilt
    if not defects or abs(delta) < 1e-9:
        return defects
    cd, sd = math.cos(delta), math.sin(delta)
    a, b = zone.equatorial_px, zone.polar_px
    out = []
    for d in defects:
        # back to the pixel offset from the centre along the ellipse's axes, turned into the
        # allowed axes, and onto the spheroid again (semi-axes as measured)
        x = a * math.sin(d.theta) * math.sin(d.phi)
        y = -b * math.cos(d.theta)
        u, v = (x * cd + y * sd) / a, (-x * sd + y * cd) / b
        depth = math.sqrt(max(1e-6, 1.0 - u * u - v * v))
        out.append(dataclasses.replace(d, theta=math.acos(max(-1.0, min(1.0, -v))), phi=math.atan2(u, depth)))
    return out


def _darker_than_own_skin(
    light: np.ndarray, code: np.ndarray, usable: np.ndarray, n_classes: int, equatorial_px: float, threshold_l8: float
) -> np.ndarray:
    """255 where a pixel of a colour class is more than ``threshold_l8`` (8-bit L) darker
    than the mean of the same class's usable skin within half the fruit's width around it
    (a normalised box filter: the reference follows the shading, not the background)."""
    size = max(3, int(equatorial_px) | 1)
    light_f = light.astype(np.float32)
    out = np.zeros(light.shape, np.uint8)
    for c in range(1, n_classes + 1):
        member = ((code == c) & (usable > 0)).astype(np.float32)
        count = cv2.boxFilter(member, -1, (size, size), normalize=False)
        if not count.any():
            continue
        total = cv2.boxFilter(light_f * member, -1, (size, size), normalize=False)
        reference = total / np.maximum(count, 1.0)
        # a reference needs skin around it: at least a fifth of the window of this class
        dark = (member > 0) & (count >= 0.2 * size * size) & (light_f < reference - threshold_l8)
        out[dark] = 255
    return out


_SEARCH_MARGIN_PX = 12  # around the half grid's unclassified box: the blob ring and rounding


def darker_search_from_mm2(s: VisionSettings) -> float:
    """Skin darker than its own (``Skin.darker_mm2``) that makes a view worth searching: one
    and a half samples of the quarter grid. One sample stands for ``(LAB_STEP * mm)^2`` of
    the image, far more than a small defect, and one sample out of the fruit's own spread is
    what noise and shading give anyway; a defect worth grading darkens neighbouring ones."""
    return 1.5 * (LAB_STEP * s.mm_per_px) ** 2


def away_from_the_poles(defects: list[DefectView], axis_offset_mm: float, s: VisionSettings) -> list[DefectView]:
    """The defects outside the polar caps that an oblique view brings into the analysed zone.

    A camera ``s.camera_height_mm`` up sees a fruit ``axis_offset_mm`` off the image centre
    along its spin axis (across the belt) from an angle ``beta``: one pole turns toward the
    lens by ``beta``, and its stem or calyx cavity, which the zone's rim keeps out of a view
    from straight above, moves into the zone, where it reads as skin in no class. The
    silhouette is the same ellipse either way, so the zone cannot tell; blobs centred within
    ``beta`` of the rim's latitude are dropped (other views see that skin).
    """
    beta = math.atan(abs(axis_offset_mm) / float(s.camera_height_mm or math.inf))
    limit = math.sin(max(0.0, math.asin(min(1.0, s.rim_fraction)) - beta))
    return [d for d in defects if abs(math.cos(d.theta)) <= limit]


class _Perspective(NamedTuple):
    equatorial_mm: float
    polar_mm: float
    area_factor: float  # true area / apparent area
    x_px: float  # the fruit's centre, brought down to the belt plane
    y_px: float


def _image_ellipse(
    a_mm: float, b_mm: float, tilt: float, x_mm: float, y_mm: float, height_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """The image, at the belt plane's scale, of a spheroid resting on the belt: semi-axes a
    (across the spin axis, at ``tilt`` from +x in the image; also its centre's height) and
    b (along it), centre above (x, y), seen by a pinhole camera ``height_mm`` above the
    origin. Exact: the outline of a quadric ``Q`` under the projection ``P`` is the conic
    dual to ``P Q^-1 P^T``.

    Returns the image ellipse as its shape matrix S (points p with (p - c)^T S^-1 (p - c) =
    1; S = R diag(semi-axes^2) R^T) and its centre c, in mm."""
    ca, sa = math.cos(tilt), math.sin(tilt)
    axes = np.array([[ca, -sa, 0.0], [sa, ca, 0.0], [0.0, 0.0, 1.0]])  # columns: u, v, w
    shape = axes @ np.diag([1 / a_mm**2, 1 / b_mm**2, 1 / a_mm**2]) @ axes.T
    centre = np.array([x_mm, y_mm, a_mm])
    quadric = np.zeros((4, 4))
    quadric[:3, :3] = shape
    quadric[:3, 3] = quadric[3, :3] = -shape @ centre
    quadric[3, 3] = centre @ shape @ centre - 1.0
    projection = np.array([[height_mm, 0, 0, 0], [0, height_mm, 0, 0], [0, 0, -1.0, height_mm]])
    conic = np.linalg.inv(projection @ np.linalg.inv(quadric) @ projection.T)
    m, v, k = conic[:2, :2], conic[:2, 2], conic[2, 2]
    middle = -np.linalg.solve(m, v)
    scale = -(k + v @ middle)
    return np.linalg.inv(m / scale), middle


def _spheroid_axes(shape: np.ndarray) -> tuple[float, float, float]:
    """Equatorial and polar semi-axes and the equatorial direction of an ellipse's shape
    matrix; the polar axis is the one nearer the image vertical (the rollers' spin axis)."""
    values, vectors = np.linalg.eigh(shape)
    semi = np.sqrt(np.maximum(values, 1e-12))
    equatorial = 0 if abs(vectors[0, 0]) >= abs(vectors[0, 1]) else 1
    direction = vectors[:, equatorial]
    return float(semi[equatorial]), float(semi[1 - equatorial]), math.atan2(direction[1], direction[0])


def _undo_perspective(
    zone: Zone, cx: float, cy: float, s: VisionSettings, centre_px: tuple[float, float]
) -> _Perspective:
    """The spheroid (semi-axes and centre at the belt plane's scale) whose image by a
    pinhole camera ``s.camera_height_mm`` above the image centre is the measured ellipse.

    The fruit rests on the belt, so its centre is one equatorial semi-axis up: nearer the
    lens, it looks larger (by ``H / (H - a)``), and off the image centre it is seen a little
    from the side, which widens a round outline along the direction away from the centre
    (by about ``1 / cos beta``, ``tan beta = r / H``) and turns the outline's axes. That
    linear map, undone, is the first estimate; the exact forward model (``_image_ellipse``)
    then corrects it: each step adds what the prediction misses, carried back through the
    map, to the spheroid's shape and centre (four steps: < 0.05 mm).
    """
    height = float(s.camera_height_mm or 0.0)
    mm = s.mm_per_px
    ca, sa = math.cos(zone.axis_angle), math.sin(zone.axis_angle)
    rotation = np.array([[ca, -sa], [sa, ca]])
    seen = rotation @ np.diag([(zone.equatorial_px * mm) ** 2, (zone.polar_px * mm) ** 2]) @ rotation.T
    seen_centre = np.array([(cx - centre_px[0]) * mm, (cy - centre_px[1]) * mm])
    r_mm = float(np.hypot(*seen_centre))
    cos_beta = height / math.hypot(height, r_mm)
    radial = seen_centre / r_mm if r_mm > 1e-9 else np.array([1.0, 0.0])
    unstretch = np.eye(2) + (cos_beta - 1.0) * np.outer(radial, radial)
    seen_a = zone.equatorial_px * mm
    a_mm = seen_a * height / (height + seen_a)
    back = (height - a_mm) / height * unstretch
    shape = back @ seen @ back.T
    centre = seen_centre * (height - a_mm) / height
    for _ in range(4):
        a_mm, b_mm, tilt = _spheroid_axes(shape)
        try:
            predicted, middle = _image_ellipse(a_mm, b_mm, tilt, centre[0], centre[1], height)
        except np.linalg.LinAlgError:
            # A sliver of a fruit (cut by the frame's edge to a thin crescent, its ellipse
            # fit far from any spheroid) has no exact outline to match: the correction is
            # abandoned and the estimate so far kept. Such a view is flagged "edge" anyway.
            break
        back = (height - a_mm) / height * unstretch
        next_shape = shape + back @ (seen - predicted) @ back.T
        next_centre = centre + (seen_centre - middle) * (height - a_mm) / height
        if not (np.all(np.isfinite(next_shape)) and np.all(np.isfinite(next_centre))):
            break
        shape, centre = next_shape, next_centre
    a_mm, b_mm, _ = _spheroid_axes(shape)
    # areas (the silhouette's, the defects') scale as the outline does
    area_scale = a_mm * b_mm / (zone.equatorial_px * zone.polar_px * mm * mm)
    return _Perspective(2 * a_mm, 2 * b_mm, area_scale, centre_px[0] + centre[0] / mm, centre_px[1] + centre[1] / mm)


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
    frame_centre_px: tuple[float, float] | None = None,
) -> FruitView:
    """One view of one fruit: size and shape from the silhouette and the spheroid's axes,
    with the skin's colour and defects as read. With ``s.camera_height_mm`` (and the
    frame's centre) sizes, areas and the position are those at the belt plane."""
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
    x_px, y_px, area_factor = blob.cx, band_y0 + blob.cy, 1.0
    if s.camera_height_mm is not None and frame_centre_px is not None:
        true = _undo_perspective(zone, x_px, y_px, s, frame_centre_px)
        equatorial_mm, polar_mm, area_factor, x_px, y_px = true
        defects = [dataclasses.replace(d, area_mm2=d.area_mm2 * area_factor) for d in defects]
    major_mm, minor_mm = (equatorial_mm, polar_mm) if equatorial_mm >= polar_mm else (polar_mm, equatorial_mm)
    return FruitView(
        lane=lane,
        x_px=x_px,
        y_px=y_px,
        diameter_major_mm=major_mm,
        diameter_minor_mm=minor_mm,
        area_cm2=blob.area_px * mm * mm / 100.0 * area_factor,
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
