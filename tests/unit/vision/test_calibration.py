"""Calibration against synthetic images of exactly known scale and lens distortion."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vision.calibration import (
    CalibrationError,
    calibrate_checkerboard,
    calibrate_disc,
    find_checkerboard,
    undistort,
)

SUPERSAMPLE = 4  # draw large, then shrink with area averaging: edges get true partial coverage


def _checkerboard(size_wh: tuple[int, int], squares: tuple[int, int], square_px: float, origin_px: tuple[float, float]) -> np.ndarray:
    width, height = size_wh
    big = np.full((height * SUPERSAMPLE, width * SUPERSAMPLE), 255, np.uint8)
    for row in range(squares[1]):
        for col in range(squares[0]):
            if (row + col) % 2 == 0:
                x0 = (origin_px[0] + col * square_px) * SUPERSAMPLE
                y0 = (origin_px[1] + row * square_px) * SUPERSAMPLE
                x1, y1 = x0 + square_px * SUPERSAMPLE, y0 + square_px * SUPERSAMPLE
                big[round(y0) : round(y1), round(x0) : round(x1)] = 0
    grey = cv2.resize(big, size_wh, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def _inner_corners(squares: tuple[int, int], square_px: float, origin_px: tuple[float, float]) -> np.ndarray:
    cols, rows = squares[0] - 1, squares[1] - 1
    xs = origin_px[0] + square_px * (1 + np.arange(cols)) - 0.5  # pixel centres sit at +0.5
    ys = origin_px[1] + square_px * (1 + np.arange(rows)) - 0.5
    return np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)


def _distort(ideal: np.ndarray, k: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Render what a lens with ``dist`` would show: each output pixel samples the ideal image."""
    height, width = ideal.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(width), np.arange(height)), axis=-1).astype(np.float32)
    source = cv2.undistortPoints(grid.reshape(-1, 1, 2), k, dist, P=k).reshape(height, width, 2)
    return cv2.remap(ideal, source[..., 0], source[..., 1], cv2.INTER_LINEAR, borderValue=(255, 255, 255))


def test_checkerboard_scale_without_distortion() -> None:
    square_px, square_mm = 40.0, 20.0
    image = _checkerboard((800, 600), (10, 7), square_px, (180.0, 150.0))
    result = calibrate_checkerboard([image], (9, 6), square_mm)
    assert result.mm_per_px == pytest.approx(square_mm / square_px, rel=2e-3)
    assert result.reprojection_error_px < 0.2
    assert result.spacing_spread < 0.01
    assert max(abs(v) for v in result.dist_coeffs) < 0.02


def test_corners_found_where_drawn() -> None:
    image = _checkerboard((640, 480), (8, 6), 36.0, (100.0, 90.0))
    corners = find_checkerboard(image, (7, 5))
    truth = _inner_corners((8, 6), 36.0, (100.0, 90.0))
    # Detection order may start at either end of the board; compare as sets of points.
    nearest = np.min(np.linalg.norm(corners[:, None, :] - truth[None, :, :], axis=2), axis=1)
    assert nearest.max() < 0.3


def test_checkerboard_recovers_barrel_distortion_and_scale() -> None:
    width, height = 800, 600
    k = np.array([[800.0, 0, (width - 1) / 2], [0, 800.0, (height - 1) / 2], [0, 0, 1]])
    true_dist = np.array([-0.25, 0.08, 0.0, 0.0, 0.0])
    square_px, square_mm = 52.0, 25.0
    squares, origin = (12, 9), (88.0, 66.0)
    ideal = _checkerboard((width, height), squares, square_px, origin)
    distorted = _distort(ideal, k, true_dist)

    result = calibrate_checkerboard([distorted], (11, 8), square_mm)

    assert result.mm_per_px == pytest.approx(square_mm / square_px, rel=5e-3)
    assert result.reprojection_error_px < 0.3
    # The fitted lens must map the distorted corners back onto the ideal grid.
    seen = find_checkerboard(distorted, (11, 8)).reshape(-1, 1, 2)
    restored = cv2.undistortPoints(
        seen, np.array(result.camera_matrix), np.array(result.dist_coeffs), P=np.array(result.camera_matrix)
    ).reshape(-1, 2)
    truth = _inner_corners(squares, square_px, origin)
    nearest = np.min(np.linalg.norm(restored[:, None, :] - truth[None, :, :], axis=2), axis=1)
    assert nearest.max() < 0.6
    # And without undistortion the same corners are far off, so the check above is not idle.
    raw_nearest = np.min(np.linalg.norm(seen.reshape(-1, 2)[:, None, :] - truth[None, :, :], axis=2), axis=1)
    assert raw_nearest.max() > 5.0
    # Undistorting the image itself brings the far corner back too.
    straightened = undistort(distorted, result.camera_matrix, result.dist_coeffs)
    again = find_checkerboard(straightened, (11, 8))
    nearest_img = np.min(np.linalg.norm(again[:, None, :] - truth[None, :, :], axis=2), axis=1)
    assert nearest_img.max() < 1.0


def test_missing_checkerboard_is_a_calibration_error() -> None:
    blank = np.full((300, 400, 3), 200, np.uint8)
    with pytest.raises(CalibrationError, match="9x6"):
        calibrate_checkerboard([blank], (9, 6), 20.0)


def _disc(size_wh: tuple[int, int], centre: tuple[float, float], axes_px: tuple[float, float], colour: tuple[int, int, int]) -> np.ndarray:
    width, height = size_wh
    big = np.full((height * SUPERSAMPLE, width * SUPERSAMPLE, 3), 235, np.uint8)
    cv2.ellipse(
        big,
        (round(centre[0] * SUPERSAMPLE), round(centre[1] * SUPERSAMPLE)),
        (round(axes_px[0] * SUPERSAMPLE), round(axes_px[1] * SUPERSAMPLE)),
        0, 0, 360, colour, thickness=-1, lineType=cv2.LINE_AA,
    )
    return cv2.resize(big, size_wh, interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("radius_px", [40.25, 150.5])
def test_disc_scale(radius_px: float) -> None:
    image = _disc((640, 480), (300.0, 250.0), (radius_px, radius_px), (40, 60, 160))
    result = calibrate_disc(image, disc_mm=80.0)
    assert result.mm_per_px == pytest.approx(80.0 / (2 * radius_px), rel=4e-3)
    assert result.tilt_deg < 6.0


def test_tilted_disc_uses_the_unforeshortened_axis() -> None:
    # A disc tilted by ~28 degrees: minor axis = major * cos(tilt).
    image = _disc((640, 480), (320.0, 240.0), (160.0, 141.0), (30, 30, 30))
    result = calibrate_disc(image, disc_mm=100.0)
    assert result.mm_per_px == pytest.approx(100.0 / 320.0, rel=5e-3)
    assert result.tilt_deg == pytest.approx(np.degrees(np.arccos(141.0 / 160.0)), abs=2.0)


def test_disc_cut_by_the_image_edge_is_refused() -> None:
    image = _disc((400, 300), (30.0, 150.0), (80.0, 80.0), (30, 30, 30))
    with pytest.raises(CalibrationError, match="edge"):
        calibrate_disc(image, disc_mm=50.0)


def test_no_disc_is_refused() -> None:
    with pytest.raises(CalibrationError, match="no disc"):
        calibrate_disc(np.full((200, 200, 3), 235, np.uint8), disc_mm=50.0)
