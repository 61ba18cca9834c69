"""Skin defects inside one fruit's analysed zone, and the specular highlights to ignore.

Owns what counts as a defect pixel (skin that falls in no colour class of the recipe and is
not glare), the cleanup of class-border slivers, and each defect's surface area and position
on the fitted spheroid, so the tracker can count a defect once across views.

The per-blob work runs on boxes of a few hundred pixels, where each numpy or OpenCV call
costs more in overhead than in arithmetic; the masks are therefore 0/1 ``uint8`` images
(OpenCV operates on them directly and numpy reads them as booleans without a copy) and the
colour statistics work on 8-bit CIELAB.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from vision.views import CANON_SIZE, WEIGHT_SCALE, DefectView, VisionSettings

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_RECT3 = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
_RECT7 = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7))
_PAD = 4  # margin around a blob's box: room for the ring of skin 2-3 pixels out
_SLIVER = -1.0  # _unmixed_area's verdict for a border between two skin colours


def highlight_disk(glare: np.ndarray, zone: np.ndarray, s: VisionSettings) -> tuple[tuple[int, int], int] | None:
    """Specular glare as a disk (centre, radius in pixels), or None when there is none.

    ``glare`` is 255 where the colour code (``vision.colour.classify_bgr``) flags glare
    (bright, nearly grey), ``zone`` nonzero inside the analysed zone. The disk grows the core
    (the glare inside the zone) by the glare's own size so the desaturated fringe (skin
    blended toward white) goes with it. Masking generously costs little: the fruit spins
    under the fixed glare, so what it hides in one view is seen in others.
    """
    if not cv2.countNonZero(glare):
        return None
    core = cv2.min(glare, zone)  # the glare inside the zone; a masked AND costs more
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
    seen; it must equal ``weight`` wherever it is nonzero. Colour is converted to CIELAB only
    around the blobs that are large enough.
    """
    px_area_mm2 = mm_per_px * mm_per_px
    min_weighted = s.min_defect_area_mm2 / px_area_mm2 * WEIGHT_SCALE  # in weight units
    # no blob of fewer pixels can reach the minimum area, even where the surface is steepest
    min_px = min_weighted / max(1.0, cv2.minMaxLoc(weight)[1])
    if cv2.countNonZero(candidate) < min_px:
        return []
    cand = cv2.morphologyEx(candidate, cv2.MORPH_OPEN, _CROSS)
    if cv2.countNonZero(cand) < min_px:  # the opening often leaves nothing (or too little)
        return []
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
        core = np.zeros(sub_cand.shape, np.uint8)
        cv2.drawContours(core, [contour], 0, 1, cv2.FILLED, offset=(-x0, -y0))
        cv2.bitwise_and(core, sub_cand, dst=core)  # candidate pixels are 255, so core stays 0/1
        m = cv2.moments(cv2.multiply(weight[y0:y1, x0:x1], core))
        if m["m00"] < min_weighted:
            continue
        sub_usable = usable_weight[y0:y1, x0:x1]
        near = cv2.dilate(core, _RECT3)  # the blob and the pixels touching it
        # the usable pixels of ``near`` with their surface weight (nonzero exactly there)
        near_weight = cv2.bitwise_and(sub_usable, sub_usable, mask=near)
        area = _unmixed_area(core, near, near_weight, sub_usable, sub_cand, zone_bgr[y0:y1, x0:x1])
        if area == _SLIVER:
            continue
        # Partly hidden: the blob touches the edge of the usable zone (analysed rim or glare),
        # i.e. some pixel next to it (within the box) is not usable.
        partial = cv2.countNonZero(near_weight) < cv2.countNonZero(near)
        # position on the spheroid from the surface-weighted centre
        cx, cy = m["m10"] / m["m00"] + x0, m["m01"] / m["m00"] + y0
        cu = to_canon[0, 0] * cx + to_canon[0, 1] * cy + to_canon[0, 2]
        cv = to_canon[1, 0] * cx + to_canon[1, 1] * cy + to_canon[1, 2]
        u, v = (cu + 0.5) / half - 1, (cv + 0.5) / half - 1
        depth = math.sqrt(max(1e-6, 1.0 - u * u - v * v))
        theta = math.acos(max(-1.0, min(1.0, -v)))
        phi = math.atan2(u, depth)
        area_mm2 = m["m00"] / WEIGHT_SCALE * px_area_mm2 if area is None else area * px_area_mm2
        out.append(DefectView(theta, phi, area_mm2, partial))
    return out


_ALPHA_ONE = 65535  # alpha scaled to 16 bits: cv2.transform's saturation then clips it to [0, 1]


