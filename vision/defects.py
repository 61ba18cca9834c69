"""Skin defects inside one fruit's analysed zone.

Owns what counts as a defect pixel (skin that falls in no colour class of the recipe and is
not glare, or skin clearly darker than the fruit's own skin of its class around it; the
glare disk comes from ``vision.skin``), which blobs of them are defects once compared with
the ring of skin right around each (not class-border slivers, faint highlights, or the
skin's own pigment lighter or darker: a defect browns the tissue, so it is duller than its
skin; a blob with too little usable skin around it to compare is not one), and each
defect's surface area and position on the fitted spheroid, so the tracker
can count a defect once across views.

The blob search works on boxes of a few hundred to a few thousand pixels, where a numpy or
OpenCV call costs more in overhead than in arithmetic (some 35 calls per blob when written
so); it is one loop compiled by numba instead, which also releases the GIL. Colour
statistics work on OpenCV's 8-bit CIELAB.
"""

from __future__ import annotations

import math

import cv2
import numba
import numpy as np

from vision.views import CANON_SIZE, WEIGHT_SCALE, DefectView, VisionSettings

_PAD = 4  # margin around a blob's box: room for the ring of skin 2-3 pixels out
_MAX_BLOBS = 64  # per view; more is a rotten fruit, and the first 64 say so
_COLS = 5  # per blob: theta, phi, area, partial, on the rim


def find_defects(
    candidate: np.ndarray,
    weight: np.ndarray,
    usable_weight: np.ndarray,
    zone_lab: np.ndarray,
    to_canon: np.ndarray,
    mm_per_px: float,
    s: VisionSettings,
    min_contrast: float = 0.0,
    code: np.ndarray | None = None,
    ring_spreads: float = 0.0,
) -> list[DefectView]:
    """Connected blobs of defect pixels with their surface area (mm2) and spheroid position.

    ``candidate`` is nonzero on usable skin in no colour class, or darker than the fruit's
    own skin around it; ``zone_lab`` the box in OpenCV's 8-bit CIELAB; ``weight`` the surface weight
    of each pixel (``WEIGHT_SCALE`` per unit of surface/projected area), ``usable_weight`` the
    same without the glare (zero where not usable), ``to_canon`` the affine map from these
    arrays' pixels to the canonical weight map (``vision.measure.canonical_weights``).

    Slivers one or two pixels wide appear where two skin classes meet (the blurred border
    mixes them into no class); an opening with a 3-pixel cross removes them while keeping
    cracks, which are wider than that at the working resolution. A blob touching the border
    of the usable zone is only partly seen (``partial``).

    A blob whose colour differs from the skin around it by less than ``min_contrast``
    (8-bit CIELAB distance; the fruit's own skin variation, ``vision.skin``) is that skin,
    only on the far side of a colour class's border: no defect. A blob with fewer than six
    usable pixels of skin 2-3 pixels around it (one inside the glare disk) cannot be
    compared with its skin and is not counted.
    """
    px_area_mm2 = mm_per_px * mm_per_px
    min_weighted = s.min_defect_area_mm2 / px_area_mm2 * WEIGHT_SCALE  # in weight units
    # no blob of fewer pixels can reach the minimum area, even where the surface is steepest
    min_px = min_weighted / max(1.0, cv2.minMaxLoc(weight)[1])
    if cv2.countNonZero(candidate) < min_px:
        return []
    found = _blobs(
        candidate, weight, usable_weight, zone_lab, np.ascontiguousarray(to_canon, np.float64), min_px, min_weighted,
        min_contrast, np.zeros(candidate.shape, np.uint8) if code is None else code, ring_spreads,
    )
    return [
        DefectView(theta, phi, area_px * px_area_mm2, partial > 0, on_rim > 0)
        for theta, phi, area_px, partial, on_rim in found.tolist()
    ]


