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
from functools import lru_cache
from operator import itemgetter

import cv2
import numpy as np

from vision.background import estimate_band_background
from vision.views import VisionSettings

_EDGE_OFFSET_PX = 0.2
_EDGE_AREA_PX2 = math.pi * _EDGE_OFFSET_PX**2  # the Steiner term of growing the hull by the offset
_HULL_MOMENTS = itemgetter("m00", "m10", "m01", "mu20", "mu02", "mu11")


@dataclass(slots=True)
class FruitBlob:
    """One silhouette, with the ellipse of its second moments (band coordinates, pixels)."""

    contour: np.ndarray  # outline after stalk removal
    hull: np.ndarray
    waist: bool  # two deep dents facing each other across the centre: two fruit in one blob
    area_px: float  # silhouette area
    convexity: float  # contour area / hull area
    roundness: float  # 4 pi area / perimeter^2 of the outline
    touches_edge: bool  # touches the image's left/right edge or the band's top/bottom
    cx: float
    cy: float
    semi_major_px: float
    semi_minor_px: float
    angle_major: float  # direction of the major axis from +x (rad)
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), padded, clipped to the band


@lru_cache(maxsize=32)
def _kernel(diameter_px: float, shape: int = cv2.MORPH_ELLIPSE) -> np.ndarray:
    size = max(3, int(round(diameter_px)) | 1)
    return cv2.getStructuringElement(shape, (size, size))