def _unmixed_area(
    core: np.ndarray,
    near: np.ndarray,
    near_weight: np.ndarray,
    usable_weight: np.ndarray,
    cand: np.ndarray,
    bgr: np.ndarray,
) -> float | None:
    """Surface area (in weighted pixels) of one blob, counting edge pixels by how much of
    them is defect; ``_SLIVER`` when the blob is only the blurred border of two skin colours;
    None when it cannot tell (then the thresholded area stands). All arrays cover the blob's
    box plus a margin: ``core`` (0/1) the blob, ``near`` (0/1) it grown by one pixel,
    ``usable_weight`` the surface weight without the glare (zero where not usable),
    ``near_weight`` that on ``near`` only, ``cand`` (0/255) all blobs.

    A blurred edge pixel mixes skin and defect; thresholding counts it all or nothing, which
    matters for cracks a few pixels wide. Each pixel within one pixel of the blob gets the
    share alpha of defect along the line from the surrounding skin colour (median of a ring
    around the blob) to the defect's own colour (median of its innermost pixels).

    Where two skin classes meet, blur mixes them into colours of no class; with strong blur
    the band is wider than the opening removes. Such a blob's colour lies on the line between
    the two skin colours around it, which a real defect's does not.
    """
    # the ring: usable skin 2-3 pixels out from the blob, clear of every blob
    ring = cv2.subtract(cv2.dilate(core, _RECT7), near, mask=usable_weight)
    cv2.subtract(ring, cand, dst=ring)
    n_ring = cv2.countNonZero(ring)
    if n_ring < 6:
        return None
    # 8-bit CIELAB (L scaled to 0..255, a and b offset by 128): medians of integers do not
    # depend on the type they are taken in
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2Lab)
    lab_px = lab.reshape(-1, 3)
    # np.compress reads a 0/1 mask viewed as booleans without a copy (boolean indexing is
    # several times slower on arrays this small)
    ring_lab = np.compress(ring.view(np.bool_).reshape(-1), lab_px, axis=0)
    inner = cv2.erode(core, _CROSS)
    if cv2.countNonZero(inner) < 3:
        inner = core
    inner_lab = np.compress(inner.view(np.bool_).reshape(-1), lab_px, axis=0)
    defect = _median3(inner_lab)
    if _between_two_skins(ring_lab, defect):
        return _SLIVER
    sl, sa, sb = _median3(ring_lab)
    dl, da, db = defect[0] - sl, defect[1] - sa, defect[2] - sb
    span = float(dl * dl + da * da + db * db)
    if span < 100.0:  # defect too close to the skin colour to unmix (under 10 Lab-8 units)
        return None
    # alpha = (lab - skin) . (defect - skin) / span for every pixel of the box in one pass,
    # in 16-bit units so that saturation does the clipping to [0, 1] (at 8 bits the rounding
    # would show in small areas); then summed with the surface weights of ``near_weight``
    scale = _ALPHA_ONE / span
    to_alpha = np.array([[dl * scale, da * scale, db * scale, -(sl * dl + sa * da + sb * db) * scale]])
    alpha = cv2.transform(lab.astype(np.uint16), to_alpha)
    weighted = cv2.multiply(alpha, near_weight, dtype=cv2.CV_64F)
    return cv2.sumElems(weighted)[0] / (_ALPHA_ONE * WEIGHT_SCALE)


def _median3(values: np.ndarray) -> list[float]:
    """Per-column median of an (N, 3) array, which it reorders in place (upper median for
    even N: cheaper than np.median)."""
    k = len(values) // 2
    values.partition(k, axis=0)
    return values[k].tolist()


def _between_two_skins(ring_lab: np.ndarray, colour: list[float]) -> bool:
    """True when the ring's colours (N, 3) hold two distinct skin colours and ``colour`` is a
    mix of them."""
    # split the ring along its main colour direction (the leading principal component)
    ring = ring_lab.astype(np.float32)
    mean, vectors = cv2.PCACompute(ring, mean=None, maxComponents=1)  # type: ignore[call-overload]
    # 256 on the far side of the mean, 0 on the near side: keyed so, the two sides stay
    # apart in each column and one partition yields both sides' medians (the near side first)
    shift = cv2.threshold(cv2.PCAProject(ring, mean, vectors), 0.0, 256.0, cv2.THRESH_BINARY)[1]
    n_side = cv2.countNonZero(shift)
    n_other = len(ring) - n_side
    if n_side == 0 or n_other == 0:
        return False
    k_other, k_side = n_other // 2, n_other + n_side // 2
    keyed = np.add(ring, shift, out=ring)
    keyed.partition((k_other, k_side), axis=0)
    bl, ba, bb = keyed[k_other].tolist()
    al, aa, ab = (keyed[k_side] - 256.0).tolist()
    sl, sa, sb = bl - al, ba - aa, bb - ab  # the segment from one side's median to the other's
    length2 = sl * sl + sa * sa + sb * sb
    if length2 < 25.0**2:  # one skin colour around (in Lab-8 units)
        return False
    cl, ca, cb = colour[0] - al, colour[1] - aa, colour[2] - ab
    t = min(1.0, max(0.0, (cl * sl + ca * sa + cb * sb) / length2))
    gl, ga, gb = cl - t * sl, ca - t * sa, cb - t * sb
    return gl * gl + ga * ga + gb * gb < 12.0**2