@numba.njit(cache=True, nogil=True)
def _blobs(
    candidate: np.ndarray,
    weight: np.ndarray,
    usable: np.ndarray,
    lab: np.ndarray,
    to_canon: np.ndarray,
    min_px: float,
    min_weighted: float,
    min_contrast: float,
    code: np.ndarray,
    ring_spreads: float,
) -> np.ndarray:
    """The defect blobs of a box, one row each: polar angle theta and azimuth phi on the
    spheroid (rad), surface area (pixels), partly hidden (0/1), on the analysed zone's rim
    (0/1). ``code`` holds each pixel's colour class (``vision.colour.classify_bgr``; all zero
    when unknown). A blob must differ from the median of its ring by ``min_contrast`` and by
    ``ring_spreads`` robust standard deviations of the ring's own L (8-bit Lab units)."""
    h, w = candidate.shape
    none = np.zeros((0, _COLS))
    # opening with a 3-pixel cross; as in OpenCV, outside the box counts as set for the
    # erosion and as clear for the dilation
    eroded = np.zeros((h, w), np.uint8)
    for y in range(h):
        for x in range(w):
            if (
                candidate[y, x] != 0
                and (y == 0 or candidate[y - 1, x] != 0)
                and (y == h - 1 or candidate[y + 1, x] != 0)
                and (x == 0 or candidate[y, x - 1] != 0)
                and (x == w - 1 or candidate[y, x + 1] != 0)
            ):
                eroded[y, x] = 1
    cand = np.zeros((h, w), np.uint8)
    n_cand = 0
    for y in range(h):
        for x in range(w):
            if (
                eroded[y, x]
                or (y > 0 and eroded[y - 1, x])
                or (y < h - 1 and eroded[y + 1, x])
                or (x > 0 and eroded[y, x - 1])
                or (x < w - 1 and eroded[y, x + 1])
            ):
                cand[y, x] = 1
                n_cand += 1
    if n_cand < min_px:  # the opening often leaves nothing, or too little
        return none
    out = np.zeros((_MAX_BLOBS, _COLS))
    n_out = 0
    label = np.zeros((h, w), np.int32)
    pixels = np.empty(h * w, np.int64)  # the current blob's pixels, y * w + x
    half = CANON_SIZE / 2
    blob_id = 0
    for sy in range(h):
        for sx in range(w):
            if cand[sy, sx] == 0 or label[sy, sx] != 0 or n_out == _MAX_BLOBS:
                continue
            # one 8-connected blob by flood fill; ``pixels`` doubles as the queue
            blob_id += 1
            label[sy, sx] = blob_id
            pixels[0] = sy * w + sx
            n_px, head = 1, 0
            bx0, by0, bx1, by1 = sx, sy, sx, sy
            while head < n_px:
                y, x = divmod(pixels[head], w)
                head += 1
                bx0, bx1, by0, by1 = min(bx0, x), max(bx1, x), min(by0, y), max(by1, y)
                for ny in range(max(0, y - 1), min(h, y + 2)):
                    for nx in range(max(0, x - 1), min(w, x + 2)):
                        if cand[ny, nx] != 0 and label[ny, nx] == 0:
                            label[ny, nx] = blob_id
                            pixels[n_px] = ny * w + nx
                            n_px += 1
            if (bx1 - bx0 + 1) * (by1 - by0 + 1) < min_px:
                continue
            m00 = m10 = m01 = 0.0
            for k in range(n_px):
                y, x = divmod(pixels[k], w)
                m00 += weight[y, x]
                m10 += weight[y, x] * x
                m01 += weight[y, x] * y
            if m00 < min_weighted:
                continue
            area_px = m00 / WEIGHT_SCALE
            # the blob's box with room for the ring of skin around it
            x0, y0 = max(0, bx0 - _PAD), max(0, by0 - _PAD)
            x1, y1 = min(w, bx1 + 1 + _PAD), min(h, by1 + 1 + _PAD)
            bw, bh = x1 - x0, y1 - y0
            core = np.zeros((bh, bw), np.uint8)
            for k in range(n_px):
                y, x = divmod(pixels[k], w)
                core[y - y0, x - x0] = 1
            # Chebyshev distance to the blob, up to 3: near (<= 1) and ring (2..3)
            dist = np.full((bh, bw), 99, np.int32)
            for y in range(bh):
                for x in range(bw):
                    if core[y, x]:
                        for ny in range(max(0, y - 3), min(bh, y + 4)):
                            for nx in range(max(0, x - 3), min(bw, x + 4)):
                                d = max(abs(ny - y), abs(nx - x))
                                if d < dist[ny, nx]:
                                    dist[ny, nx] = d
            n_near = n_near_usable = n_near_inside = n_ring = n_inner = 0
            ring = np.empty((bh * bw, 3))
            ring_class = np.zeros(bh * bw, np.int64)
            inner = np.empty((bh * bw, 3))
            for y in range(bh):
                for x in range(bw):
                    fy, fx = y + y0, x + x0
                    if dist[y, x] <= 1:
                        n_near += 1
                        n_near_usable += usable[fy, fx] > 0
                        n_near_inside += weight[fy, fx] > 0
                    elif dist[y, x] <= 3 and usable[fy, fx] > 0 and cand[fy, fx] == 0:
                        # usable skin 2-3 pixels out, clear of every blob
                        for c in range(3):
                            ring[n_ring, c] = lab[fy, fx, c]
                        ring_class[n_ring] = code[fy, fx] if code[fy, fx] < 128 else 0
                        n_ring += 1
                    # the blob's inner pixels: eroded by the cross (outside the box set)
                    if (
                        core[y, x]
                        and (fy == 0 or core[y - 1, x])
                        and (fy == h - 1 or core[y + 1, x])
                        and (fx == 0 or core[y, x - 1])
                        and (fx == w - 1 or core[y, x + 1])
                    ):
                        for c in range(3):
                            inner[n_inner, c] = lab[fy, fx, c]
                        n_inner += 1
            if n_inner < 3:  # a thin blob: its own pixels
                n_inner = 0
                for y in range(bh):
                    for x in range(bw):
                        if core[y, x]:
                            for c in range(3):
                                inner[n_inner, c] = lab[y + y0, x + x0, c]
                            n_inner += 1
            if n_ring < 6:
                # too little usable skin around it to tell it from that skin (a blob in
                # the glare disk, among the highlight's fringe): not judged, not counted
                continue
            defect = _upper_median3(inner[:n_inner], np.ones(n_inner, np.bool_))
            skin = _upper_median3(ring[:n_ring], np.ones(n_ring, np.bool_))
            # How much the skin right around the blob varies by itself (1.4826 MAD of its
            # L): the grain of an even skin, more where the ring spans two skins, a shading
            # edge or mottling. A defect must stand out from that, not from a spread taken
            # over half the fruit, whose broad mottling (wavelengths of centimetres) hardly
            # changes over the 2-3 pixels to the ring yet would raise the bar for every
            # blob above many bruises.
            spread = np.empty((n_ring, 3))
            for i in range(n_ring):
                d = abs(ring[i, 0] - skin[0])
                spread[i, 0], spread[i, 1], spread[i, 2] = d, d, d
            ring_sigma_l8 = 1.4826 * _upper_median3(spread, np.ones(n_ring, np.bool_))[0]
            contrast = max(min_contrast, ring_spreads * ring_sigma_l8)  # 8-bit Lab units
            if _between_two_skins(ring[:n_ring], defect):
                continue  # the blurred border of two skins
            ring_skins = _ring_class_means(ring[:n_ring], ring_class[:n_ring])
            if _explained_by_ring_classes(ring_skins, defect, contrast):
                continue  # one of the skins around it, or the blurred border of two or three
            if _lit_skin(ring_skins, skin, defect):
                continue  # a highlight too faint to be glare: a skin around it, lighter
            if _same_pigment(skin, defect, contrast):
                continue  # the skin's own colour, only lighter or darker: mottling, shading
            direction = defect - skin
            span = (direction * direction).sum()
            if span < contrast * contrast:
                continue  # the skin itself, just across a class border, or its own variation
            if span >= 100.0:  # else too close to the skin colour to unmix (10 Lab-8 units)
                # each pixel of the blob or next to it counts by its share of defect
                # along the line from the skin colour to the defect's
                unmixed = 0.0
                for y in range(bh):
                    for x in range(bw):
                        fy, fx = y + y0, x + x0
                        if dist[y, x] <= 1 and usable[fy, fx] > 0:
                            alpha = 0.0
                            for c in range(3):
                                alpha += (lab[fy, fx, c] - skin[c]) * direction[c]
                            alpha = min(1.0, max(0.0, alpha / span))
                            unmixed += alpha * usable[fy, fx]
                area_px = unmixed / WEIGHT_SCALE
            # position on the spheroid from the surface-weighted centre
            cx, cy = m10 / m00, m01 / m00
            cu = to_canon[0, 0] * cx + to_canon[0, 1] * cy + to_canon[0, 2]
            cv = to_canon[1, 0] * cx + to_canon[1, 1] * cy + to_canon[1, 2]
            u, v = (cu + 0.5) / half - 1, (cv + 0.5) / half - 1
            depth = math.sqrt(max(1e-6, 1.0 - u * u - v * v))
            out[n_out, 0] = math.acos(max(-1.0, min(1.0, -v)))
            out[n_out, 1] = math.atan2(u, depth)
            out[n_out, 2] = area_px
            # partly hidden: some pixel next to the blob is not usable (analysed rim or glare)
            out[n_out, 3] = 1.0 if n_near_usable < n_near else 0.0
            # on the rim: some pixel next to it is outside the analysed zone (not only glare)
            out[n_out, 4] = 1.0 if n_near_inside < n_near else 0.0
            n_out += 1
    return out[:n_out]


