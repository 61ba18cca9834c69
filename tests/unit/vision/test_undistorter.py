"""The streaming undistorter gives the same image as the one-shot ``undistort``."""

from __future__ import annotations

import numpy as np

from vision.calibration import Undistorter, undistort


def test_streaming_undistort_matches_one_shot() -> None:
    rng = np.random.default_rng(3)
    image = (rng.random((240, 320, 3)) * 255).astype(np.uint8)
    k = [[300.0, 0.0, 160.0], [0.0, 300.0, 120.0], [0.0, 0.0, 1.0]]
    d = [-0.25, 0.05, 0.0, 0.0, 0.0]
    expected = undistort(image, k, d)
    streaming = Undistorter(k, d)
    for _ in range(2):  # the second call reuses the maps
        got = streaming(image)
        # Fixed-point maps round sub-pixel positions to 1/32 px: allow a few grey levels.
        assert np.mean(np.abs(got.astype(int) - expected.astype(int))) < 2.0
    assert not np.array_equal(expected, image)
