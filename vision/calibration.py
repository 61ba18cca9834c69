"""Camera calibration: the scale at the belt plane (mm per pixel) and lens undistortion.

Owns two ways to get the scale from an image of a reference lying on the belt:
- a printed checkerboard of known square size, which also gives the lens model (camera
  matrix and distortion coefficients) so straight edges stay straight toward the image
  corners, and the scale is measured on the undistorted corner grid;
- a flat disc of known diameter (a coin, a lid, a turned reference), for lines that only
  need the scale: its silhouette's major axis does not shrink when the disc is slightly
  tilted, so that is what is compared with the known diameter.

Pure functions on numpy images; reading image files and writing the line config belong to
the caller (``gradeline vision calibrate``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vision.photo import NoFruitFound, segment_fruits

__all__ = [
    "CalibrationError",
    "CheckerboardCalibration",
    "DiscCalibration",
    "calibrate_checkerboard",
    "calibrate_disc",
    "find_checkerboard",
    "undistort",
]


class CalibrationError(ValueError):
    """The reference could not be found or measured well enough to trust."""


@dataclass(frozen=True)
class CheckerboardCalibration:
    mm_per_px: float
    camera_matrix: tuple[tuple[float, float, float], ...]  # 3x3
    dist_coeffs: tuple[float, ...]  # OpenCV order k1, k2, p1, p2, k3
    reprojection_error_px: float  # RMS over all corners of all images
    images_used: int
    pattern: tuple[int, int]  # inner corners (columns, rows)
    square_mm: float
    spacing_spread: float  # relative std of corner spacing after undistortion; 0 = perfect grid


@dataclass(frozen=True)
class DiscCalibration:
    mm_per_px: float
    diameter_px: float  # major axis of the disc's silhouette
    minor_diameter_px: float
    centre_px: tuple[float, float]
    disc_mm: float

    @property
    def tilt_deg(self) -> float:
        """Tilt of the disc against the image plane implied by its ellipse."""
        return math.degrees(math.acos(min(1.0, self.minor_diameter_px / self.diameter_px)))


def _grey(image_bgr: np.ndarray) -> np.ndarray:
    if image_bgr.ndim == 2:
        return image_bgr
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)


def find_checkerboard(image_bgr: np.ndarray, pattern: tuple[int, int]) -> np.ndarray:
    """Sub-pixel inner corners, shape (columns*rows, 2), row by row.

    ``pattern`` counts inner corners (a board of 10 x 7 squares has 9 x 6). Raises
    ``CalibrationError`` when the whole pattern is not visible.
    """
    grey = _grey(image_bgr)
    # The sector-based detector is more accurate and more tolerant of blur and lighting.
    found, corners = cv2.findChessboardCornersSB(
        grey, pattern, flags=cv2.CALIB_CB_EXHAUSTIVE | cv2.CALIB_CB_ACCURACY
    )
    if not found:
        found, corners = cv2.findChessboardCorners(
            grey, pattern, flags=cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
        )
        if found:
            criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)
            corners = cv2.cornerSubPix(grey, corners, (5, 5), (-1, -1), criteria)
    if not found:
        raise CalibrationError(
            f"no {pattern[0]}x{pattern[1]} checkerboard (inner corners) found; check the count "
            "of inner corners, that the whole board is in view, and that it is in focus"
        )
    return np.asarray(corners, dtype=np.float64).reshape(-1, 2)


def _board_points(pattern: tuple[int, int], square_mm: float) -> np.ndarray:
    cols, rows = pattern
    grid = np.zeros((rows * cols, 3), np.float32)
    grid[:, :2] = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2) * square_mm
    return grid


def _grid_spacings_px(corners: np.ndarray, pattern: tuple[int, int]) -> np.ndarray:
    cols, rows = pattern
    grid = corners.reshape(rows, cols, 2)
    along_rows = np.linalg.norm(np.diff(grid, axis=1), axis=2).ravel()
    along_cols = np.linalg.norm(np.diff(grid, axis=0), axis=2).ravel()
    return np.concatenate([along_rows, along_cols])


def calibrate_checkerboard(
    images_bgr: Sequence[np.ndarray], pattern: tuple[int, int], square_mm: float
) -> CheckerboardCalibration:
    """Lens model from one or more checkerboard views; scale from the first view.

    The first image must show the board lying flat on the belt, since its scale is the one
    the line uses. From fewer than three views the focal length and principal point are not
    observable (a board facing the camera looks the same at any focal length), so they are
    held at a nominal guess and only the radial distortion is fitted: the undistortion map
    and the scale are still right, which is what the line needs.
    """
    if not images_bgr:
        raise CalibrationError("no images given")
    if square_mm <= 0:
        raise CalibrationError("square size must be positive")
    if min(pattern) < 2:
        raise CalibrationError("pattern needs at least 2x2 inner corners")
    height, width = images_bgr[0].shape[:2]
    if any(img.shape[:2] != (height, width) for img in images_bgr):
        raise CalibrationError("all calibration images must have the same size")

    image_points = [find_checkerboard(img, pattern).astype(np.float32) for img in images_bgr]
    object_points = [_board_points(pattern, square_mm)] * len(image_points)

    focal_guess = float(max(width, height))
    camera_matrix = np.array(
        [[focal_guess, 0, (width - 1) / 2.0], [0, focal_guess, (height - 1) / 2.0], [0, 0, 1]], np.float64
    )
    flags = cv2.CALIB_USE_INTRINSIC_GUESS | cv2.CALIB_ZERO_TANGENT_DIST | cv2.CALIB_FIX_K3
    if len(image_points) < 3:
        flags |= cv2.CALIB_FIX_FOCAL_LENGTH | cv2.CALIB_FIX_PRINCIPAL_POINT | cv2.CALIB_FIX_ASPECT_RATIO
    rms, fitted_matrix, dist, _rvecs, _tvecs = cv2.calibrateCamera(
        object_points, image_points, (width, height), camera_matrix, np.zeros(5), flags=flags
    )
    camera_matrix = np.asarray(fitted_matrix, dtype=np.float64)

    ideal = cv2.undistortPoints(image_points[0].reshape(-1, 1, 2), camera_matrix, dist, P=camera_matrix)
    spacings = _grid_spacings_px(ideal.reshape(-1, 2).astype(np.float64), pattern)
    spacing_px = float(np.median(spacings))
    return CheckerboardCalibration(
        mm_per_px=square_mm / spacing_px,
        camera_matrix=tuple(tuple(float(v) for v in row) for row in camera_matrix),  # type: ignore[misc]
        dist_coeffs=tuple(float(v) for v in np.asarray(dist).ravel()),
        reprojection_error_px=float(rms),
        images_used=len(image_points),
        pattern=pattern,
        square_mm=square_mm,
        spacing_spread=float(np.std(spacings) / spacing_px),
    )


def undistort(
    image_bgr: np.ndarray, camera_matrix: Sequence[Sequence[float]], dist_coeffs: Sequence[float]
) -> np.ndarray:
    """The image as an ideal pinhole camera with the same camera matrix would see it."""
    k = np.asarray(camera_matrix, dtype=np.float64)
    d = np.asarray(dist_coeffs, dtype=np.float64)
    return cv2.undistort(image_bgr, k, d, newCameraMatrix=k)


def calibrate_disc(image_bgr: np.ndarray, disc_mm: float) -> DiscCalibration:
    """Scale from the largest plain object in view, taken to be a disc of ``disc_mm``.

    The disc is segmented like a fruit photo (it must stand out from a plain background);
    its diameter comes from the silhouette's area (robust to a ragged edge) and the fitted
    ellipse's axis ratio (to undo a slight tilt).
    """
    if disc_mm <= 0:
        raise CalibrationError("disc diameter must be positive")
    try:
        mask = segment_fruits(image_bgr)[0]
    except NoFruitFound as exc:
        raise CalibrationError("no disc stands out from the background") from exc
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = max(contours, key=cv2.contourArea)
    height, width = mask.shape
    x, y, w, h = cv2.boundingRect(outline)
    if x <= 0 or y <= 0 or x + w >= width or y + h >= height:
        raise CalibrationError("the disc touches the image edge; its whole outline must be in view")
    if len(outline) < 20:
        raise CalibrationError("the disc is too small in the image to measure")
    (cx, cy), (axis_a, axis_b), _angle = cv2.fitEllipse(outline)
    major, minor = max(axis_a, axis_b), min(axis_a, axis_b)
    if minor <= 0 or major / minor > 1.5:
        raise CalibrationError(
            f"the reference is not round enough (axes {major:.1f} x {minor:.1f} px): is it a disc, seen from above?"
        )
    area_px = float(np.count_nonzero(mask))
    equivalent_px = math.sqrt(4.0 * area_px / math.pi)
    # An ellipse of axes D and D*r has area pi/4 * D^2 * r, so D = equivalent / sqrt(r).
    diameter_px = equivalent_px / math.sqrt(minor / major)
    minor_px = diameter_px * minor / major
    return DiscCalibration(
        mm_per_px=disc_mm / diameter_px,
        diameter_px=diameter_px,
        minor_diameter_px=minor_px,
        centre_px=(float(cx), float(cy)),
        disc_mm=disc_mm,
    )


class Undistorter:
    """``undistort`` for a stream of same-size frames: the pixel maps are built once, then remapped."""

    def __init__(self, camera_matrix: Sequence[Sequence[float]], dist_coeffs: Sequence[float]) -> None:
        self._k = np.asarray(camera_matrix, dtype=np.float64)
        self._d = np.asarray(dist_coeffs, dtype=np.float64)
        self._maps: tuple[np.ndarray, np.ndarray] | None = None
        self._size: tuple[int, int] | None = None

    def __call__(self, image_bgr: np.ndarray) -> np.ndarray:
        size = (image_bgr.shape[1], image_bgr.shape[0])
        if self._maps is None or size != self._size:
            self._maps = cv2.initUndistortRectifyMap(self._k, self._d, None, self._k, size, cv2.CV_16SC2)
            self._size = size
        return cv2.remap(image_bgr, self._maps[0], self._maps[1], cv2.INTER_LINEAR)