@numba.njit(cache=True)
def _upper_median3(values: np.ndarray, take: np.ndarray) -> np.ndarray:
    """Per-column upper median (the (n // 2)-th smallest) of the rows of an (N, 3) array of
    8-bit values where ``take`` is true, by counting: exact for 8-bit values, and with
    neither a sort nor boolean indexing (slow to compile in numba)."""
    counts = np.zeros((3, 256), np.int64)
    n = 0
    for i in range(values.shape[0]):
        if take[i]:
            n += 1
            for c in range(3):
                counts[c, int(values[i, c])] += 1
    median = np.zeros(3)
    k = n // 2
    for c in range(3):
        seen = 0
        for level in range(256):
            seen += counts[c, level]
            if seen > k:
                median[c] = level
                break
    return median


@numba.njit(cache=True)
def _between_two_skins(ring: np.ndarray, colour: np.ndarray) -> bool:
    """True when the ring's colours (N, 3) hold two distinct skin colours and ``colour`` is a
    mix of them."""
    # split the ring along its main colour direction: the leading eigenvector of its
    # covariance, by power iteration (3 x 3, well separated when there are two skins; when
    # there are not, the split does not matter, as the test below then fails anyway). The
    # algebra is written out: numba's matrix products need SciPy's BLAS.
    n = ring.shape[0]
    mean = np.zeros(3)
    for i in range(n):
        for c in range(3):
            mean[c] += ring[i, c]
    mean /= n
    cov = np.zeros((3, 3))
    for i in range(n):
        for r in range(3):
            for c in range(3):
                cov[r, c] += (ring[i, r] - mean[r]) * (ring[i, c] - mean[c])
    vector = np.zeros(3)
    best = 0.0
    for r in range(3):  # start from the covariance's longest row
        length2 = cov[r, 0] ** 2 + cov[r, 1] ** 2 + cov[r, 2] ** 2
        if length2 > best:
            best = length2
            vector[0], vector[1], vector[2] = cov[r, 0], cov[r, 1], cov[r, 2]
    if best == 0.0:
        return False
    for _ in range(32):
        x = cov[0, 0] * vector[0] + cov[0, 1] * vector[1] + cov[0, 2] * vector[2]
        y = cov[1, 0] * vector[0] + cov[1, 1] * vector[1] + cov[1, 2] * vector[2]
        z = cov[2, 0] * vector[0] + cov[2, 1] * vector[1] + cov[2, 2] * vector[2]
        norm = math.sqrt(x * x + y * y + z * z)
        vector[0], vector[1], vector[2] = x / norm, y / norm, z / norm
    side = np.empty(n, np.bool_)
    n_side = 0
    for i in range(n):
        projection = 0.0
        for c in range(3):
            projection += (ring[i, c] - mean[c]) * vector[c]
        side[i] = projection > 0.0
        n_side += side[i]
    if n_side == 0 or n_side == n:
        return False
    a = _upper_median3(ring, side)
    b = _upper_median3(ring, ~side)
    segment = b - a
    length2 = (segment * segment).sum()
    if length2 < 25.0**2:  # one skin colour around (in Lab-8 units)
        return False
    t = min(1.0, max(0.0, ((colour - a) * segment).sum() / length2))
    gap = colour - (a + t * segment)
    return (gap * gap).sum() < 12.0**2


