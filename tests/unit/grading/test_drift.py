"""Drift detector on hand-made records: raise, hysteresis, clear, lot start, emit, exclusions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from grading.alarms import AlarmEngine, AlarmState
from grading.drift import DriftAlarm, DriftAlarms, DriftDetector, DriftSettings, spheroid_volume_cm3
from grading.fruit_events import FruitGraded
from grading.grader import GradeResult
from grading.measurement import FruitMeasurement
from grading.records import FruitRecord

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SETTINGS = DriftSettings(lane_window_fruit=20, lane_min_fruit=10, lot_baseline_fruit=40, lot_window_fruit=40)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def record(
    lane: int,
    cup: int,
    *,
    red: float = 0.5,
    green: float = 0.45,
    defects: int = 0,
    weight_g: float | None = None,
    grade: str = "extra",
    lot_id: int = 1,
    flags: frozenset[str] = frozenset(),
) -> FruitRecord:
    volume = spheroid_volume_cm3(75.0, 72.0)
    measurement = FruitMeasurement(
        weight_g=0.8 * volume if weight_g is None else weight_g,
        diameter_major_mm=75.0,
        diameter_minor_mm=72.0,
        area_cm2=42.0,
        colour_fractions={"red": red, "green": green},
        defect_count=defects,
        defect_area_cm2=0.3 * defects,
        flags=flags,
    )
    return FruitRecord(
        uid=f"{lot_id}-{lane}-{cup}",
        lot_id=lot_id,
        lane=lane,
        cup_index=cup,
        graded_at=T0 + timedelta(seconds=cup / 10),
        measurement=measurement,
        views=4,
        grade=GradeResult(grade, "70-75", ()),
        outlet=1,
        late=False,
        decision_latency_ms=5.0,
    )


def line(cups: range, lanes: int = 4, **per_lane: dict[str, object]) -> Iterator[FruitRecord]:
    """Records cup by cup across lanes; ``per_lane["lane2"] = {...}`` overrides one lane's fields."""
    for cup in cups:
        for lane in range(lanes):
            yield record(lane, cup, **per_lane.get(f"lane{lane}", {}))  # type: ignore[arg-type]


def lane_events(events: list[DriftAlarm], measure: str) -> list[DriftAlarm]:
    return [e for e in events if e.kind == "lane" and e.measure == measure]


def test_a_clean_line_raises_nothing() -> None:
    detector = DriftDetector(SETTINGS, FakeClock())
    assert detector.observe_all(line(range(200))) == []
    assert detector.active() == []


def test_a_lane_whose_colour_shifts_is_raised_then_clears_by_itself() -> None:
    clock = FakeClock()
    emitted: list[DriftAlarm] = []
    detector = DriftDetector(SETTINGS, clock, emitted.append)
    detector.observe_all(line(range(30)))
    clock.now = T0 + timedelta(minutes=5)
    # Lane 2's view darkens: a third of its skin falls out of every colour class.
    dark = {"lane2": {"red": 0.3, "green": 0.35}}
    events = detector.observe_all(line(range(30, 60), **dark))
    seen = lane_events(events, "colour_seen")
    assert [(e.raised, e.lane) for e in seen] == [(True, 2)]
    alarm = seen[0]
    assert alarm.band == SETTINGS.colour_seen_band
    assert alarm.value < alarm.reference and alarm.deviation < -alarm.band
    assert alarm.at == clock.now and alarm.lot_id == 1
    assert alarm.reference == pytest.approx(0.95)
    # No other lane is blamed: the reference is the median of the others.
    assert {e.lane for e in events} == {2}
    assert emitted == events
    assert alarm in detector.active()
    # Back to normal: it clears by itself once the window is clean again.
    events = detector.observe_all(line(range(60, 100)))
    cleared = lane_events(events, "colour_seen")
    assert [(e.raised, e.lane) for e in cleared] == [(False, 2)]
    assert abs(cleared[0].deviation) <= SETTINGS.colour_seen_band * SETTINGS.clear_fraction
    assert detector.active() == []


def test_hysteresis_keeps_the_alarm_until_well_inside_the_band() -> None:
    detector = DriftDetector(SETTINGS, FakeClock())
    detector.observe_all(line(range(30)))
    detector.observe_all(line(range(30, 60), lane2={"red": 0.3, "green": 0.35}))  # seen 0.65: raised
    # Now 0.10 below the others: inside the band (0.15) but not within 0.6 of it (0.09).
    events = detector.observe_all(line(range(60, 120), lane2={"red": 0.45, "green": 0.40}))
    assert lane_events(events, "colour_seen") == []
    assert [a.measure for a in detector.active() if a.lane == 2] == ["colour_seen"]


def test_a_drifting_scale_shows_as_weight_against_size() -> None:
    detector = DriftDetector(SETTINGS, FakeClock())
    volume = spheroid_volume_cm3(75.0, 72.0)
    detector.observe_all(line(range(30)))
    events = detector.observe_all(line(range(30, 60), lane1={"weight_g": 0.8 * volume * 1.12}))
    weight = lane_events(events, "weight_per_volume")
    assert [(e.raised, e.lane) for e in weight] == [(True, 1)]
    assert weight[0].deviation == pytest.approx(0.12, abs=0.04)
    assert weight[0].band == SETTINGS.weight_ratio_band


