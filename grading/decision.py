"""The decision step: a frame's fused fruit in, one record and at most one PLC write per fruit out.

For each fruit that left the camera's field it takes the cup's weight from the weight ledger
(or the cause of its absence), grades the measurement, assigns an outlet and checks the
deadline: a decision must be written before the cup is ``first_outlet_offset_cups -
decision_margin_cups`` past the inspection point, else it is not written at all (the PLC then
recirculates the cup) and the fruit is recorded as late. The record is built here, complete;
the runtime commits it before it writes the decision, and checks the deadline again after the
commit (``in_time``).

No I/O and no clock of its own: times and positions are passed in, so the whole step is
tested on a fake clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from drivers.interfaces import OutletDecision
from grading.grader import Grader
from grading.measurement import FruitMeasurement
from grading.outlets import RECIRCULATE, OutletAssigner
from grading.position import counter_cup
from grading.records import FruitRecord
from grading.weighing import WeighCause, WeightLedger

if TYPE_CHECKING:
    from vision.tracking import FusedFruit


@dataclass(frozen=True, slots=True)
class DecisionSettings:
    first_outlet_offset_cups: float
    decision_margin_cups: float

    @property
    def deadline_offset_cups(self) -> float:
        """How far past the inspection point a cup may be when its decision lands."""
        return self.first_outlet_offset_cups - self.decision_margin_cups


@dataclass(frozen=True, slots=True)
class Decision:
    record: FruitRecord
    write: OutletDecision | None  # None: too late to write; the PLC recirculates the cup
    deadline_position_cups: float  # the belt position by which the write must have landed
    weigh_cause: WeighCause | None  # why the cup has no weight, if it has none


class DecisionStep:
    """Grades fused fruit into records and PLC writes (see the module docstring)."""

    def __init__(
        self,
        settings: DecisionSettings,
        grader: Grader,
        assigner: OutletAssigner,
        ledger: WeightLedger,
        *,
        wall_clock: Callable[[], datetime],
        new_uid: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.settings = settings
        self.grader = grader
        self.assigner = assigner
        self.ledger = ledger
        self._wall_clock = wall_clock
        self._new_uid = new_uid

    def decide(
        self,
        fused: Sequence[FusedFruit],
        *,
        lot_id: int,
        frame_t_s: float,
        frame_position_cups: float | None = None,
        now_s: float,
        position_now_cups: float | None,
        outlet_full: Sequence[bool],
    ) -> list[Decision]:
        graded_at = self._wall_clock()
        latency_ms = max(0.0, (now_s - frame_t_s) * 1000.0)
        decisions = []
        for fruit in fused:
            weight = self.ledger.take(fruit.lane, fruit.cup_index)
            measurement = FruitMeasurement(
                weight_g=weight.weight_g,
                diameter_major_mm=fruit.diameter_major_mm,
                diameter_minor_mm=fruit.diameter_minor_mm,
                area_cm2=fruit.area_cm2,
                colour_fractions=fruit.colour_fractions,
                defect_count=fruit.defect_count,
                defect_area_cm2=fruit.defect_area_cm2,
                elongation=fruit.elongation,
                volume_cm3=fruit.volume_cm3,
                quality_score=fruit.quality_score,
                # why a fruit has no weight travels with its record
                flags=fruit.flags if weight.cause is None else fruit.flags | {f"no_weight:{weight.cause}"},
            )
            grade = self.grader.grade(measurement)
            deadline = fruit.cup_index + self.settings.deadline_offset_cups
            late = position_now_cups is None or position_now_cups >= deadline
            outlet = RECIRCULATE if late else self.assigner.assign(grade, outlet_full)
            cup = counter_cup(fruit.cup_index)
            record = FruitRecord(
                uid=self._new_uid(),
                lot_id=lot_id,
                lane=fruit.lane,
                cup_index=cup,
                graded_at=graded_at,
                measurement=measurement,
                views=fruit.views,
                grade=grade,
                outlet=outlet,
                late=late,
                decision_latency_ms=latency_ms,
                frame_position_cups=frame_position_cups,
            )
            # Outlet 0 is written too: the PLC then knows the recirculation was decided, not late.
            write = None if late else OutletDecision(fruit.lane, cup, outlet)
            decisions.append(Decision(record, write, deadline, weight.cause))
        return decisions

    @staticmethod
    def in_time(decision: Decision, position_now_cups: float | None) -> bool:
        """Whether the decision may still be written now."""
        return (
            decision.write is not None
            and position_now_cups is not None
            and position_now_cups < decision.deadline_position_cups
        )