@numba.njit(cache=True)
def _ring_class_means(ring: np.ndarray, ring_class: np.ndarray) -> np.ndarray:
    """The mean colour of each colour class with at least three pixels in the ring, one row
    each: the skins of the ring. Only pixels in a class count, so the blob's own blurred
    fringe (in no class) cannot pose as a skin. Read once per blob, by
    ``_explained_by_ring_classes`` and ``_lit_skin`` alike."""
    n_max = 8
    sums = np.zeros((n_max, 3))
    counts = np.zeros(n_max)
    for i in range(ring.shape[0]):
        c = ring_class[i]
        if 0 < c < n_max:
            sums[c] += ring[i]
            counts[c] += 1
    means = np.zeros((n_max, 3))
    k = 0
    for c in range(1, n_max):
        if counts[c] >= 3:
            means[k] = sums[c] / counts[c]
            k += 1
    return means[:k]


@numba.njit(cache=True)
def _explained_by_ring_classes(means: np.ndarray, colour: np.ndarray, min_contrast: float) -> bool:
    """True when ``colour`` is one of the skins in the ring around a blob (``means``, from
    ``_ring_class_means``), within ``min_contrast`` of a class's mean: the same skin, only
    across its class border; or a blend of them: within 12 units (8-bit Lab) of the segment
    between two classes' mean colours, or of the triangle of three. A thin stripe of one
    skin between two others, or the point where three meet, blurs into such blends; a
    bruise, russet or rot lies off them."""
    k = means.shape[0]
    for p in range(k):
        gap = colour - means[p]
        if (gap * gap).sum() < min_contrast * min_contrast:
            return True
    if k < 2:
        return False
    tolerance2 = 12.0**2
    for p in range(k):
        for q in range(p + 1, k):
            segment = means[q] - means[p]
            length2 = (segment * segment).sum()
            if length2 < 1.0:
                continue
            t = min(1.0, max(0.0, ((colour - means[p]) * segment).sum() / length2))
            gap = colour - (means[p] + t * segment)
            if (gap * gap).sum() < tolerance2:
                return True
            for r in range(q + 1, k):
                # the triangle p, q, r: barycentric coordinates of the colour's projection
                e1, e2, d = means[q] - means[p], means[r] - means[p], colour - means[p]
                a11, a12, a22 = (e1 * e1).sum(), (e1 * e2).sum(), (e2 * e2).sum()
                b1, b2 = (d * e1).sum(), (d * e2).sum()
                det = a11 * a22 - a12 * a12
                if det < 1e-6:
                    continue
                u = (a22 * b1 - a12 * b2) / det
                v = (a11 * b2 - a12 * b1) / det
                if u >= 0.0 and v >= 0.0 and u + v <= 1.0:
                    gap = d - u * e1 - v * e2
                    if (gap * gap).sum() < tolerance2:
                        return True
    return False


