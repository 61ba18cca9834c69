"""The defect search on small synthetic skins: unmixed area, partial flag and class-border
slivers (the glare disk is the skin read's: tests/unit/vision/test_skin.py)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from vision.colour import CANONICAL_CLASSES, classify_bgr, colour_lut
from vision.defects import (
    _WHITE_LAB8,
    _lit_skin,
    _on_segment,
    _ring_class_means,
    _skin_toward_white,
    find_defects,
)
from vision.views import CANON_SIZE, WEIGHT_SCALE, DefectView, VisionSettings

MM_PER_PX = 0.3
SIDE_PX = 80
SETTINGS = VisionSettings(mm_per_px=MM_PER_PX, lanes=1, colour_classes=CANONICAL_CLASSES["apple"])
RED_SKIN = (40, 40, 200)  # BGR
YELLOW_SKIN = (40, 200, 220)
BROWN_SPOT = (30, 60, 90)
# the box spans the whole canonical map: its centre faces the camera
TO_CANON = np.array([[CANON_SIZE / SIDE_PX, 0.0, 0.0], [0.0, CANON_SIZE / SIDE_PX, 0.0]])


def _blend(share: np.ndarray, inside: tuple[int, int, int], outside: tuple[int, int, int]) -> np.ndarray:
    """BGR image mixing ``inside`` by ``share`` (0..1) into ``outside``, as a blurred edge does."""
    a = share[..., None]
    return np.round(a * np.array(inside) + (1 - a) * np.array(outside)).astype(np.uint8)


def _spot(radius_px: float, centre: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A blurred brown disc on red skin: (BGR image, share of the disc in each pixel)."""
    sharp = np.zeros((SIDE_PX, SIDE_PX), np.float32)
    cv2.circle(sharp, centre, int(radius_px), 1.0, -1)
    share = cv2.GaussianBlur(sharp, (0, 0), 0.8)
    return _blend(share, BROWN_SPOT, RED_SKIN), share


LUT = colour_lut(SETTINGS.colour_classes, SETTINGS.highlight_l, SETTINGS.highlight_chroma / 2)


def _search(bgr: np.ndarray, candidate: np.ndarray, usable: np.ndarray | None = None) -> list[DefectView]:
    weight = np.full((SIDE_PX, SIDE_PX), int(WEIGHT_SCALE), np.uint8)  # flat: projected area = surface area
    usable = weight if usable is None else usable
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2Lab)
    return find_defects(candidate, weight, usable, lab, TO_CANON, MM_PER_PX, SETTINGS, code=classify_bgr(bgr, LUT))


def test_spot_area_counts_blurred_edge_pixels_by_their_share() -> None:
    bgr, share = _spot(8, (40, 40))
    candidate = np.where(share > 0.5, 255, 0).astype(np.uint8)
    (found,) = _search(bgr, candidate)
    true_mm2 = float(share.sum()) * MM_PER_PX**2
    assert abs(found.area_mm2 - true_mm2) / true_mm2 < 0.05
    assert not found.partial
    assert abs(found.theta - math.pi / 2) < 0.05 and abs(found.phi) < 0.05


def test_spot_at_the_edge_of_the_usable_zone_is_partial() -> None:
    bgr, share = _spot(8, (40, 40))
    candidate = np.where(share > 0.5, 255, 0).astype(np.uint8)
    usable = np.full((SIDE_PX, SIDE_PX), int(WEIGHT_SCALE), np.uint8)
    usable[:, 47:] = 0  # the spot reaches column 47: its right edge is hidden (glare, rim)
    candidate[:, 47:] = 0
    (found,) = _search(bgr, candidate, usable)
    assert found.partial


def test_small_spot_is_ignored() -> None:
    bgr, share = _spot(2, (40, 40))  # about 1 mm2, below the 3 mm2 minimum
    assert _search(bgr, np.where(share > 0.5, 255, 0).astype(np.uint8)) == []


def test_border_between_two_skin_colours_is_not_a_defect() -> None:
    # a strongly blurred border: its mixed colours fall in no class over a band wider than
    # the opening removes, and they lie between the two skins around it
    sharp = np.zeros((SIDE_PX, SIDE_PX), np.float32)
    sharp[:, 40:] = 1.0
    share = cv2.GaussianBlur(sharp, (0, 0), 2.5)
    bgr = _blend(share, YELLOW_SKIN, RED_SKIN)
    band = np.where((share > 0.2) & (share < 0.8), 255, 0).astype(np.uint8)
    band[:10] = 0  # a stretch of the border, not touching the box's edges
    band[70:] = 0
    assert _search(bgr, band) == []
    # the same band in a brown spot's colour, with skin on both sides, is a defect
    spot = bgr.copy()
    spot[band > 0] = BROWN_SPOT
    assert len(_search(spot, band)) == 1