def test_a_missing_weight_and_a_double_fruit_do_not_count_as_measurements() -> None:
    detector = DriftDetector(SETTINGS, FakeClock())
    detector.observe_all(line(range(30)))
    doubles = {"lane3": {"red": 0.1, "green": 0.1, "weight_g": 900.0, "flags": frozenset({"double"}), "grade": "recheck"}}
    events = detector.observe_all(line(range(30, 33), **doubles))
    assert [e.measure for e in events] == []  # three doubles in a window of 20: grade share 0.15 < 0.30
    events = detector.observe_all(line(range(33, 60), lane0={"weight_g": None}))
    assert lane_events(events, "weight_per_volume") == []


def test_lane_grade_mix() -> None:
    detector = DriftDetector(SETTINGS, FakeClock())
    detector.observe_all(line(range(30)))
    events = detector.observe_all(line(range(30, 60), lane3={"grade": "cull"}))
    raised = {(e.measure, e.lane) for e in events if e.raised}
    assert ("grade.cull", 3) in raised and ("grade.extra", 3) in raised


def test_lot_mix_against_its_own_start_and_a_new_lot_starts_afresh() -> None:
    detector = DriftDetector(SETTINGS, FakeClock())
    # 40 fruit of baseline (all extra), then the whole line turns to class_i: lanes agree, the lot moved.
    events = detector.observe_all(line(range(10)))
    events += detector.observe_all(line(range(10, 30), **{f"lane{n}": {"grade": "class_i"} for n in range(4)}))
    lot = [e for e in events if e.kind == "lot_mix"]
    assert {(e.measure, e.raised) for e in lot} == {("grade.extra", True), ("grade.class_i", True)}
    assert all(e.lane is None and e.band == SETTINGS.lot_grade_band for e in lot)
    assert not [e for e in events if e.kind == "lane"]
    # A new lot: the old lot's conditions end, and the new lot is its own reference.
    events = detector.observe_all(record(n % 4, 30 + n // 4, lot_id=2, grade="class_i") for n in range(8))
    assert {(e.measure, e.raised, e.lot_id) for e in events} == {("grade.extra", False, 1), ("grade.class_i", False, 1)}
    assert [a for a in detector.active() if a.kind == "lot_mix"] == []


def test_lot_mix_clears_when_the_mix_returns() -> None:
    detector = DriftDetector(SETTINGS, FakeClock())
    detector.observe_all(line(range(10)))
    shifted = {f"lane{n}": {"grade": "class_i"} for n in range(4)}
    detector.observe_all(line(range(10, 30), **shifted))
    events = detector.observe_all(line(range(30, 60)))
    assert {(e.measure, e.raised) for e in events if e.kind == "lot_mix"} == {("grade.extra", False), ("grade.class_i", False)}


def test_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="lane_min_fruit"):
        DriftSettings(lane_window_fruit=20, lane_min_fruit=30)
    with pytest.raises(ValidationError):
        DriftSettings(colour_band=0.0)
    with pytest.raises(ValidationError):
        DriftSettings.model_validate({"colour_bnad": 0.1})


def test_describe_names_lane_measure_and_band() -> None:
    detector = DriftDetector(SETTINGS, FakeClock())
    detector.observe_all(line(range(30)))
    events = detector.observe_all(line(range(30, 60), lane2={"red": 0.3, "green": 0.35}))
    text = lane_events(events, "colour_seen")[0].describe()
    assert text.startswith("drift raised: lane 2 colour_seen") and "band 0.15" in text


def test_drift_goes_through_the_alarm_engine_raised_acknowledged_and_back_to_normal() -> None:
    clock = FakeClock()
    seconds = [0.0]
    engine = AlarmEngine(clock=lambda: seconds[0], wall_clock=clock)
    drift = DriftAlarms(DriftDetector(SETTINGS, clock), engine, line="line-1")
    bus_seq = iter(range(1, 10**6))

    def feed(records: Iterator[FruitRecord]) -> None:
        for r in records:
            drift.on_fruit(FruitGraded(next(bus_seq), r, None))

    feed(line(range(30)))
    assert engine.alarms() == []  # nothing defined until something drifts
    feed(line(range(30, 60), lane2={"red": 0.3, "green": 0.35}))
    [status] = [s for s in engine.alarms() if s.definition.kind == "drift" and "lane-2" in s.alarm_id]
    assert status.state is AlarmState.UNACKNOWLEDGED and status.definition.source == "line-1"
    assert status.alarm_id == "drift:lane:lane-2:colour_seen"
    engine.acknowledge(status.alarm_id, "zhang-san")
    assert engine.status(status.alarm_id).state is AlarmState.ACKNOWLEDGED
    feed(line(range(60, 100)))  # the detector clears it: the engine returns it to normal
    assert engine.status(status.alarm_id).state is AlarmState.NORMAL