# Damaged tissue browns: a bruise, rot, russet, a scar or a spot is duller than the skin
# around it. A patch that keeps nine tenths of the skin's chroma and differs from it by less
# than twice the contrast a defect needs is the skin's own pigment, more or less lit or more
# or less dense (mottling, a streak, shading); a stronger change is a defect whatever its
# chroma (a dark spot on pale skin, russet on dark red).
SAME_PIGMENT_CHROMA = 0.9
SAME_PIGMENT_CONTRASTS = 2.0


@numba.njit(cache=True)
def _same_pigment(skin: np.ndarray, colour: np.ndarray, contrast: float) -> bool:
    """True when ``colour`` (8-bit Lab) keeps ``SAME_PIGMENT_CHROMA`` of the skin's chroma
    and its lightness is within ``SAME_PIGMENT_CONTRASTS`` times ``contrast`` of the skin's."""
    skin_chroma = math.hypot(skin[1] - 128.0, skin[2] - 128.0)
    chroma = math.hypot(colour[1] - 128.0, colour[2] - 128.0)
    return chroma > SAME_PIGMENT_CHROMA * skin_chroma and abs(skin[0] - colour[0]) < SAME_PIGMENT_CONTRASTS * contrast


@numba.njit(cache=True)
def _on_segment(a: np.ndarray, b: np.ndarray, colour: np.ndarray, tolerance: float) -> bool:
    """True when ``colour`` lies within ``tolerance`` of the segment from ``a`` to ``b``
    (8-bit Lab), beyond its first tenth: a blend of the two, clearly toward ``b``."""
    segment = b - a
    length2 = (segment * segment).sum()
    if length2 < 1.0:
        return False
    t = ((colour - a) * segment).sum() / length2
    if t < 0.1:
        return False
    gap = colour - (a + min(t, 1.0) * segment)
    return (gap * gap).sum() < tolerance * tolerance


