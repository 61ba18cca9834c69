"""Segmentation: fruit silhouettes in one lane band, against the belt background.

Owns the foreground test (largest per-channel difference from the belt), the edge placed at
a fixed share of the *local* fruit/belt contrast (so blur does not bias the size, whatever
the skin colour at that edge), stalk removal by a morphological opening, and the convex hull
that bridges dark defects on the limb. Works on whole lane bands; only the final per-fruit
geometry is per contour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vision.background import estimate_band_background
from vision.views import VisionSettings

_EDGE_OFFSET_PX = 0.2


@dataclass(frozen=True)
class FruitBlob:
    """One silhouette, with the ellipse of its second moments (band coordinates, pixels)."""

    contour: np.ndarray  # outline after stalk removal
    hull: np.ndarray
    area_px: float  # silhouette area
    convexity: float  # contour area / hull area
    touches_edge: bool  # touches the image's left/right edge or the band's top/bottom
    cx: float
    cy: float
    semi_major_px: float
    semi_minor_px: float
    angle_major: float  # direction of the major axis from +x (rad)
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), padded, clipped to the band


def _kernel(diameter_px: float, shape: int = cv2.MORPH_ELLIPSE) -> np.ndarray:
    size = max(3, int(round(diameter_px)) | 1)
    return cv2.getStructuringElement(shape, (size, size))


def colour_distance(band_bgr: np.ndarray, background_bgr: np.ndarray) -> np.ndarray:
    """Largest |frame - background| over the three channels, uint8."""
    diff = cv2.absdiff(band_bgr, background_bgr)
    b, g, r = cv2.split(diff)
    return cv2.max(cv2.max(b, g), r)


def find_fruit(band_bgr: np.ndarray, background_bgr: np.ndarray | None, s: VisionSettings) -> list[FruitBlob]:
    if background_bgr is None:
        background_bgr = estimate_band_background(band_bgr)
    distance = colour_distance(band_bgr, background_bgr)
    _, coarse = cv2.threshold(distance, s.foreground_threshold, 255, cv2.THRESH_BINARY)
    # Place the edge at a share of the *local* contrast: the largest distance within a few
    # pixels is the skin just inside the edge, so a blurred edge is cut near its midpoint
    # whether the skin there is red or yellow (they differ from the belt by 2x). The share
    # is below one half because the stem cavity at the limb is darker than the skin.
    local = cv2.dilate(distance, _kernel(9, cv2.MORPH_RECT))
    level = cv2.max(cv2.multiply(local, s.edge_level, dtype=cv2.CV_8U), s.foreground_threshold * 0.5)
    refined = cv2.bitwise_and(cv2.compare(distance, level, cv2.CMP_GT), cv2.dilate(coarse, _kernel(5)))
    refined = cv2.morphologyEx(refined, cv2.MORPH_CLOSE, _kernel(3))
    # An opening removes stalks; it also nibbles the outline's pixel stairs, so take back
    # the silhouette pixels within one pixel of what survived.
    opened = cv2.morphologyEx(refined, cv2.MORPH_OPEN, _kernel(s.stalk_width_mm / s.mm_per_px))
    refined = cv2.bitwise_or(opened, cv2.bitwise_and(refined, cv2.dilate(opened, _kernel(3))))
    contours, _ = cv2.findContours(refined, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    min_area_px = math.pi / 4 * (s.min_fruit_diameter_mm / s.mm_per_px) ** 2
    height, width = band_bgr.shape[:2]
    blobs: list[FruitBlob] = []
    for contour in contours:
        area = cv2.contourArea(contour)
        if area < min_area_px:
            continue
        hull = cv2.convexHull(contour)
        m = cv2.moments(hull)
        if m["m00"] <= 0:
            continue
        # The hull runs through the centres of the outermost edge pixels, a little inside the
        # edge; grow the ellipse by that offset (measured on exactly rendered ellipses) and
        # the area likewise (Steiner: A + P d + pi d^2).
        perimeter = cv2.arcLength(hull, True)
        m00 = m["m00"]
        cx, cy = m["m10"] / m00, m["m01"] / m00
        mu20, mu02, mu11 = m["mu20"] / m00, m["mu02"] / m00, m["mu11"] / m00
        half_diff = math.sqrt(max(0.0, ((mu20 - mu02) / 2) ** 2 + mu11**2))
        mean = (mu20 + mu02) / 2
        semi_major = 2 * math.sqrt(mean + half_diff) + _EDGE_OFFSET_PX
        semi_minor = 2 * math.sqrt(max(mean - half_diff, 1e-9)) + _EDGE_OFFSET_PX
        angle = 0.5 * math.atan2(2 * mu11, mu20 - mu02)
        x, y, w, h = cv2.boundingRect(hull)
        touches = x <= 0 or y <= 0 or x + w >= width or y + h >= height
        pad = 2
        bbox = (max(0, x - pad), max(0, y - pad), min(width, x + w + pad), min(height, y + h + pad))
        blobs.append(
            FruitBlob(
                contour, hull, m00 + perimeter * _EDGE_OFFSET_PX + math.pi * _EDGE_OFFSET_PX**2, area / max(m00, 1.0), touches, cx, cy,
                semi_major, semi_minor, angle, bbox,
            )
        )
    return blobs
