"""Colour classes: recipe-defined boxes in CIELAB and their per-pixel test on OpenCV Lab.

Owns the mapping from a class box (L 0..100, a and b -128..127, half-open) to OpenCV's 8-bit
Lab encoding (L*255/100, a+128, b+128), and the canonical classes of each product. Pure
functions over numpy arrays; nothing here knows about fruit or frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np


@dataclass(frozen=True)
class ColourClass:
    """A half-open box ``lab_lo <= (L, a, b) < lab_hi`` in CIELAB."""

    name: str
    lab_lo: tuple[float, float, float]
    lab_hi: tuple[float, float, float]

    def bounds_8bit(self) -> tuple[np.ndarray, np.ndarray]:
        """Inclusive lower and exclusive upper bounds in OpenCV's 8-bit Lab units (float32)."""
        lo = np.array([self.lab_lo[0] * 255.0 / 100.0, self.lab_lo[1] + 128.0, self.lab_lo[2] + 128.0], np.float32)
        hi = np.array([self.lab_hi[0] * 255.0 / 100.0, self.lab_hi[1] + 128.0, self.lab_hi[2] + 128.0], np.float32)
        return lo, hi


_FRUIT_CLASSES = (
    ColourClass("red", (0.0, 20.0, -128.0), (100.01, 128.0, 128.0)),
    ColourClass("yellow", (55.0, -8.0, 35.0), (100.01, 20.0, 128.0)),
    ColourClass("green", (0.0, -128.0, 10.0), (100.01, -8.0, 128.0)),
)
_CHERRY_CLASSES = (
    ColourClass("dark_red", (0.0, 15.0, -128.0), (35.0, 128.0, 128.0)),
    ColourClass("red", (35.0, 20.0, -128.0), (100.01, 128.0, 128.0)),
    ColourClass("yellow", (55.0, -8.0, 35.0), (100.01, 20.0, 128.0)),
)
CANONICAL_CLASSES: dict[str, tuple[ColourClass, ...]] = {
    "apple": _FRUIT_CLASSES,
    "mango": _FRUIT_CLASSES,
    "pomegranate": _FRUIT_CLASSES,
    "cherry": _CHERRY_CLASSES,
}


def classify_lab8(lab8: np.ndarray, classes: tuple[ColourClass, ...]) -> np.ndarray:
    """Class index per pixel of an 8-bit OpenCV Lab array (..., 3); -1 = outside every class.

    Classes of one product never overlap, so the first match is the only match.
    """
    label = np.full(lab8.shape[:-1], -1, np.int8)
    light = lab8[..., 0]
    a = lab8[..., 1]
    b = lab8[..., 2]
    for i, cls in enumerate(classes):
        lo, hi = cls.bounds_8bit()
        hit = (light >= lo[0]) & (light < hi[0]) & (a >= lo[1]) & (a < hi[1]) & (b >= lo[2]) & (b < hi[2])
        label[hit] = i
    return label


# --- colour lookup table ------------------------------------------------------------------
# Converting every analysed pixel to CIELAB and testing each class box costs more than the
# whole rest of a fruit's measurement. Instead the colour cube is cut into 64 bins per channel
# (4 levels wide) and each bin's centre is classified once, exactly, in floating-point CIELAB;
# ``cv2.calcBackProject`` then looks a whole region up in one pass. A bin spans at most about
# 2 CIELAB units, so only pixels that close to a class border can land on the other side.
LUT_BINS = 64
LUT_RANGES = [0, 256, 0, 256, 0, 256]
LUT_GLARE = 128  # added to the code of a specular-highlight pixel (bright and nearly grey)


@lru_cache(maxsize=1)
def _bin_centres_lab() -> np.ndarray:
    step = 256 / LUT_BINS
    centre = ((np.arange(LUT_BINS, dtype=np.float32) + 0.5) * step - 0.5) / 255.0
    b, g, r = np.meshgrid(centre, centre, centre, indexing="ij")
    bgr = np.stack([b, g, r], axis=-1).reshape(-1, 1, 3)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2Lab).reshape(LUT_BINS, LUT_BINS, LUT_BINS, 3)


@lru_cache(maxsize=32)
def colour_lut(classes: tuple[ColourClass, ...], glare_l: float, glare_chroma: float) -> np.ndarray:
    """A 3-D table over (B, G, R) bins for ``cv2.calcBackProject``: class index + 1 of the
    bin's centre (0 = in no class), plus ``LUT_GLARE`` where the centre is a glare pixel
    (CIELAB L >= ``glare_l`` and |a|, |b| <= ``glare_chroma``). At most 127 classes."""
    if len(classes) >= LUT_GLARE:
        raise ValueError(f"at most {LUT_GLARE - 1} colour classes, got {len(classes)}")
    lab = _bin_centres_lab()
    light, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    code = np.zeros(light.shape, np.float32)
    for i, cls in enumerate(classes):
        lo, hi = cls.lab_lo, cls.lab_hi
        hit = (light >= lo[0]) & (light < hi[0]) & (a >= lo[1]) & (a < hi[1]) & (b >= lo[2]) & (b < hi[2])
        code[hit & (code == 0)] = i + 1
    glare = (light >= glare_l) & (np.abs(a) <= glare_chroma) & (np.abs(b) <= glare_chroma)
    code[glare] += LUT_GLARE
    # wrap_channels=False: otherwise OpenCV's binding reads a 64x64x64 array as a 64x64
    # image of 64 channels, not as a 3-D histogram
    return cv2.Mat(code, wrap_channels=False)


def classify_bgr(image_bgr: np.ndarray, lut: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel code (uint8) of a BGR image through a table from ``colour_lut``."""
    return cv2.calcBackProject([image_bgr], [0, 1, 2], lut, LUT_RANGES, 1, dst=dst)

