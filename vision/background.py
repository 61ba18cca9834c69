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

_CHANNEL_SUM = np.ones((1, 3), np.float32)


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

    def gain(self, image_bgr: np.ndarray) -> float:
        """The frame's lighting gain against the learned belt (1.0 when within 1 %).

        The median brightness ratio on a sparse grid, over points that look like belt (within
        a factor of 1.6 of the model): fruit are far brighter than a dark belt, or far more
        saturated than a light one, so they fall out of that window.
        """
        if image_bgr.shape != self.image_bgr.shape:
            raise BackgroundError(f"frame {image_bgr.shape} does not match the model {self.image_bgr.shape}")
        # sum of the channels by cv2.transform: numpy's reduction over the last axis of a
        # strided sample costs several times more
        now = cv2.transform(image_bgr[3::8, 3::8].astype(np.float32), _CHANNEL_SUM)
        ratio = now / (self.brightness[3::8, 3::8] + 1.0)
        belt = ratio[(ratio > 0.6) & (ratio < 1.6)]
        gain = float(np.median(belt)) if belt.size > 64 else 1.0
        return 1.0 if abs(gain - 1.0) < 0.01 else gain


def estimate_band_background(band_bgr: np.ndarray, margin_rows: int = 4, dst: np.ndarray | None = None) -> np.ndarray:
    """A belt estimate without a learned model, for a uniform or slowly varying belt: per
    column, the median of the band's top and bottom margin rows (every fourth column, then
    smoothed along x so a stalk crossing the margin does not leak in), blended linearly
    between top and bottom. Written into ``dst`` (the band's shape) when given."""
    height, width = band_bgr.shape[:2]
    m = max(1, min(margin_rows, height // 8))
    skip = 2 if height > 8 * m + 4 else 0  # lane dividers sit on the band's first and last rows
    step = 4 if width >= 64 else 1
    # Each top margin row with its bottom counterpart as one two-row view (row step
    # ``gap_rows``), so one median serves both margins. The median runs on whole rows and the
    # columns are sampled afterwards: OpenCV's element-wise max/min over a contiguous row
    # costs less than numpy's over every fourth pixel, and the per-element median commutes
    # with the sampling.
    gap_rows = height - 2 * skip - m
    pairs = [band_bgr[skip + i :: gap_rows][:2] if gap_rows else band_bgr[[i, i]] for i in range(m)]
    rows = np.ascontiguousarray(_upper_median(pairs)[:, ::step])  # 2 x columns x 3, uint8
    k = max(1, min(9, rows.shape[1] // 4) | 1)
    rows = cv2.blur(rows, (k, 1))
    return cv2.resize(rows, (width, height), dst=dst, interpolation=cv2.INTER_LINEAR)


def _upper_median(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Element-wise upper median of equally shaped images (the (m//2)-th smallest of m)."""
    if len(rows) == 4:
        # a min/max network: a sort would order thousands of 4-element columns one by one
        a, b, c, d = rows
        return cv2.max(cv2.min(cv2.max(a, b), cv2.max(c, d)), cv2.max(cv2.min(a, b), cv2.min(c, d)))
    return np.sort(np.stack(rows), axis=0)[len(rows) // 2]
