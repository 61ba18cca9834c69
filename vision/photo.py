"""Teaching and spot-check photos: find each fruit's mask, on any background.

Owns segmentation of photos as staff take them: one or a few fruit on a white or other
uniform background, possibly cropped so close that the fruit touches the image edge; or one
fruit held in a hand, on a table, among leaves or in a crate, possibly filling most of the
frame. Also the scale of such a photo from a reference lying in it (a printed checkerboard
or a flat disc), found automatically. Belt scenes with lanes and tracking belong to
``vision.pipeline``; this module exists
because those photos have no belt background model to subtract. A photo where no blob looks
like a fruit is refused with the reason (``NoFruitFound``) rather than measured. Pure
functions on numpy arrays: reading files is the caller's job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "NoFruitFound",
    "NoReferenceFound",
    "PhotoFruit",
    "PhotoScale",
    "background_bgr",
    "checkerboard_scale",
    "disc_scale",
    "find_photo_fruit",
    "segment_fruit",
    "segment_fruits",
    "without_reference",
]

# Smallest blob kept as a fruit, as a share of the image area: JPEG specks and shadows on
# the background are far smaller than any fruit someone photographs on purpose.
_MIN_FRUIT_SHARE = 0.01
# A delta E (CIE76) this small is invisible; backgrounds vary more than that across a photo
# only when the photo is not really "plain", so it floors the automatic threshold.
_MIN_DELTA_E = 10.0


class NoFruitFound(ValueError):
    """The photo holds nothing that stands out from its background."""


def _lab(image_bgr: np.ndarray) -> np.ndarray:
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(f"expected an 8-bit BGR image, got shape {image_bgr.shape} dtype {image_bgr.dtype}")
    # Float conversion gives true CIELAB ranges (L 0..100, a/b about -128..127).
    return cv2.cvtColor(image_bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)


def _border_background(image: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """Border pixels of ``image`` whose Lab colour falls in the border's most frequent bin.

    A close crop lets the fruit touch the edges, so the border is not all background; the
    most frequent colour on the border is (corners and most of the frame stay background).
    """

    def frame(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])

    border_lab = frame(lab)
    # Coarse bins (8 units per axis) so JPEG noise on a plain background lands in one bin.
    bins = np.floor(border_lab / 8.0).astype(np.int32)
    _keys, inverse, counts = np.unique(bins, axis=0, return_inverse=True, return_counts=True)
    chosen: np.ndarray = frame(image)[inverse.ravel() == int(np.argmax(counts))]
    return chosen


def background_bgr(image_bgr: np.ndarray) -> np.ndarray:
    """The background colour of a photo as 8-bit BGR, from its border."""
    chosen = _border_background(image_bgr, _lab(image_bgr))
    return np.asarray(np.median(chosen, axis=0).round(), dtype=np.uint8)


def _foreground(image_bgr: np.ndarray) -> np.ndarray:
    lab = _lab(image_bgr)
    bg = np.median(_border_background(lab, lab), axis=0)
    delta_e = np.linalg.norm(lab - bg, axis=2)
    scaled = np.clip(delta_e * 2.0, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    threshold = max(_MIN_DELTA_E, float(otsu) / 2.0)
    mask = (delta_e > threshold).astype(np.uint8) * 255
    size = max(3, (min(mask.shape) // 100) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)


def segment_fruits(image_bgr: np.ndarray) -> list[np.ndarray]:
    """One filled mask (uint8, 0/255, image-sized) per fruit, largest first.

    Holes inside a fruit (specular highlights that look like a white background) are
    filled from the outer contour. Raises ``NoFruitFound`` when nothing stands out.
    """
    mask = _foreground(image_bgr)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    min_area_px = _MIN_FRUIT_SHARE * mask.shape[0] * mask.shape[1]
    kept = sorted((c for c in contours if cv2.contourArea(c) >= min_area_px), key=cv2.contourArea, reverse=True)
    if not kept:
        raise NoFruitFound("no fruit stands out from the background")
    masks = []
    for contour in kept:
        filled = np.zeros(mask.shape, np.uint8)
        cv2.drawContours(filled, [contour], -1, 255, thickness=cv2.FILLED)
        masks.append(filled)
    return masks


def segment_fruit(image_bgr: np.ndarray) -> np.ndarray:
    """The mask of the largest fruit in the photo (see ``segment_fruits``)."""
    return segment_fruits(image_bgr)[0]


# --- photos on a cluttered background ------------------------------------------------------

# A plain background fills most of the photo's border with one colour (the FGrade close
# crops: 53-66 %); a table, leaves or a hand spread it over many colours. Above the first
# share a plain-background fruit is taken as found; between the two GrabCut is asked too
# (it costs some 0.5 s a photo).
_PLAIN_BORDER_SHARE = 0.35
_CLEARLY_PLAIN_BORDER_SHARE = 0.5
# A fruit is a compact, nearly convex blob close to an ellipse: a background region that
# GrabCut keeps by mistake (a shadow, a leaf, a crate slat) is ragged, thin or square.
_MIN_SOLIDITY = 0.85
_MIN_ELLIPSE_OVERLAP = 0.85
_MIN_SHARE, _MAX_SHARE = 0.02, 0.97
# A blob reaching from one edge of the photo to the other is a fruit only when it fills this
# much of it (a close crop: the FGrade crops' fruit fill 74 % or more); a thinner one is a
# board, a slat or a stripe of background.
_MIN_SPANNING_SHARE = 0.5
# GrabCut runs on a copy this size (longest side): its graph cut grows with the pixel count,
# and the quality features read the fruit at 160 px anyway.
_GRABCUT_SIDE_PX = 320
_GRABCUT_ITERATIONS = 5
# The middle ellipse of the second try, for a fruit that covers little of the photo.
_SMALL_MIDDLE_SHARE = 0.1


@dataclass(frozen=True)
class PhotoFruit:
    """The fruit found in a photo and how."""

    mask: np.ndarray  # uint8 0/255, image-sized, holes filled
    method: str  # "plain-background" or "grabcut"
    others: tuple[np.ndarray, ...] = ()  # further fruit on a plain background, largest first


def _plain_border_share(lab: np.ndarray) -> float:
    border = np.concatenate([lab[0], lab[-1], lab[1:-1, 0], lab[1:-1, -1]])
    _keys, counts = np.unique(np.floor(border / 8.0).astype(np.int32), axis=0, return_counts=True)
    return float(counts.max()) / len(border)


def _looks_like_fruit(mask: np.ndarray) -> str | None:
    """None when the mask is one plausible fruit, else why not."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return "nothing stands out from the background"
    outline = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(outline)
    share = area / (mask.shape[0] * mask.shape[1])
    if share < _MIN_SHARE:
        return f"the largest object covers only {share:.1%} of the photo"
    if share > _MAX_SHARE:
        return "no edge between fruit and background is visible"
    spans = (mask[0].any() and mask[-1].any()) or (mask[:, 0].any() and mask[:, -1].any())
    if spans and share < _MIN_SPANNING_SHARE:
        return "the object found runs across the photo (not a fruit)"
    hull = cv2.contourArea(cv2.convexHull(outline))
    solidity = area / hull if hull > 0 else 0.0
    if solidity < _MIN_SOLIDITY:
        return f"the object found is not fruit-shaped (solidity {solidity:.2f})"
    if len(outline) >= 5 and not _touches_border(mask):
        # a whole outline must be near an ellipse (one cut by the photo's edge cannot be judged)
        ellipse = np.zeros(mask.shape, np.uint8)
        cv2.ellipse(ellipse, cv2.fitEllipse(outline), 255, -1)
        overlap = float(((ellipse > 0) & (mask > 0)).sum()) / max(1, int(((ellipse > 0) | (mask > 0)).sum()))
        if overlap < _MIN_ELLIPSE_OVERLAP:
            return f"the object found is not fruit-shaped (ellipse overlap {overlap:.2f})"
    return None


