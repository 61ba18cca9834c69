"""Segmentation: fruit silhouettes in one lane band, against the belt background.

Owns the foreground test (colour distance to the belt), the split into blobs, the per-fruit
threshold refinement at half the fruit's own contrast (so blur does not bias the size), stalk
removal by a morphological opening, and the convex hull that bridges dark defects on the limb.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.background import estimate_band_background
from vision.views import VisionSettings


@dataclass(frozen=True)
class FruitBlob:
    x0: int  # ROI origin in band coordinates
    y0: int
    mask: np.ndarray  # uint8 0/255, ROI-sized: the filled convex silhouette without stalk
    contour: np.ndarray  # the silhouette before the hull (ROI coordinates)
    convexity: float  # contour area / hull area
    touches_edge: bool  # touches the image's left/right edge or the band's top/bottom


def _kernel(diameter_px: float) -> np.ndarray:
    size = max(3, int(round(diameter_px)) | 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def colour_distance(band_bgr: np.ndarray, background_bgr: np.ndarray) -> np.ndarray:
    """Sum over channels of |frame - background|, float32."""
    diff = cv2.absdiff(band_bgr, background_bgr)
    return cv2.transform(diff, np.ones((1, 3), np.float32))


def find_fruit(band_bgr: np.ndarray, background_bgr: np.ndarray | None, s: VisionSettings) -> list[FruitBlob]:
    if background_bgr is None:
        background_bgr = estimate_band_background(band_bgr)
    distance = colour_distance(band_bgr, background_bgr)
    _, fg = cv2.threshold(distance, s.foreground_threshold, 255, cv2.THRESH_BINARY)
    fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, _kernel(3))
    contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    min_area_px = np.pi / 4 * (s.min_fruit_diameter_mm / s.mm_per_px) ** 2 * 0.5
    stalk_kernel = _kernel(s.stalk_width_mm / s.mm_per_px)
    height, width = band_bgr.shape[:2]
    blobs: list[FruitBlob] = []
    for contour in contours:
        if cv2.contourArea(contour) < min_area_px:
            continue
        x, y, w, h = cv2.boundingRect(contour)
        pad = 3
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(width, x + w + pad), min(height, y + h + pad)
        coarse = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.drawContours(coarse, [contour - np.array([x0, y0])], -1, 255, -1)
        roi_distance = distance[y0:y1, x0:x1]
        # Place the edge at half the *local* contrast: the brightest distance within a few
        # pixels is the skin just inside the edge, so a blurred edge is cut at its midpoint
        # whatever the skin colour there (red and yellow differ from the belt by 2x).
        local = cv2.dilate(roi_distance, _kernel(9))
        refined = ((roi_distance > np.maximum(s.edge_level * local, s.foreground_threshold * 0.5)) & (cv2.dilate(coarse, _kernel(5)) > 0))
        refined = refined.astype(np.uint8) * 255
        refined = cv2.morphologyEx(refined, cv2.MORPH_CLOSE, _kernel(3))
        # an opening removes the stalk but also nibbles the pixel stairs of the outline; take
        # back the silhouette pixels within one pixel of what survived
        opened = cv2.morphologyEx(refined, cv2.MORPH_OPEN, stalk_kernel)
        refined = opened | (refined & cv2.dilate(opened, _kernel(3)))
        parts, _ = cv2.findContours(refined, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        if not parts:
            continue
        body = max(parts, key=cv2.contourArea)
        body_area = cv2.contourArea(body)
        if body_area < min_area_px:
            continue
        hull = cv2.convexHull(body)
        hull_area = max(cv2.contourArea(hull), 1.0)
        # the hull bridges notches (a dark defect on the limb reads as belt), but rasterising
        # it adds a ring of edge pixels; take the hull shrunk by one pixel plus the silhouette
        hull_mask = np.zeros_like(refined)
        cv2.fillConvexPoly(hull_mask, hull, 255)
        mask = np.zeros_like(refined)
        cv2.drawContours(mask, [body], -1, 255, -1)
        mask |= cv2.erode(hull_mask, _kernel(3))
        bx, by, bw, bh = cv2.boundingRect(hull)
        touches = bx + x0 <= 0 or by + y0 <= 0 or bx + x0 + bw >= width or by + y0 + bh >= height
        blobs.append(FruitBlob(x0, y0, mask, body, body_area / hull_area, touches))
    return blobs
