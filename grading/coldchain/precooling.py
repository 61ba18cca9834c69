"""Pre-cooling: half-cooling and seven-eighths-cooling times of a batch from its core probe.

The fractional unaccomplished temperature difference Y(t) = (T(t) - Ta) / (T0 - Ta), with T0
the core at the batch's start and Ta the cooling air, falls as exp(-k (t - lag)) under Newton's
law once the initial lag has passed. Half-cooling is Y = 1/2, seven-eighths-cooling Y = 1/8
(three half-cooling times). Measured: the first sample at or below each fraction. Predicted:
a least-squares line through ln Y against time (no scipy), t(Y) = (a - ln Y) / k. Samples
with Y below ``min_fraction`` are left out of the fit: there the probe's noise swamps ln Y.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

HALF = 0.5
SEVEN_EIGHTHS = 0.125  # Y left at seven-eighths cooling


@dataclass(frozen=True, slots=True)
class CoolingEstimate:
    """Where a batch is on its cooling curve; times in seconds from the batch's start."""

    elapsed_s: float
    initial_c: float
    air_c: float
    core_c: float
    fraction_left: float  # Y now (1 at the start, 0 at the air's temperature)
    half_cooling_measured_s: float | None
    seven_eighths_measured_s: float | None
    cooling_rate_per_s: float | None  # k of the fit
    half_cooling_predicted_s: float | None
    seven_eighths_predicted_s: float | None

    @property
    def progress(self) -> float:
        """0 at the start, 1 at seven-eighths cooling (the usual point to move to storage)."""
        return max(0.0, min(1.0, (1 - self.fraction_left) / (1 - SEVEN_EIGHTHS)))


def estimate(
    times_s: Sequence[float], core_c: Sequence[float], air_c: float, *, min_fraction: float = 0.05,
    min_drop: float = 0.05,
) -> CoolingEstimate | None:
    """The estimate from a batch's samples (times from its start, oldest first); None before
    there are two samples or when the core starts at the air's temperature."""
    if len(times_s) != len(core_c):
        raise ValueError("times and temperatures differ in length")
    if len(times_s) < 2:
        return None
    initial = core_c[0]
    span = initial - air_c
    if abs(span) < 0.5:
        return None
    fractions = [(c - air_c) / span for c in core_c]
    half_at = next((t for t, y in zip(times_s, fractions, strict=True) if y <= HALF), None)
    eighth_at = next((t for t, y in zip(times_s, fractions, strict=True) if y <= SEVEN_EIGHTHS), None)
    # Fit where the curve has left its start (the lag) and before the noise floor.
    points = [(t, math.log(y)) for t, y in zip(times_s, fractions, strict=True) if min_fraction <= y <= 1 - min_drop]
    k = a = None
    if len(points) >= 3:
        n = len(points)
        mean_t = sum(t for t, _ in points) / n
        mean_l = sum(v for _, v in points) / n
        sxx = sum((t - mean_t) ** 2 for t, _ in points)
        sxy = sum((t - mean_t) * (v - mean_l) for t, v in points)
        if sxx > 0 and sxy < 0:
            k = -sxy / sxx
            a = mean_l + k * mean_t
    half_pred = eighth_pred = None
    if k is not None and a is not None:
        half_pred = (a - math.log(HALF)) / k
        eighth_pred = (a - math.log(SEVEN_EIGHTHS)) / k
    return CoolingEstimate(
        elapsed_s=times_s[-1], initial_c=initial, air_c=air_c, core_c=core_c[-1], fraction_left=fractions[-1],
        half_cooling_measured_s=half_at, seven_eighths_measured_s=eighth_at, cooling_rate_per_s=k,
        half_cooling_predicted_s=half_pred, seven_eighths_predicted_s=eighth_pred,
    )