def _touches_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def _edge_contrast(lab: np.ndarray, mask: np.ndarray) -> float:
    """Median colour difference (delta E) between a band just inside the outline and one just
    outside it: how clearly this outline separates something from its surroundings."""
    side = max(3, (min(mask.shape) // 60) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    inner = (mask > 0) & (cv2.erode(mask, kernel) == 0)
    outer = (cv2.dilate(mask, kernel) > 0) & (mask == 0)
    if not inner.any() or not outer.any():
        return 0.0
    return float(np.linalg.norm(np.median(lab[inner], axis=0) - np.median(lab[outer], axis=0)))


def _filled(mask: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros(mask.shape, np.uint8)
    if contours:
        cv2.drawContours(filled, [max(contours, key=cv2.contourArea)], -1, 255, thickness=cv2.FILLED)
    return filled


# Thin parts attached to a fruit's blob (a crate slat, a finger, a stalk, a stripe of table
# between two boards) are cut off by an opening with a disc of this share of the blob's
# largest inscribed radius: a fruit's own outline, curved no tighter than that, survives.
_ATTACHMENT_SHARE = 0.35


def _fruit_body(mask: np.ndarray) -> np.ndarray:
    """``mask`` without thin attachments: opened by a disc scaled to the blob, keeping the
    part around its deepest point, holes filled."""
    inside = (mask > 0).astype(np.uint8)
    if inside.all():  # nothing outside it to measure a depth against
        return mask
    distance = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    radius_px = int(_ATTACHMENT_SHARE * float(distance.max()))
    if radius_px < 2:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1, 2 * radius_px + 1))
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    count, labels = cv2.connectedComponents(opened)
    deepest = np.unravel_index(int(np.argmax(distance)), distance.shape)
    if count < 2 or labels[deepest] == 0:
        return mask
    return _filled((labels == labels[deepest]).astype(np.uint8) * 255)


def _as_fruit(mask: np.ndarray) -> tuple[np.ndarray, str | None]:
    """``mask`` if it looks like one fruit; else ``_body_as_fruit``. A mask that passes is
    never changed."""
    why = _looks_like_fruit(mask)
    return (mask, None) if why is None else _body_as_fruit(mask, why)


def _body_as_fruit(mask: np.ndarray, why: str) -> tuple[np.ndarray, str | None]:
    """For a mask refused for ``why``: its body without thin attachments if that looks like
    one fruit, else the mask and ``why``."""
    body = _fruit_body(mask)
    if body is not mask and _looks_like_fruit(body) is None:
        return body, None
    return mask, why


def _grabcut(image_bgr: np.ndarray, middle_share: float = 0.2) -> np.ndarray:
    """The fruit by OpenCV's GrabCut, seeded as staff are asked to photograph: the fruit near
    the middle, some background along the border. The border strip starts as probable
    background and the rest as probable foreground, so a fruit that fills most of the frame
    or touches an edge can still win those pixels."""
    height, width = image_bgr.shape[:2]
    factor = min(1.0, _GRABCUT_SIDE_PX / max(height, width))
    small = cv2.resize(image_bgr, (max(1, round(width * factor)), max(1, round(height * factor))), interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    # the middle is the fruit, staff centre it; the outer part is probably background, so
    # the first colour models are the middle's and the rim's; a fruit filling the frame wins
    # the rim's pixels back when their colour is the middle's
    seed = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    cv2.ellipse(seed, (w // 2, h // 2), (max(1, int(middle_share * w)), max(1, int(middle_share * h))), 0, 0, 360, cv2.GC_PR_FGD, -1)
    sure = 5.0 / 12.0 * middle_share  # 1/12 of the frame for the default
    cv2.ellipse(seed, (w // 2, h // 2), (max(1, int(sure * w + 1e-6)), max(1, int(sure * h + 1e-6))), 0, 0, 360, cv2.GC_FGD, -1)
    background_model, foreground_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    # GrabCut seeds its colour models by k-means on OpenCV's global random generator: seed it
    # so a photo's mask does not depend on what was measured before it
    cv2.setRNGSeed(0)
    cv2.grabCut(small, seed, (0, 0, 0, 0), background_model, foreground_model, _GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    fruit = ((seed == cv2.GC_FGD) | (seed == cv2.GC_PR_FGD)).astype(np.uint8) * 255
    # the blob holding the middle, smoothed a little (GrabCut's edge follows texture)
    count, labels = cv2.connectedComponents(fruit)
    if count > 1:
        fruit = (labels == labels[h // 2, w // 2]).astype(np.uint8) * 255 if labels[h // 2, w // 2] else fruit
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    fruit = _filled(cv2.morphologyEx(fruit, cv2.MORPH_OPEN, kernel))
    full = cv2.resize(fruit.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return (full > 127).astype(np.uint8) * 255


def find_photo_fruit(image_bgr: np.ndarray) -> PhotoFruit:
    """The fruit in a photo: on a plain background every fruit (``segment_fruits``), else
    the one in the middle by GrabCut. Raises ``NoFruitFound`` saying why when no blob
    looks like a fruit, so a background blob is never measured or scored."""
    lab = _lab(image_bgr)
    reason = "the border is not one plain colour"
    plain: PhotoFruit | None = None
    if _plain_border_share(lab) >= _PLAIN_BORDER_SHARE:
        try:
            masks = segment_fruits(image_bgr)
        except NoFruitFound:
            masks = []
        why: str | None = "no fruit stands out from the background"
        if masks:
            masks[0], why = _as_fruit(masks[0])
        if why is None:
            plain = PhotoFruit(masks[0], "plain-background", tuple(masks[1:]))
            if _plain_border_share(lab) >= _CLEARLY_PLAIN_BORDER_SHARE:
                return plain
        else:
            reason = why
    mask = _grabcut(image_bgr)
    why = _looks_like_fruit(mask)
    if why is not None and plain is not None:
        return plain
    if why is not None:
        # Nothing else was found, so try twice more before refusing: the same outline
        # without thin attachments (a slat, a finger), then GrabCut seeded with half the
        # middle, because a small fruit leaves background inside the middle ellipse and
        # GrabCut's first colour model takes it for fruit.
        mask, why = _body_as_fruit(mask, why)
        if why is not None:
            smaller, smaller_why = _as_fruit(_grabcut(image_bgr, _SMALL_MIDDLE_SHARE))
            if smaller_why is None:
                mask, why = smaller, None
        if why is not None:
            raise NoFruitFound(f"{why} (plain-background search: {reason})")
        return PhotoFruit(mask, "grabcut")
    cut = PhotoFruit(mask, "grabcut")
    if plain is None:
        return cut
    # A border of one colour can still hide a cluttered scene (boards of one wood, a hand).
    # When GrabCut's fruit lies inside a clearly larger plain-background blob, that blob is
    # the fruit and what it rests on; otherwise keep the outline that stands out more
    # clearly from what is around it.
    inside = float(((cut.mask > 0) & (plain.mask > 0)).sum()) / max(1, int((cut.mask > 0).sum()))
    if inside >= 0.9 and (cut.mask > 0).sum() < 0.85 * (plain.mask > 0).sum():
        return cut
    return plain if _edge_contrast(lab, plain.mask) >= _edge_contrast(lab, cut.mask) else cut


# --- the scale of a photo from a reference in view ------------------------------------------


class NoReferenceFound(ValueError):
    """The reference object named for a photo is not in it, or not clearly."""


@dataclass(frozen=True)
class PhotoScale:
    mm_per_px: float
    source: str  # what gave it, for the record: "checkerboard 7x5 @ 10 mm", "disc 30 mm"
    mask: np.ndarray  # uint8 0/255: the reference's pixels, kept out of the fruit search


def checkerboard_scale(image_bgr: np.ndarray, pattern: tuple[int, int], square_mm: float) -> PhotoScale:
    """The scale from a printed checkerboard lying in the photo (``pattern`` inner corners,
    squares of ``square_mm``): the median spacing of neighbouring corners (OpenCV's corner
    finder, via ``vision.calibration.find_checkerboard``)."""
    from vision.calibration import CalibrationError, find_checkerboard

    try:
        corners = find_checkerboard(image_bgr, pattern)
    except CalibrationError as exc:
        raise NoReferenceFound(str(exc)) from exc
    cols, rows = pattern
    grid = corners.reshape(rows, cols, 2)
    spacing_px = float(
        np.median(np.concatenate([np.linalg.norm(np.diff(grid, axis=1), axis=2).ravel(), np.linalg.norm(np.diff(grid, axis=0), axis=2).ravel()]))
    )
    # the whole board: the inner corners' hull grown by a square and a half on every side
    # (the outer squares and the paper's margin)
    hull = cv2.convexHull(corners.astype(np.float32))
    board = np.zeros(image_bgr.shape[:2], np.uint8)
    cv2.fillConvexPoly(board, np.round(hull.reshape(-1, 2)).astype(np.int32), 255)
    reach = int(math.ceil(1.5 * spacing_px))
    mask = np.asarray(cv2.dilate(board, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * reach + 1, 2 * reach + 1))))
    return PhotoScale(square_mm / spacing_px, f"checkerboard {cols}x{rows} @ {square_mm:g} mm", mask)


def disc_scale(image_bgr: np.ndarray, disc_mm: float) -> PhotoScale:
    """The scale from a flat, evenly coloured disc of ``disc_mm`` lying beside the fruit on
    a plain background: of the round objects found (axis ratio >= 0.9 seen from above), the
    one whose lightness varies least inside (a fruit is shaded and has a highlight; a lid or
    a printed disc has neither). Its diameter is the area's equivalent diameter, corrected
    for a slight tilt as ``vision.calibration.calibrate_disc`` does."""
    try:
        masks = segment_fruits(image_bgr)
    except NoFruitFound as exc:
        raise NoReferenceFound("no disc stands out from the background") from exc
    if len(masks) < 2:
        raise NoReferenceFound("the photo shows one object; the disc must lie beside the fruit")
    lightness = _lab(image_bgr)[..., 0]
    best: tuple[float, np.ndarray, float] | None = None
    for mask in masks:
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        outline = max(contours, key=cv2.contourArea)
        if len(outline) < 20:
            continue
        _centre, (axis_a, axis_b), _angle = cv2.fitEllipse(outline)
        ratio = min(axis_a, axis_b) / max(axis_a, axis_b)
        if ratio < 0.9:
            continue
        inside = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))) > 0
        if inside.sum() < 50:
            continue
        low, high = np.percentile(lightness[inside], (10, 90))
        if best is None or high - low < best[0]:
            equivalent_px = math.sqrt(4.0 * float(np.count_nonzero(mask)) / math.pi)
            best = (float(high - low), mask, equivalent_px / math.sqrt(ratio))
    if best is None:
        raise NoReferenceFound("no round object for the disc found (is it seen from above, whole, beside the fruit?)")
    _spread, mask, diameter_px = best
    grown = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    return PhotoScale(disc_mm / diameter_px, f"disc {disc_mm:g} mm", grown)


def without_reference(image_bgr: np.ndarray, scale: PhotoScale) -> np.ndarray:
    """The photo with the reference painted over in the background's colour, so the fruit
    search does not find it."""
    out = image_bgr.copy()
    keep = scale.mask == 0
    background = np.median(out[keep][:: max(1, int(keep.sum()) // 20000)], axis=0) if keep.any() else np.array([255, 255, 255])
    out[~keep] = background.astype(np.uint8)
    return out
