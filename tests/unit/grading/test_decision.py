"""The decision step on a fake clock: weights from the ledger, the deadline, grade and outlet.

Nothing sleeps: the belt is a straight line in (fake) time, readings and fused fruit are
scripted, and the step is called at chosen moments.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drivers.interfaces import OutletDecision, PlcStatus, WeightReading
from grading.config import OutletSettings
from grading.decision import DecisionSettings, DecisionStep
from grading.grader import Grader
from grading.outlets import OutletAssigner
from grading.position import BeltTiming
from grading.recipe import load_recipe
from grading.weighing import WeightLedger
from tests.line_fakes import Fused

SPEED = 10.0
OFFSET = -10
FIRST_OUTLET = 6


class FakeClock:
    def __init__(self) -> None:
        self.t_s = 0.0

    def __call__(self) -> float:
        return self.t_s


def belt(until_s: float) -> BeltTiming:
    timing = BeltTiming(window_s=100.0, stale_after_s=100.0)
    for i in range(int(until_s / 0.02) + 1):
        t = i * 0.02
        timing.observe(PlcStatus(int(SPEED * t), SPEED, True, (), t, SPEED * t, 1.0))
    return timing


def weigh(ledger: WeightLedger, timing: BeltTiming, cup: int, weight_g: float, lane: int = 0) -> None:
    """Stable readings while ``cup`` is centred on the load cell (100 Hz)."""
    t_centre = (cup + OFFSET) / SPEED
    readings = [WeightReading(weight_g, True, t_centre + dt) for dt in (-0.02, -0.01, 0.0, 0.01, 0.02)]
    ledger.add(lane, readings, timing, True, t_centre + 0.05)


def step(ledger: WeightLedger) -> DecisionStep:
    outlets = [
        OutletSettings(number=1, offset_cups=FIRST_OUTLET, quality_classes=["extra"]),
        OutletSettings(number=2, offset_cups=FIRST_OUTLET + 2, quality_classes=["class_i", "class_ii"]),
        OutletSettings(number=3, offset_cups=FIRST_OUTLET + 4, role="recheck"),
        OutletSettings(number=4, offset_cups=FIRST_OUTLET + 6, role="cull"),
    ]
    uids = iter(f"u{i}" for i in range(1000))
    return DecisionStep(
        DecisionSettings(first_outlet_offset_cups=FIRST_OUTLET, decision_margin_cups=1.0),
        Grader(load_recipe("apple")),
        OutletAssigner(outlets),
        ledger,
        wall_clock=lambda: datetime(2026, 12, 2, tzinfo=UTC),
        new_uid=lambda: next(uids),
    )


def test_each_fruit_gets_its_cups_weight_grade_and_outlet() -> None:
    timing, ledger = belt(5.0), WeightLedger(2, OFFSET)
    weigh(ledger, timing, 40, 204.0)
    weigh(ledger, timing, 40, 190.0, lane=1)
    weigh(ledger, timing, 41, 205.0)
    decisions = step(ledger).decide(
        [Fused(0, 40), Fused(1, 40), Fused(0, 41, defect_count=1, defect_area_cm2=4.0)],
        lot_id=7, frame_t_s=4.10, now_s=4.12, position_now_cups=41.2, outlet_full=(),
    )
    assert [d.write for d in decisions] == [OutletDecision(0, 40, 1), OutletDecision(1, 40, 1), OutletDecision(0, 41, 4)]
    assert [d.record.measurement.weight_g for d in decisions] == [204.0, 190.0, 205.0]
    assert [d.record.grade.quality_class for d in decisions] == ["extra", "extra", "cull"]
    assert all(d.record.lot_id == 7 and not d.record.late for d in decisions)
    assert decisions[0].record.decision_latency_ms == pytest.approx(20.0)
    assert decisions[0].deadline_position_cups == 40 + FIRST_OUTLET - 1.0


def test_no_weight_goes_to_recheck_with_its_cause() -> None:
    ledger = WeightLedger(1, OFFSET)
    decisions = step(ledger).decide(
        [Fused(0, 40)], lot_id=1, frame_t_s=4.1, now_s=4.1, position_now_cups=41.0, outlet_full=()
    )
    (d,) = decisions
    assert d.record.grade.quality_class == "recheck" and d.write == OutletDecision(0, 40, 3)
    assert d.weigh_cause == "timeout"


def test_a_decision_past_its_deadline_is_late_and_not_written() -> None:
    timing, ledger = belt(5.0), WeightLedger(1, OFFSET)
    weigh(ledger, timing, 30, 200.0)
    (d,) = step(ledger).decide(
        [Fused(0, 30)], lot_id=1, frame_t_s=3.5, now_s=3.6, position_now_cups=30 + FIRST_OUTLET - 1.0, outlet_full=()
    )
    assert d.record.late and d.record.outlet == 0 and d.write is None


def test_no_belt_position_means_late() -> None:
    ledger = WeightLedger(1, OFFSET)
    (d,) = step(ledger).decide([Fused(0, 30)], lot_id=1, frame_t_s=0, now_s=0, position_now_cups=None, outlet_full=())
    assert d.record.late and d.write is None


def test_in_time_is_checked_again_after_the_commit() -> None:
    timing, ledger = belt(5.0), WeightLedger(1, OFFSET)
    weigh(ledger, timing, 40, 204.0)
    (d,) = step(ledger).decide(
        [Fused(0, 40)], lot_id=1, frame_t_s=4.1, now_s=4.1, position_now_cups=41.0, outlet_full=()
    )
    assert DecisionStep.in_time(d, 44.9)
    assert not DecisionStep.in_time(d, 45.0)  # the commit took until the cup was 5 past inspection
    assert not DecisionStep.in_time(d, None)


def test_a_full_outlet_is_skipped() -> None:
    timing, ledger = belt(5.0), WeightLedger(1, OFFSET)
    weigh(ledger, timing, 40, 204.0)
    (d,) = step(ledger).decide(
        [Fused(0, 40)], lot_id=1, frame_t_s=4.1, now_s=4.1, position_now_cups=41.0, outlet_full=(True,)
    )
    assert d.write == OutletDecision(0, 40, 0)  # no other outlet takes extra: recirculate, decided


def test_cup_indices_meet_the_plc_on_its_32_bit_scale() -> None:
    ledger = WeightLedger(1, OFFSET)
    big = 2**32 + 5
    (d,) = step(ledger).decide(
        [Fused(0, big)], lot_id=1, frame_t_s=0, now_s=0, position_now_cups=big + 0.6, outlet_full=()
    )
    assert d.record.cup_index == 5 and d.write is not None and d.write.cup_index == 5