class FrameBuffers:
    """Full-frame scratch images, reused from frame to frame by one thread.

    Allocating a fresh frame-sized array for every intermediate costs more than the
    operation itself (the memory is new to the process each time), so the pipeline keeps
    one set per thread and frame size and every full-frame step writes into it.
    """

    def __init__(self, height: int, width: int) -> None:
        self.shape = (height, width)
        self.belt = np.empty((height, width, 3), np.uint8)
        self.corrected = np.empty((height, width, 3), np.uint8)
        self.small = np.empty((height // 2, width // 2, 3), np.uint8)
        self.code_half = np.empty((height // 2, width // 2), np.uint8)
        self.diff = np.empty((height, width, 3), np.uint8)
        self.channels = [np.empty((height, width), np.uint8) for _ in range(3)]
        self.distance, self.coarse, self.local, self.level, self.refined, self.opened, self.spare, self.mask = (
            np.empty((height, width), np.uint8) for _ in range(8)
        )


def colour_distance(band_bgr: np.ndarray, background_bgr: np.ndarray, buffers: FrameBuffers | None = None) -> np.ndarray:
    """Largest |frame - background| over the three channels, uint8."""
    if buffers is None:
        buffers = FrameBuffers(*band_bgr.shape[:2])
    diff = cv2.absdiff(band_bgr, background_bgr, dst=buffers.diff)
    b, g, r = cv2.split(diff, buffers.channels)
    distance = cv2.max(b, g, dst=buffers.distance)
    return cv2.max(distance, r, dst=distance)


def silhouettes(
    image_bgr: np.ndarray, background_bgr: np.ndarray, s: VisionSettings, buffers: FrameBuffers | None = None
) -> np.ndarray:
    """Fruit mask (uint8 0/255) of a whole frame or band, stalks removed. With ``buffers``
    the mask is ``buffers.mask``, valid until the buffers are used again."""
    if buffers is None:
        buffers = FrameBuffers(*image_bgr.shape[:2])
    distance = colour_distance(image_bgr, background_bgr, buffers)
    coarse = cv2.threshold(distance, s.foreground_threshold, 255, cv2.THRESH_BINARY, dst=buffers.coarse)[1]
    # Place the edge at a share of the *local* contrast: the largest distance within a few
    # pixels is the skin just inside the edge, so a blurred edge is cut near its midpoint
    # whether the skin there is red or yellow (they differ from the belt by 2x). The share
    # is below one half because the stem cavity at the limb is darker than the skin.
    local = cv2.dilate(distance, _kernel(9, cv2.MORPH_RECT), dst=buffers.local)
    # edge_level of it (rounded), never below half the foreground threshold (a table
    # look-up, cv2.LUT, costs twice these two passes)
    level = cv2.convertScaleAbs(local, dst=buffers.level, alpha=s.edge_level)
    # (opencv's stubs before 5.1 lack this overload of cv2.max; 5.1's have it)
    level = cv2.max(level, float(int(s.foreground_threshold * 0.5)), dst=level)  # type: ignore[call-overload, unused-ignore]
    refined = cv2.compare(distance, level, cv2.CMP_GT, dst=buffers.refined)
    spare = cv2.dilate(coarse, _kernel(5, cv2.MORPH_RECT), dst=buffers.spare)
    refined = cv2.bitwise_and(refined, spare, dst=refined)
    # only the outline is decided by local contrast: deep inside the coarse silhouette a dark
    # skin sector beside a bright one must not open a gap
    spare = cv2.erode(coarse, _kernel(9, cv2.MORPH_RECT), dst=spare)
    refined = cv2.bitwise_or(refined, spare, dst=refined)
    # An opening removes stalks; it also nibbles the outline's pixel stairs, so take back
    # the silhouette pixels within one pixel of what survived. (The opening lies inside the
    # silhouette and inside its own dilation, so it needs no separate union.)
    opened = cv2.morphologyEx(
        refined, cv2.MORPH_OPEN, _kernel(s.stalk_width_mm / s.mm_per_px), dst=buffers.opened
    )
    spare = cv2.dilate(opened, _kernel(3, cv2.MORPH_RECT), dst=spare)
    return cv2.bitwise_and(refined, spare, dst=buffers.mask)


def find_fruit(band_bgr: np.ndarray, background_bgr: np.ndarray | None, s: VisionSettings) -> list[FruitBlob]:
    """Silhouettes of one lane band (estimating the belt from the band when no model)."""
    if background_bgr is None:
        background_bgr = estimate_band_background(band_bgr)
    return fruit_blobs(silhouettes(band_bgr, background_bgr, s), s)


def fruit_blobs(mask: np.ndarray, s: VisionSettings) -> list[FruitBlob]:
    """One blob per outer contour of a lane band's silhouette mask, with its moment ellipse."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    min_area_px = math.pi / 4 * (s.min_fruit_diameter_mm / s.mm_per_px) ** 2
    height, width = mask.shape[:2]
    pad = 2  # box margin, px
    blobs: list[FruitBlob] = []
    for contour in contours:
        area = cv2.contourArea(contour)
        if area < min_area_px:
            continue
        hull = cv2.convexHull(contour)
        m00, m10, m01, mu20, mu02, mu11 = _HULL_MOMENTS(cv2.moments(hull))
        if m00 <= 0:
            continue
        # The hull runs through the centres of the outermost edge pixels, a little inside the
        # edge; grow the ellipse by that offset (measured on exactly rendered ellipses) and
        # the area likewise (Steiner: A + P d + pi d^2).
        perimeter = cv2.arcLength(hull, True)
        cx, cy = m10 / m00, m01 / m00
        mu20, mu02, mu11 = mu20 / m00, mu02 / m00, mu11 / m00
        half_diff = math.sqrt(max(0.0, ((mu20 - mu02) / 2) ** 2 + mu11**2))
        mean = (mu20 + mu02) / 2
        semi_major = 2 * math.sqrt(mean + half_diff) + _EDGE_OFFSET_PX
        semi_minor = 2 * math.sqrt(max(mean - half_diff, 1e-9)) + _EDGE_OFFSET_PX
        convexity = area / max(m00, 1.0)
        outline_px = cv2.arcLength(contour, True)
        x0, y0, w, h = cv2.boundingRect(hull)
        x1, y1 = x0 + w, y0 + h
        blobs.append(
            FruitBlob(
                contour,
                hull,
                convexity < 0.985 and _has_waist(contour, cx, cy, semi_minor),
                m00 + perimeter * _EDGE_OFFSET_PX + _EDGE_AREA_PX2,
                convexity,
                4 * math.pi * area / outline_px**2 if outline_px > 0 else 0.0,
                x0 <= 0 or y0 <= 0 or x1 >= width or y1 >= height,
                cx,
                cy,
                semi_major,
                semi_minor,
                0.5 * math.atan2(2 * mu11, mu20 - mu02),
                (max(0, x0 - pad), max(0, y0 - pad), min(width, x1 + pad), min(height, y1 + pad)),
            )
        )
    return blobs


def _has_waist(contour: np.ndarray, cx: float, cy: float, semi_minor_px: float) -> bool:
    """Two fruit side by side (or one riding on the other) make a peanut: two dents in the
    outline, each deeper than 8 % of the blob's width, on opposite sides of the centre. A
    single dent is a dark defect on the limb or a misshapen fruit."""
    hull_idx = cv2.convexHull(contour, returnPoints=False)
    if hull_idx is None or len(hull_idx) < 4:
        return False
    try:
        dents = cv2.convexityDefects(contour, np.sort(hull_idx, axis=0))
    except cv2.error:
        return False  # self-intersecting hull order on odd outlines: no verdict
    if dents is None:
        return False
    min_depth = 0.08 * 2 * semi_minor_px
    dents = dents.reshape(-1, 4)
    deep_idx = dents[dents[:, 3] > min_depth * 256.0, 2]
    if len(deep_idx) < 2:
        return False
    deep = contour[deep_idx, 0].tolist()
    # two dents nearly opposite each other across the centre (more than 140 degrees apart)
    for i in range(len(deep)):
        for j in range(i + 1, len(deep)):
            (x1, y1), (x2, y2) = (float(p) for p in deep[i]), (float(p) for p in deep[j])
            a1 = math.atan2(y1 - cy, x1 - cx)
            a2 = math.atan2(y2 - cy, x2 - cx)
            if abs((a1 - a2 + math.pi) % (2 * math.pi) - math.pi) > math.radians(140):
                return True
    return False