_WHITE_LAB8 = np.array([255.0, 128.0, 128.0])

# The lamp's light as the sensor records it: no brighter than full scale, and no darker than
# this share of it. The lens's falloff toward the field's corners, a dimmer lane and the
# drift of the light leave a glint well above it; a grey below it mixed into the skin is the
# tissue dulled (a bruise, rot), not the lamp.
LAMP_LEVEL_MIN = 0.6


@numba.njit(cache=True)
def _skin_toward_white(skin: np.ndarray, colour: np.ndarray) -> bool:
    """True when ``colour`` (8-bit Lab) is the skin's colour lit by more of the lamp's
    neutral light: clearly lighter, and within 12 units of the skin mixed with a neutral as
    light as a glint. A specular reflection adds the lamp's light to the skin; a scar or
    russet is lighter than red skin too, but of another hue, so it lies off that mix.

    The mix is linear in the camera's RGB, where CIELAB bends it (a saturated skin loses its
    chroma faster than it gains lightness), so it is also judged in RGB, in the sensor's
    encoded values and in linear light alike, as a camera's tone curve lies anywhere
    between; the gap is measured in encoded 8-bit RGB. There the lamp's level is not taken
    as full scale: after the lens's falloff and a lane's own light it is less, and a mix of
    the skin with that lighter grey lies off the line to full white by more than 12 units
    once it is a third of the colour."""
    if _on_segment(skin, _WHITE_LAB8, colour, 12.0):
        return True
    if colour[0] <= skin[0]:
        return False
    skin_rgb, colour_rgb = _lab8_to_rgb(skin), _lab8_to_rgb(colour)
    return _near_skin_plus_lamp(skin_rgb, colour_rgb, False) or _near_skin_plus_lamp(skin_rgb, colour_rgb, True)


@numba.njit(cache=True)
def _lit_skin(means: np.ndarray, skin: np.ndarray, colour: np.ndarray) -> bool:
    """True when ``colour`` is the ring's median skin lit by the lamp (``_skin_toward_white``),
    or one of the skins of the ring's colour classes (``means``, from ``_ring_class_means``)
    lit. A highlight on a stripe of one skin among another takes the stripe's hue, which the
    ring's median need not have."""
    lit, p = _skin_toward_white(skin, colour), 0
    while not lit and p < means.shape[0]:  # a loop, not any() over a generator, which numba does not compile
        lit = _skin_toward_white(means[p], colour)
        p += 1
    return lit


