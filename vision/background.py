"""Background models of the empty belt, per pixel (learned) or per lane band (estimated).

Owns what the belt looks like without fruit: a per-pixel median of empty frames when the
runtime can show some, otherwise an estimate from the band's top and bottom margins, which
fruit seated in the cup centres rarely reach. Also estimates the frame's lighting gain
against the learned belt, so colour can be read under drifting light.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


class BackgroundError(ValueError):
    """The frames given cannot make a background model."""


@dataclass(frozen=True)
class BackgroundModel:
    image_bgr: np.ndarray  # uint8, the median empty belt
    brightness: np.ndarray  # float32 per pixel, sum of channels

    @classmethod
    def learn(cls, empty_frames: Sequence[np.ndarray]) -> BackgroundModel:
        if not empty_frames:
            raise BackgroundError("need at least one empty frame")
        shape = empty_frames[0].shape
        if any(f.shape != shape for f in empty_frames):
            raise BackgroundError("empty frames differ in size")
        stack = np.stack(empty_frames, axis=0)
        median = np.median(stack, axis=0).astype(np.uint8) if len(empty_frames) > 1 else stack[0].copy()
        return cls(median, median.astype(np.float32).sum(axis=2))

    def band(self, y0: int, y1: int, band_bgr: np.ndarray) -> tuple[np.ndarray, float]:
        """The background of rows y0..y1, scaled by the band's lighting gain, and that gain.

        The gain is the median brightness ratio over pixels that look like belt (within a
        factor of 1.6 of the model): fruit are far brighter than the dark belt, or, on a light
        belt, far more saturated, so they fall out of that window.
        """
        if band_bgr.shape != self.image_bgr[y0:y1].shape:
            raise BackgroundError(f"frame band {band_bgr.shape} does not match the model {self.image_bgr[y0:y1].shape}")
        bg = self.image_bgr[y0:y1]
        # subsample: the gain is one number, a quarter of the pixels pin it down
        now = band_bgr[::2, ::2].astype(np.float32).sum(axis=2)
        ref = self.brightness[y0:y1:2, ::2] + 1.0
        ratio = now / ref
        belt = ratio[(ratio > 0.6) & (ratio < 1.6)]
        gain = float(np.median(belt)) if belt.size > 64 else 1.0
        if abs(gain - 1.0) < 0.01:
            return bg, 1.0
        return cv2.convertScaleAbs(bg, alpha=gain), gain


def estimate_band_background(band_bgr: np.ndarray, margin_rows: int = 4) -> np.ndarray:
    """A belt estimate without a learned model: per column, the median of the band's top and
    bottom margin rows, smoothed along x so a stalk crossing the margin does not leak in, and
    blended linearly between top and bottom."""
    height = band_bgr.shape[0]
    m = max(1, min(margin_rows, height // 8))
    skip = 2 if height > 8 * m + 4 else 0  # lane dividers sit on the band's first and last rows
    top = np.median(band_bgr[skip : skip + m], axis=0).astype(np.uint8)
    bottom = np.median(band_bgr[height - skip - m : height - skip], axis=0).astype(np.uint8)
    k = 31 if band_bgr.shape[1] > 62 else 3
    top = cv2.medianBlur(top[None], 5)[0] if k else top
    bottom = cv2.medianBlur(bottom[None], 5)[0] if k else bottom
    top_f = cv2.blur(top[None].astype(np.float32), (k, 1))[0]
    bottom_f = cv2.blur(bottom[None].astype(np.float32), (k, 1))[0]
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    return np.clip(top_f[None] * (1 - t) + bottom_f[None] * t + 0.5, 0, 255).astype(np.uint8)
