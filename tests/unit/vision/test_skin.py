"""The compiled skin read (vision.skin.read_pixels) against geometry worked out by hand and
against a plain numpy evaluation of the same surface model."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from vision.colour import LUT_GLARE
from vision.skin import NO_GLARE, PARAMS, read_pixels

RIM = 0.95
N_CLASSES = 3


def _params(cx: float, cy: float, equatorial_px: float, polar_px: float, angle: float = 0.0) -> np.ndarray:
    row = dict(
        cx=cx,
        cy=cy,
        cos=math.cos(angle),
        sin=math.sin(angle),
        inv_equatorial=1.0 / equatorial_px,
        inv_polar=1.0 / polar_px,
        k2_minus_1=(equatorial_px / polar_px) ** 2 - 1.0,
    )
    return np.array([[row[name] for name in PARAMS]])


def _read(code: np.ndarray, params: np.ndarray, lab_grid: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    height, width = code.shape
    if lab_grid is None:
        lab_grid = np.zeros(((height + 1) // 2, (width + 1) // 2, 3), np.uint8)
    boxes = np.array([[0, 0, width, height]], np.int64)
    return tuple(read_pixels(code, lab_grid, params, boxes, RIM, N_CLASSES, 3.5, 20.0))


def test_a_sphere_reads_its_visible_cap_area() -> None:
    # A sphere of radius R seen from above: the surface over the disk of radius rim * R is
    # 2 pi R^2 (1 - sqrt(1 - rim^2)). Each half-grid pixel stands for 2 x 2 frame pixels.
    radius_px = 120.0
    code = np.ones((130, 130), np.uint8)  # every pixel class 1
    sums, _, glare, unclassified = _read(code, _params(130.0, 130.0, radius_px, radius_px))
    surface_px2 = 4.0 * sums[0].sum()
    expected = 2 * math.pi * radius_px**2 * (1 - math.sqrt(1 - RIM**2))
    assert surface_px2 == pytest.approx(expected, rel=0.01)
    assert sums[0, 1] == sums[0].sum()  # all of it class 1
    assert glare[0, 2] == NO_GLARE
    assert unclassified[0, 2] == -1  # no pixel in no class


def test_matches_a_numpy_evaluation_of_the_surface_model() -> None:
    rng = np.random.default_rng(3)
    code = rng.integers(0, N_CLASSES + 1, (90, 140)).astype(np.uint8)
    cx, cy, e, p, angle = 141.0, 87.0, 60.0, 48.0, 0.3
    sums, _, _, _ = _read(code, _params(cx, cy, e, p, angle))
    y, x = np.mgrid[0:90, 0:140]
    dx, dy = 2.0 * x - cx, 2.0 * y - cy
    u = (math.cos(angle) * dx + math.sin(angle) * dy) / e
    v = (math.cos(angle) * dy - math.sin(angle) * dx) / p
    r2 = u * u + v * v
    inside = r2 < RIM**2
    k = e / p
    weight = np.where(inside, np.sqrt((1 + (k * k - 1) * v * v) / np.clip(1 - r2, 1e-9, None)), 0.0)
    expected = np.array([weight[code == c].sum() for c in range(N_CLASSES + 1)] + [0.0])
    np.testing.assert_allclose(sums[0], expected, rtol=1e-9)


def test_glare_disk_is_left_out_and_the_unclassified_box_found() -> None:
    code = np.ones((100, 100), np.uint8)
    code[:, 50:] = 2  # right half class 2
    code[48:52, 38:42] = 1 + LUT_GLARE  # a 4 x 4 glare core in the left half
    code[70:74, 60:66] = 0  # a patch in no class
    lab = np.zeros((50, 50, 3), np.uint8)
    lab[..., 0] = 200
    lab[..., 1] = 140
    lab[..., 2] = 120
    sums, lab_sums, glare, unclassified = _read(code, _params(100.0, 100.0, 90.0, 90.0), lab)
    x, y, radius = glare[0]
    assert (x, y) in ((39.0, 49.0), (40.0, 50.0), (39.0, 50.0), (40.0, 49.0))
    core_radius = math.sqrt(16 / math.pi)
    assert radius >= 4.5 * core_radius
    # nothing within the disk is read, so no glare-coded pixel is counted either
    assert sums[0, N_CLASSES + 1] == 0.0
    # the right half, untouched by the disk, now outweighs the left
    assert sums[0, 2] > sums[0, 1]
    assert tuple(unclassified[0]) == (60, 70, 65, 73)
    count = lab_sums[0, 3]
    assert count > 0
    assert lab_sums[0, :3].tolist() == [200 * count, 140 * count, 120 * count]


def test_pixels_outside_the_rim_and_box_are_not_read() -> None:
    code = np.full((60, 60), 3, np.uint8)
    params = _params(60.0, 60.0, 20.0, 20.0)  # a small fruit in the middle
    sums, _, _, _ = _read(code, params)
    outside = np.zeros_like(code)
    cv2.circle(outside, (30, 30), 12, 1, -1)  # a generous disk around the zone
    code[outside == 0] = 0  # paint everything else "in no class"
    again, _, _, unclassified = _read(code, params)
    np.testing.assert_array_equal(sums, again)
    assert unclassified[0, 2] == -1


def test_glare_disk_covers_the_glare_core_and_its_fringe() -> None:
    # a zone 28 half-grid pixels in radius around half-grid pixel (30, 30)
    code = np.ones((60, 60), np.uint8)
    zone = _params(60.0, 60.0, 56.0 / RIM, 56.0 / RIM)
    assert _read(code, zone)[2][0, 2] == NO_GLARE
    code[20:24, 33:37] = 1 + LUT_GLARE  # a 4x4 glare core
    elsewhere = _params(60.0, 100.0, 12.0, 12.0)  # a zone that does not hold it
    assert _read(code, elsewhere)[2][0, 2] == NO_GLARE
    code[0:4, 0:4] = 1 + LUT_GLARE  # outside the zone: ignored
    x, y, radius = _read(code, zone)[2][0]
    assert (x, y) == (34.0, 22.0) or (x, y) == (35.0, 22.0)
    core_radius = math.sqrt(16 / math.pi)
    assert radius >= (1 + 3.5) * core_radius


def test_skin_in_no_class_darker_than_the_fruit_counts_even_inside_the_glare_disk() -> None:
    # A highlight only adds light: its fringe (in no class, lighter than the skin) stays out,
    # while a patch in no class that is darker than the fruit's mean is the skin's own.
    code = np.ones((100, 100), np.uint8)
    code[48:52, 38:42] = 1 + LUT_GLARE  # a 4 x 4 glare core; its disk reaches > 9 px out
    lab = np.zeros((50, 50, 3), np.uint8)
    lab[..., 0], lab[..., 1], lab[..., 2] = 150, 140, 120
    params = _params(100.0, 100.0, 90.0, 90.0)
    code[44:48, 44:48] = 0  # in no class, inside the disk
    lab[22:24, 22:24, 0] = 200  # lighter than the skin: the highlight's fringe
    sums, _, glare, unclassified = _read(code, params, lab)
    assert glare[0, 2] != NO_GLARE
    assert sums[0, 0] == 0.0 and unclassified[0, 2] == -1
    lab[22:24, 22:24, 0] = 100  # 50 units darker than the skin: a bruise beside the highlight
    sums, _, _, unclassified = _read(code, params, lab)
    assert sums[0, 0] > 0.0
    x0, y0, x1, y1 = unclassified[0]
    assert x0 <= 44 and y0 <= 44 and x1 >= 47 and y1 >= 47
    lab[22:24, 22:24, 0] = 140  # 10 darker, less than the 20 asked for: still the fringe's
    assert _read(code, params, lab)[0][0, 0] == 0.0
