"""Colour classes: recipe-defined boxes in CIELAB and their per-pixel test on OpenCV Lab.

Owns the mapping from a class box (L 0..100, a and b -128..127, half-open) to OpenCV's 8-bit
Lab encoding (L*255/100, a+128, b+128), and the canonical classes of each product. Pure
functions over numpy arrays; nothing here knows about fruit or frames.
"""

from __future__ import annotations

from dataclasses import dataclass

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
