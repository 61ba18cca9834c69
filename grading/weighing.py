"""The weight ledger: which cup each scale reading belongs to, and each cup's weight.

Every reading carries the time its bytes arrived (stamped in the driver's reader thread).
The belt's timing (``grading.position.BeltTiming``) turns that time into a belt position, and
the position says which cup was on the lane's load cell: cup ``k`` is centred on it when the
position is ``k + scale_offset_cups``. A reading counts for cup ``k`` only when it is stable
and was taken within ``window_cups`` of that centre; the cup's weight is the median of those.
Nothing here depends on when the event loop gets to a reading, so a stalled loop can neither
lose a weight nor hand a cup its neighbour's.

Readings the driver marks as backlogged (they came in one read with others, after the
reader thread was held up, so their moment is unknown) are not used. Neither is a cup whose
stable readings disagree: a late stamp can carry a neighbour's plateau into a cup's window,
and no weight (the recheck outlet) beats a wrong one.

A cup without a weight gets a cause, counted by the runtime:

* ``inconsistent``: its stable readings disagree by more than ``consistency_g``;
* ``unstable``: readings came while the cup was centred, but none was stable;
* ``reader_behind``: readings came only in backlogs: the PC was too busy to time them;
* ``out_of_window``: stable readings came for this cup, but only off-centre (a load cell
  offset that does not match the config, or a very short plateau);
* ``device_down``: the indicator was down (disconnected or stale) while the cup crossed;
* ``timeout``: the indicator was up but sent nothing while the cup crossed.

Owns no I/O and no clock.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from drivers.interfaces import WeightReading
from grading.position import BeltTiming

WeighCause = Literal["inconsistent", "unstable", "reader_behind", "out_of_window", "device_down", "timeout"]
WEIGH_CAUSES: tuple[WeighCause, ...] = (
    "inconsistent", "unstable", "reader_behind", "out_of_window", "device_down", "timeout"
)


@dataclass(frozen=True, slots=True)
class CupWeight:
    weight_g: float | None
    cause: WeighCause | None  # why there is no weight; None when there is one
    readings: int  # stable readings the weight is the median of


@dataclass(slots=True)
class _Cup:
    stable_g: list[float] = field(default_factory=list)
    unstable: int = 0
    off_centre_stable: int = 0
    backlogged: int = 0


class WeightLedger:
    """Per lane: readings in, each cup's weight out (``take``, once per cup)."""

    def __init__(
        self,
        lanes: int,
        scale_offset_cups: float,
        window_cups: float = 0.25,
        keep_cups: int = 1024,
        consistency_g: float = 1.0,
    ) -> None:
        if not 0 < window_cups < 0.5:
            raise ValueError("window_cups must be in (0, 0.5)")
        self.consistency_g = consistency_g
        self.lanes = lanes
        self.scale_offset_cups = scale_offset_cups
        self.window_cups = window_cups
        self._keep_cups = keep_cups
        self._cups: list[dict[int, _Cup]] = [{} for _ in range(lanes)]
        # belt positions (of the load cell's cup) between which each lane's indicator was down
        self._down: list[list[tuple[float, float]]] = [[] for _ in range(lanes)]
        self._last_drain_x: list[float | None] = [None] * lanes
        self.readings_unplaced = 0  # readings that came while the belt timing was unknown

    def add(self, lane: int, readings: Sequence[WeightReading], timing: BeltTiming, up: bool, now_s: float) -> None:
        """Readings just taken from ``lane``'s indicator; ``up`` is its state at ``now_s``."""
        cups = self._cups[lane]
        for reading in readings:
            position = timing.position_at(reading.t_s)
            if position is None:
                self.readings_unplaced += 1
                continue
            x = position - self.scale_offset_cups
            k = round(x)
            cup = cups.get(k)
            if cup is None:
                cup = cups[k] = _Cup()
            centred = abs(x - k) <= self.window_cups
            if reading.backlogged:
                cup.backlogged += 1
            elif centred and reading.stable:
                cup.stable_g.append(reading.weight_g)
            elif centred:
                cup.unstable += 1
            elif reading.stable:
                cup.off_centre_stable += 1
        now = timing.position_at(now_s)
        if now is None:
            return
        x_now = now - self.scale_offset_cups
        last = self._last_drain_x[lane]
        self._last_drain_x[lane] = x_now
        if not up and last is not None:
            down = self._down[lane]
            if down and down[-1][1] >= last - 1e-9:
                down[-1] = (down[-1][0], x_now)  # the same outage, still going
            else:
                down.append((last, x_now))
        oldest = x_now - self._keep_cups
        if len(cups) > 2 * self._keep_cups:
            for k in [k for k in cups if k < oldest]:
                del cups[k]
        self._down[lane] = [(a, b) for a, b in self._down[lane] if b >= oldest]

    def take(self, lane: int, cup_index: int) -> CupWeight:
        """The weight of one cup (unwrapped index), or why there is none. Forgets the cup."""
        cup = self._cups[lane].pop(cup_index, None)
        if cup is not None and cup.stable_g:
            if max(cup.stable_g) - min(cup.stable_g) > self.consistency_g:
                return CupWeight(None, "inconsistent", 0)
            return CupWeight(statistics.median(cup.stable_g), None, len(cup.stable_g))
        if cup is not None and cup.unstable:
            return CupWeight(None, "unstable", 0)
        if cup is not None and cup.backlogged:
            return CupWeight(None, "reader_behind", 0)
        if cup is not None and cup.off_centre_stable:
            return CupWeight(None, "out_of_window", 0)
        lo, hi = cup_index - self.window_cups, cup_index + self.window_cups
        if any(a <= hi and b >= lo for a, b in self._down[lane]):
            return CupWeight(None, "device_down", 0)
        return CupWeight(None, "timeout", 0)