@numba.njit(cache=True)
def _near_skin_plus_lamp(skin_rgb: np.ndarray, colour_rgb: np.ndarray, linear: bool) -> bool:
    """True when ``colour_rgb`` (encoded RGB, 0..1) lies within 12 encoded 8-bit units of
    ``keep * skin + light * (1, 1, 1)``, the mix drawn in encoded values or, with ``linear``,
    in linear light: the skin keeps at most all of its own colour (``keep`` <= 1), and what
    it gives up is made up by a neutral at least ``LAMP_LEVEL_MIN`` of full scale and at
    most full scale (``light`` >= ``LAMP_LEVEL_MIN * (1 - keep)``, ``light`` <= ``1 - keep``
    once the skin gives some up), and that neutral is at least a tenth of the colour's
    distance from the skin to full white."""
    a, c = skin_rgb.copy(), colour_rgb.copy()
    if linear:
        for i in range(3):
            a[i], c[i] = _to_linear(a[i]), _to_linear(c[i])
    # least squares of c ~ keep * a + light * (1, 1, 1): the 2 x 2 normal equations
    aa = a[0] * a[0] + a[1] * a[1] + a[2] * a[2]
    a1 = a[0] + a[1] + a[2]
    ac = a[0] * c[0] + a[1] * c[1] + a[2] * c[2]
    c1 = c[0] + c[1] + c[2]
    det = 3.0 * aa - a1 * a1  # zero only for a neutral skin, where white light is any lighter grey
    if det < 1e-9:
        return False
    keep = min(1.0, max(0.0, (3.0 * ac - a1 * c1) / det))
    light = (c1 - keep * a1) / 3.0  # the best neutral for that share of the skin
    given_up = 1.0 - keep
    light = min(max(light, LAMP_LEVEL_MIN * given_up), given_up if given_up > 0.0 else light)
    # a tenth of the way to white at least, as a faint highlight's fringe starts
    room = 3.0 - a1
    if room < 1e-6 or (keep * a1 + 3.0 * light - a1) < 0.1 * room:
        return False
    gap2 = 0.0
    for i in range(3):
        nearest = keep * a[i] + light
        if linear:
            nearest = _to_encoded(min(1.0, max(0.0, nearest)))
        gap2 += ((colour_rgb[i] - nearest) * 255.0) ** 2
    return gap2 < 12.0**2


@numba.njit(cache=True)
def _lab8_to_rgb(lab: np.ndarray) -> np.ndarray:
    """OpenCV's 8-bit CIELAB (D65) back to sRGB-encoded RGB in 0..1, clipped to the gamut."""
    fy = (lab[0] * 100.0 / 255.0 + 16.0) / 116.0
    fx = fy + (lab[1] - 128.0) / 500.0
    fz = fy - (lab[2] - 128.0) / 200.0
    xyz = np.empty(3)
    for i, (f, white) in enumerate(((fx, 0.950456), (fy, 1.0), (fz, 1.088754))):
        xyz[i] = white * (f * f * f if f > 6.0 / 29.0 else 3.0 * (6.0 / 29.0) ** 2 * (f - 4.0 / 29.0))
    x, y, z = xyz[0], xyz[1], xyz[2]
    rgb = np.array(
        [
            3.2404542 * x - 1.5371385 * y - 0.4985314 * z,
            -0.9692660 * x + 1.8760108 * y + 0.0415560 * z,
            0.0556434 * x - 0.2040259 * y + 1.0572252 * z,
        ]
    )
    for i in range(3):
        rgb[i] = _to_encoded(min(1.0, max(0.0, rgb[i])))
    return rgb


@numba.njit(cache=True)
def _to_linear(v: float) -> float:
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


@numba.njit(cache=True)
def _to_encoded(v: float) -> float:
    return 12.92 * v if v <= 0.0031308 else 1.055 * v ** (1.0 / 2.4) - 0.055


def warm_up() -> None:
    """Compile (or load from numba's on-disk cache) the blob search now, not in the middle
    of the first frame that holds a defect: compiling takes seconds."""
    empty = np.zeros((3, 3), np.uint8)
    _blobs(empty, empty, empty, np.zeros((3, 3, 3), np.uint8), np.zeros((2, 3)), 1.0, 1.0, 0.0, empty, 0.0)
