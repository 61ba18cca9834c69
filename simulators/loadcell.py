"""The load cell under one lane's cups, as a pure function of the belt position.

Owns what a lane's load cell carries at a belt position: the cup centred on it, that cup's
plateau weight (its fruit plus one weighing error drawn once per cup), and the blend of two
neighbouring cups while one rolls off and the next rolls on. It knows nothing about
indicators or wire protocols: ``BeltLoadCell`` adapts it to the scale simulator's
``WeightSource`` by reading the belt position at the moment the indicator samples, and the
in-process stand-in can call ``LaneLoadCell.load`` with its own position.

Belt convention (docs/architecture.md): cup ``k`` is at the inspection point at position
``P == k``, so the cup centred on a load cell ``scale_offset_cups`` from it (negative =
upstream) is ``round(P - scale_offset_cups)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

# Domain tag in the error's random stream, so it never coincides with another stream of the
# same seed (the fruit generator keys on (seed, lane, cup) too).
_ERROR_STREAM = 0x5CA1E
_EDGE_EPSILON = 1e-9


class LaneLoadCell:
    """One lane's load cell: ``load(position_cups) -> (weight_g, stable)``.

    Within ``plateau_half_width_cups`` of a cup's centre the cell carries that cup alone and
    reads its ``plateau_weight_g``, stable. Between two cups the load moves linearly from one
    plateau to the next and the reading is dynamic (unstable), as an indicator's motion
    detector reports a changing load.
    """

    def __init__(
        self,
        cup_weight_g: Callable[[int], float],
        *,
        lane: int,
        scale_offset_cups: int,
        noise_g: float,
        seed: int,
        plateau_half_width_cups: float = 0.3,
        fault_offset_g: Callable[[int], float] | None = None,
    ) -> None:
        if not 0 < plateau_half_width_cups < 0.5:
            raise ValueError("plateau_half_width_cups must be between 0 and 0.5")
        if noise_g < 0:
            raise ValueError("noise_g must be >= 0")
        self.lane = lane
        self.scale_offset_cups = scale_offset_cups
        self.noise_g = noise_g
        self.seed = seed
        self.plateau_half_width_cups = plateau_half_width_cups
        self._cup_weight_g = cup_weight_g
        # A simulated fault (a drifting cell, ``ScaleDriftFault``): grams added to a cup's reading.
        self._fault_offset_g = fault_offset_g
        # A poll or stream samples the same few cups many times over; each error is a draw.
        self._error_g = lru_cache(maxsize=4096)(self._draw_error_g)

    def cup_on_cell(self, position_cups: float) -> int:
        """The cup whose centre is nearest the load cell at this position."""
        return math.floor(position_cups - self.scale_offset_cups + 0.5)

    def centred_position_cups(self, cup: int) -> float:
        """The belt position at which ``cup`` is centred on the load cell."""
        return cup + self.scale_offset_cups

    def _draw_error_g(self, cup: int) -> float:
        if self.noise_g == 0:
            return 0.0
        rng = np.random.default_rng([self.seed, _ERROR_STREAM, self.lane, cup & 0xFFFFFFFF])
        return float(rng.normal(0.0, self.noise_g))

    def weighing_error_g(self, cup: int) -> float:
        """This cup's weighing error: drawn once, so its plateau reads constant."""
        return self._error_g(cup)

    def plateau_weight_g(self, cup: int) -> float:
        """What the cell reads while ``cup`` rests on it alone: its fruit plus its error (and a
        simulated fault's offset, if any)."""
        offset = 0.0 if self._fault_offset_g is None else self._fault_offset_g(cup)
        return self._cup_weight_g(cup) + self._error_g(cup) + offset

    def load(self, position_cups: float) -> tuple[float, bool]:
        """Load in grams at this belt position, and whether it is still."""
        u = position_cups - self.scale_offset_cups  # cup coordinate at the load cell
        first = math.floor(u)
        f = u - first
        h = self.plateau_half_width_cups
        # The plateau's edges belong to it, up to the rounding of a position computed from time.
        if f <= h + _EDGE_EPSILON:
            return self.plateau_weight_g(first), True
        if f >= 1.0 - h - _EDGE_EPSILON:
            return self.plateau_weight_g(first + 1), True
        share = (f - h) / (1.0 - 2.0 * h)  # of the arriving cup
        weight_g = (1.0 - share) * self.plateau_weight_g(first) + share * self.plateau_weight_g(
            first + 1
        )
        return weight_g, False


def displayed_g(weight_g: float, resolution_g: float) -> float:
    """The weight as an indicator with this display step shows it."""
    decimals = max(0, -math.floor(math.log10(resolution_g) + 1e-9))
    return round(round(weight_g / resolution_g) * resolution_g, decimals)


class BeltLoadCell:
    """``simulators.scale_server.WeightSource`` for one lane, driven by the belt.

    The scale simulator samples when it answers a request or sends a streamed frame; this
    reads the belt position at that moment (the PLC model's encoder), so the indicator shows
    whatever is on the cell then, whatever the polling rate. The simulator's own ``t_s`` is
    not used: the belt, not a scripted timeline, says what is on the cell.
    """

    def __init__(
        self, cell: LaneLoadCell, position_cups: Callable[[], float], resolution_g: float
    ) -> None:
        self.cell = cell
        self.position_cups = position_cups
        self.resolution_g = resolution_g

    def sample(self, t_s: float) -> tuple[float, bool]:
        weight_g, stable = self.cell.load(self.position_cups())
        return displayed_g(weight_g, self.resolution_g), stable
