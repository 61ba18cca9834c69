"""Single-fruit photos on a plain background: find each fruit's mask.

Owns segmentation of teaching and spot-check photos: one or a few fruit on a white or other
uniform background, possibly cropped so close that the fruit touches the image edge. Belt
scenes with lanes and tracking belong to ``vision.pipeline``; this module exists because
those photos have no belt background model to subtract. Pure functions on numpy arrays:
reading files is the caller's job.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["NoFruitFound", "background_bgr", "segment_fruit", "segment_fruits"]

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