def test_a_highlight_is_the_skin_mixed_with_white_in_the_cameras_rgb() -> None:
    """A highlight adds the lamp's white to the skin in the camera's RGB. On a saturated red
    skin that mix bends away from the straight line to white in CIELAB (chroma falls faster
    than lightness rises): at a third of white it is more than 12 units off that line, yet
    it is still the skin's colour, lighter. A corky scar as light is not."""

    def lab8(bgr: np.ndarray) -> np.ndarray:
        pixel = np.clip(np.round(bgr), 0, 255).astype(np.uint8).reshape(1, 1, 3)
        return cv2.cvtColor(pixel, cv2.COLOR_BGR2Lab).reshape(3).astype(np.float64)

    red = np.array([29.0, 18.0, 188.0])  # CIELAB about (40, 62, 42)
    skin = lab8(red)
    assert not _on_segment(skin, _WHITE_LAB8, lab8(red + (250.0 - red) * 0.3), 12.0)
    for mix in (0.15, 0.3, 0.45, 0.6, 0.75):
        assert _skin_toward_white(skin, lab8(red + (250.0 - red) * mix)), mix
    scar = cv2.cvtColor(np.array([[[62.0, 8.0, 24.0]]], np.float32), cv2.COLOR_Lab2BGR)[0, 0] * 255.0
    assert not _skin_toward_white(skin, lab8(scar))
    assert not _skin_toward_white(skin, lab8(red * 0.7))  # darker: not a highlight


def test_a_highlight_of_a_lamp_dimmer_than_full_scale_is_still_the_skin_lit() -> None:
    """Toward the field's corners, or on a dimmer lane, the lamp's glint reaches the sensor
    at less than full scale: the skin mixed with that lighter grey lies off the line to full
    white (as a cherry's pink highlight did, read as a defect), yet it is the skin lit. The
    skin dulled by a darker grey (a bruise browning) and a corky scar are not."""

    def lab8(bgr: np.ndarray) -> np.ndarray:
        pixel = np.clip(np.round(bgr), 0, 255).astype(np.uint8).reshape(1, 1, 3)
        return cv2.cvtColor(pixel, cv2.COLOR_BGR2Lab).reshape(3).astype(np.float64)

    # skin and highlight (BGR) as the realistic scene's cherries showed them at 0.8 mm/px:
    # the skin mixed some 70 % with a grey about 0.8 of full scale, blurred, with noise
    for skin_bgr, lit_bgr in (
        ((77, 79, 182), (171, 179, 200)),  # red
        ((92, 86, 194), (166, 167, 200)),  # red
        ((77, 157, 193), (147, 182, 198)),  # yellow
    ):
        assert _skin_toward_white(lab8(np.array(skin_bgr, float)), lab8(np.array(lit_bgr, float))), skin_bgr
    red = np.array([45.0, 40.0, 170.0])
    skin = lab8(red)
    for lamp in (200.0, 225.0):
        for mix in (0.3, 0.45, 0.6, 0.75):
            assert _skin_toward_white(skin, lab8(red + (lamp - red) * mix)), (lamp, mix)
    assert not _skin_toward_white(skin, lab8(red + (60.0 - red) * 0.5))  # dulled: darker, greyer
    assert not _skin_toward_white(skin, lab8(red + (110.0 - red) * 0.5))  # a grey far below any glint
    for scar_lab in ((58.0, 7.0, 21.0), (56.0, 9.0, 32.0)):  # scar, russet
        scar = cv2.cvtColor(np.array([[scar_lab]], np.float32), cv2.COLOR_Lab2BGR)[0, 0] * 255.0
        assert not _skin_toward_white(skin, lab8(scar)), scar_lab


def test_a_highlight_on_a_stripe_is_that_stripes_skin_lit_not_the_rings_median() -> None:
    # as a cherry showed it (8-bit Lab): red skin with a yellow stripe through the ring, and
    # a highlight on the stripe, which keeps the stripe's yellow hue and not the red median's
    red, yellow = np.array([137.0, 163.0, 156.0]), np.array([168.0, 131.0, 173.0])
    ring = np.array([red] * 60 + [yellow] * 10)
    ring_class = np.array([2] * 60 + [3] * 10)
    lit = np.array([193.0, 128.0, 156.0])
    assert not _skin_toward_white(red, lit)
    assert _lit_skin(_ring_class_means(ring, ring_class), red, lit)
    # russet on the same skins is darker than the stripe and off the red's mix with light
    russet = np.array([56.0 * 2.55, 137.0, 160.0])
    assert not _lit_skin(_ring_class_means(ring, ring_class), red, russet)
    # with fewer than three stripe pixels in a class the stripe is not a skin of the ring
    assert not _lit_skin(_ring_class_means(ring[:62], np.array([2] * 60 + [3] * 2)), red, lit)


def test_a_spot_with_no_usable_skin_around_it_is_not_judged_nor_counted() -> None:
    # e.g. dark pixels kept inside the glare disk, among the highlight's unusable fringe: with
    # nothing to compare the blob with, it is not a defect
    bgr, share = _spot(8, (40, 40))
    candidate = np.where(share > 0.5, 255, 0).astype(np.uint8)
    around = np.zeros((SIDE_PX, SIDE_PX), np.uint8)
    cv2.circle(around, (40, 40), 14, 1, -1)
    usable = np.where(around > 0, 0, int(WEIGHT_SCALE)).astype(np.uint8)
    usable[candidate > 0] = int(WEIGHT_SCALE)  # the spot itself is usable, its ring is not
    assert _search(bgr, candidate, usable) == []
    usable[:, :40] = int(WEIGHT_SCALE)  # half of the ring usable again: judged, and found
    (found,) = _search(bgr, candidate, usable)
    assert found.partial
