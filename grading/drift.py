"""Drift alarm: notices, from the graded fruit alone, when a lot's grade mix or one lane drifts.

Owns two conditions over moving windows of graded-fruit records (``grading.records.FruitRecord``,
fed in the order they were graded):

* **lot mix**: the share of each grade outcome (recipe classes, ``cull``, ``recheck``) in the open
  lot's last ``lot_window_fruit`` fruit against the same share in its first
  ``lot_baseline_fruit`` fruit (the lot's own start). The fruit changed, or the machine did.
* **lane**: one lane against the others: per lane, the mean of each measure over its last
  ``lane_window_fruit`` fruit against the median of the other lanes' means. A dirty lens or a
  dimming lamp over one lane moves its colour shares and defect rate; a failing load cell moves
  its weight against the weight its diameters imply; either moves its grade mix.

A condition is raised when its deviation leaves the configured band and cleared, by itself,
when the deviation is back within ``clear_fraction`` of the band (hysteresis, so a value on the
edge does not flap). Each change is one ``DriftAlarm`` event, returned by ``observe`` and given
to the ``emit`` callback; ``active()`` lists the raised conditions (for a gauge or the HMI).

Pure domain code: no I/O, no threads, time comes from the injected clock. It does not route
alarms (the alarm engine and the event bus do) and does not know simulators.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grading.alarms import AlarmDefinition, AlarmEngine
from grading.fruit_events import FruitGraded
from grading.records import FruitRecord

DriftKind = Literal["lot_mix", "lane"]

#: Lane measures besides ``colour.<class>`` and ``grade.<outcome>``.
#: ``colour_seen``: share of the seen skin inside any recipe colour class (a darker or tinted
#: view pushes skin out of every box). ``defect_rate``: share of fruit with a defect.
#: ``weight_per_volume``: weight over the spheroid volume of the two diameters (g/cm³), i.e. what
#: the scale says against what the camera says; compared as a ratio to the other lanes.
LANE_MEASURES = ("colour_seen", "defect_rate", "weight_per_volume")
COLOUR_PREFIX = "colour."
GRADE_PREFIX = "grade."
DOUBLE_FLAG = "double"


class DriftSettings(BaseModel):
    """Windows and bands of the drift alarm (defaults measured on the simulator, docs/drift.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lane_window_fruit: int = Field(60, ge=10, le=10000, description="Fruit per lane in its moving window.")
    lane_min_fruit: int = Field(
        40, ge=5, le=10000, description="A lane is compared only once its window holds this many fruit."
    )
    lot_baseline_fruit: int = Field(
        300, ge=20, le=100000, description="The lot's first N fruit are its start, the reference of the lot mix."
    )
    lot_window_fruit: int = Field(
        300, ge=20, le=100000, description="The lot's last N fruit, compared with its start."
    )
    lot_grade_band: float = Field(
        0.15, gt=0, le=1, description="Largest change of one grade outcome's share against the lot's start."
    )
    lane_grade_band: float = Field(
        0.30, gt=0, le=1, description="Largest gap of one grade outcome's share between a lane and the others."
    )
    colour_band: float = Field(
        0.25, gt=0, le=1, description="Largest gap of one colour class's mean share between a lane and the others."
    )
    colour_seen_band: float = Field(
        0.15, gt=0, le=1, description="Largest gap of the share of skin inside any colour class (colour_seen)."
    )
    defect_rate_band: float = Field(
        0.35, gt=0, le=1, description="Largest gap of the share of fruit with a defect."
    )
    weight_ratio_band: float = Field(
        0.08,
        gt=0,
        le=1,
        description="Largest relative gap of weight per spheroid volume (0.08 = the lane weighs 8 % "
        "heavier or lighter for its size than the others).",
    )
    clear_fraction: float = Field(
        0.6, gt=0, lt=1, description="A raised condition clears once its deviation is within this share of its band."
    )

    @model_validator(mode="after")
    def _check(self) -> DriftSettings:
        if self.lane_min_fruit > self.lane_window_fruit:
            raise ValueError("lane_min_fruit: must not exceed lane_window_fruit")
        return self


@dataclass(frozen=True, slots=True)
class DriftAlarm:
    """A drift condition raised or cleared.

    ``measure`` is ``grade.<outcome>``, ``colour.<class>`` or one of ``LANE_MEASURES``; ``value``
    is its current window value, ``reference`` what it is compared with (the lot's start, or the
    median of the other lanes), ``deviation`` how far apart they are in the band's terms
    (``value - reference``, relative for ``weight_per_volume``) and ``band`` the limit.
    """

    raised: bool  # True = raised, False = cleared
    kind: DriftKind
    measure: str
    lane: int | None  # the lane for kind "lane", None for "lot_mix"
    lot_id: int
    value: float
    reference: float
    deviation: float
    band: float
    fruit_seen: int  # fruit observed by the detector when this happened
    at: datetime

    @property
    def key(self) -> tuple[str, str, int | None]:
        return (self.kind, self.measure, self.lane)

    def describe(self) -> str:
        where = f"lane {self.lane}" if self.lane is not None else f"lot {self.lot_id}"
        state = "raised" if self.raised else "cleared"
        return (
            f"drift {state}: {where} {self.measure} {self.value:.3f} vs {self.reference:.3f} "
            f"(deviation {self.deviation:+.3f}, band {self.band:g})"
        )


class _Mean:
    """A moving mean over the last ``size`` values."""

    __slots__ = ("values", "total")

    def __init__(self, size: int) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self.total = 0.0

    def add(self, value: float) -> None:
        if len(self.values) == self.values.maxlen:
            self.total -= self.values[0]
        self.values.append(value)
        self.total += value

    def __len__(self) -> int:
        return len(self.values)

    def mean(self) -> float:
        # Recomputed now and then would guard against float creep; windows are short enough.
        return self.total / len(self.values) if self.values else math.nan


class _Shares:
    """Moving shares of labels (grade outcomes) over the last ``size`` fruit."""

    __slots__ = ("labels", "counts")

    def __init__(self, size: int) -> None:
        self.labels: deque[str] = deque(maxlen=size)
        self.counts: Counter[str] = Counter()

    def add(self, label: str) -> None:
        if len(self.labels) == self.labels.maxlen:
            self.counts[self.labels[0]] -= 1
        self.labels.append(label)
        self.counts[label] += 1

    def __len__(self) -> int:
        return len(self.labels)

    def share(self, label: str) -> float:
        return self.counts[label] / len(self.labels) if self.labels else math.nan


class _Lane:
    def __init__(self, window: int) -> None:
        self.window = window
        self.means: dict[str, _Mean] = {}
        self.grades = _Shares(window)

    def mean(self, measure: str) -> _Mean:
        got = self.means.get(measure)
        if got is None:
            got = self.means[measure] = _Mean(self.window)
        return got


def spheroid_volume_cm3(diameter_major_mm: float, diameter_minor_mm: float) -> float:
    """Volume of a spheroid with one long axis and two equal short ones, in cm³."""
    return math.pi / 6.0 * diameter_major_mm * diameter_minor_mm**2 / 1000.0


class DriftDetector:
    """Feeds on graded fruit in order; raises and clears drift conditions (see the module doc).

    ``emit`` gets every ``DriftAlarm`` as it happens (e.g. the alarm engine's input);
    ``clock`` stamps them.
    """

    def __init__(
        self,
        settings: DriftSettings,
        clock: Callable[[], datetime],
        emit: Callable[[DriftAlarm], None] | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._emit = emit
        self._lanes: dict[int, _Lane] = {}
        self._active: dict[tuple[str, str, int | None], DriftAlarm] = {}
        self._fruit_seen = 0
        self._lot_id: int | None = None
        self._lot_start = _Shares(settings.lot_baseline_fruit)
        self._lot_recent = _Shares(settings.lot_window_fruit)
        self._lot_fruit = 0

    # -- what it reports -----------------------------------------------------------------
    def active(self) -> list[DriftAlarm]:
        """The conditions raised now (their raising events)."""
        return list(self._active.values())

    @property
    def fruit_seen(self) -> int:
        return self._fruit_seen

    # -- feeding ---------------------------------------------------------------------------
    def observe_all(self, records: Iterable[FruitRecord]) -> list[DriftAlarm]:
        events: list[DriftAlarm] = []
        for record in records:
            events += self.observe(record)
        return events

    def observe(self, record: FruitRecord) -> list[DriftAlarm]:
        """Take one graded fruit; returns the alarms it raised or cleared (usually none)."""
        self._fruit_seen += 1
        events: list[DriftAlarm] = []
        if record.lot_id != self._lot_id:
            events += self._close_lot()
            self._lot_id = record.lot_id
        outcome = record.grade.quality_class
        self._observe_lot(outcome, record.lot_id, events)
        lane = self._lanes.get(record.lane)
        if lane is None:
            lane = self._lanes[record.lane] = _Lane(self.settings.lane_window_fruit)
        lane.grades.add(outcome)
        measured = self._lane_values(record)
        for measure, value in measured.items():
            lane.mean(measure).add(value)
        self._compare_lane(record.lane, record.lot_id, events)
        for event in events:
            if self._emit is not None:
                self._emit(event)
        return events

    # -- lot mix ---------------------------------------------------------------------------
    def _close_lot(self) -> list[DriftAlarm]:
        """A new lot starts its own reference; the old lot's conditions end with it."""
        events = []
        for key, alarm in list(self._active.items()):
            if alarm.kind == "lot_mix":
                del self._active[key]
                events.append(self._event(alarm, False, alarm.value, alarm.reference, alarm.deviation))
        self._lot_start = _Shares(self.settings.lot_baseline_fruit)
        self._lot_recent = _Shares(self.settings.lot_window_fruit)
        self._lot_fruit = 0
        return events

    def _observe_lot(self, outcome: str, lot_id: int, events: list[DriftAlarm]) -> None:
        s = self.settings
        self._lot_fruit += 1
        if self._lot_fruit <= s.lot_baseline_fruit:
            self._lot_start.add(outcome)
            return
        self._lot_recent.add(outcome)
        if len(self._lot_recent) < s.lot_window_fruit:
            return
        for label in set(self._lot_start.counts) | set(self._lot_recent.counts):
            reference = self._lot_start.share(label)
            value = self._lot_recent.share(label)
            self._judge("lot_mix", GRADE_PREFIX + label, None, lot_id, value, reference, value - reference, s.lot_grade_band, events)

    # -- lane against the others -----------------------------------------------------------
    @staticmethod
    def _lane_values(record: FruitRecord) -> dict[str, float]:
        m = record.measurement
        if DOUBLE_FLAG in m.flags:
            return {}  # two fruit in one cup: the views and the weight mix them
        values = {
            "colour_seen": float(sum(m.colour_fractions.values())),
            "defect_rate": 1.0 if m.defect_count > 0 else 0.0,
        }
        for name, share in m.colour_fractions.items():
            values[COLOUR_PREFIX + name] = float(share)
        volume = spheroid_volume_cm3(m.diameter_major_mm, m.diameter_minor_mm)
        if m.weight_g is not None and math.isfinite(m.weight_g) and m.weight_g > 0 and volume > 0:
            values["weight_per_volume"] = m.weight_g / volume
        return values

    def _band(self, measure: str) -> float:
        s = self.settings
        if measure.startswith(GRADE_PREFIX):
            return s.lane_grade_band
        if measure.startswith(COLOUR_PREFIX):
            return s.colour_band
        return {
            "colour_seen": s.colour_seen_band,
            "defect_rate": s.defect_rate_band,
            "weight_per_volume": s.weight_ratio_band,
        }[measure]

    def _compare_lane(self, lane_no: int, lot_id: int, events: list[DriftAlarm]) -> None:
        s = self.settings
        lane = self._lanes[lane_no]
        others = [
            other for number, other in self._lanes.items() if number != lane_no and len(other.grades) >= s.lane_min_fruit
        ]
        if len(lane.grades) < s.lane_min_fruit or not others:
            return
        for measure, window in lane.means.items():
            if len(window) < s.lane_min_fruit:
                continue
            peers = [o.means[measure].mean() for o in others if measure in o.means and len(o.means[measure]) >= s.lane_min_fruit]
            if not peers and measure.startswith(COLOUR_PREFIX):
                peers = [0.0 for _ in others]  # a colour class the other lanes never saw
            if not peers:
                continue
            reference = statistics.median(peers)
            value = window.mean()
            if measure == "weight_per_volume":
                deviation = value / reference - 1.0 if reference > 0 else math.inf
            else:
                deviation = value - reference
            self._judge("lane", measure, lane_no, lot_id, value, reference, deviation, self._band(measure), events)
        labels = set(lane.grades.counts)
        for other in others:
            labels |= set(other.grades.counts)
        for label in labels:
            value = lane.grades.share(label)
            reference = statistics.median(o.grades.share(label) for o in others)
            self._judge("lane", GRADE_PREFIX + label, lane_no, lot_id, value, reference, value - reference, s.lane_grade_band, events)

    # -- raising and clearing ----------------------------------------------------------------
    def _judge(
        self,
        kind: DriftKind,
        measure: str,
        lane: int | None,
        lot_id: int,
        value: float,
        reference: float,
        deviation: float,
        band: float,
        events: list[DriftAlarm],
    ) -> None:
        key = (kind, measure, lane)
        raised = self._active.get(key)
        if raised is None:
            if abs(deviation) > band:
                alarm = DriftAlarm(
                    True, kind, measure, lane, lot_id, value, reference, deviation, band, self._fruit_seen, self._clock()
                )
                self._active[key] = alarm
                events.append(alarm)
        elif abs(deviation) <= band * self.settings.clear_fraction:
            del self._active[key]
            events.append(self._event(raised, False, value, reference, deviation))

    def _event(self, alarm: DriftAlarm, raised: bool, value: float, reference: float, deviation: float) -> DriftAlarm:
        return DriftAlarm(
            raised,
            alarm.kind,
            alarm.measure,
            alarm.lane,
            alarm.lot_id,
            value,
            reference,
            deviation,
            alarm.band,
            self._fruit_seen,
            self._clock(),
        )


class DriftAlarms:
    """Routes a detector's conditions into the line's ISA-18.2 alarm engine, one alarm per
    (kind, measure, lane): raised and cleared as the detector says, acknowledged and shelved
    like any other alarm (``grading.alarms``). Subscribe ``on_fruit`` to the fruit bus."""

    def __init__(self, detector: DriftDetector, engine: AlarmEngine, *, line: str, priority: str = "medium") -> None:
        self.detector = detector
        self._engine = engine
        self._line = line
        self._priority = priority
        self._defined: set[str] = set()

    def on_fruit(self, event: FruitGraded) -> None:
        for alarm in self.detector.observe(event.record):
            self._report(alarm)

    @staticmethod
    def alarm_id(alarm: DriftAlarm) -> str:
        where = f"lane-{alarm.lane}" if alarm.lane is not None else "lot"
        return f"drift:{alarm.kind}:{where}:{alarm.measure}"

    def _report(self, alarm: DriftAlarm) -> None:
        alarm_id = self.alarm_id(alarm)
        if alarm_id not in self._defined:
            where = f"lane {alarm.lane}" if alarm.lane is not None else "the lot's start"
            self._engine.define(
                AlarmDefinition(
                    alarm_id=alarm_id, kind="drift", source=self._line, priority=self._priority,
                    message=f"{alarm.measure} drifted against {where}",
                )
            )
            self._defined.add(alarm_id)
        # the detector applies its own band and hysteresis: the engine takes its verdict
        self._engine.report(alarm_id, alarm.raised, alarm.deviation)
