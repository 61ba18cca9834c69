"""The alarm engine (ISA-18.2 states) on a fake clock: delays, deadband, acknowledge, shelve,
suppression, out of service, journal and flood counting."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

import pytest

from grading.alarms import AlarmDefinition, AlarmEngine, AlarmError, AlarmState, Transition

T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.t)


def _engine(clock: FakeClock, journal: list[Transition], **definition: object) -> AlarmEngine:
    high = AlarmDefinition(
        "room.temperature_high", "temperature_high", "room", "high", "high", 3.0, 0.5, 60.0, 30.0,
    )
    if definition:
        high = dataclasses.replace(high, **definition)  # type: ignore[arg-type]
    return AlarmEngine([high], clock=clock, wall_clock=clock.wall, journal=journal.append)


def test_raises_after_on_delay_and_clears_after_off_delay_through_the_states() -> None:
    clock, journal = FakeClock(), []
    engine = _engine(clock, journal)
    engine.report_value("room.temperature_high", 3.5)
    clock.t += 59
    engine.report_value("room.temperature_high", 3.6)
    assert engine.state("room.temperature_high") == AlarmState.NORMAL  # on-delay not yet over
    clock.t += 1
    engine.tick()
    assert engine.state("room.temperature_high") == AlarmState.UNACKNOWLEDGED
    engine.acknowledge("room.temperature_high", "张三")
    assert engine.state("room.temperature_high") == AlarmState.ACKNOWLEDGED
    engine.report_value("room.temperature_high", 2.4)  # below setpoint - deadband
    clock.t += 29
    engine.tick()
    assert engine.state("room.temperature_high") == AlarmState.ACKNOWLEDGED  # off-delay not over
    clock.t += 1
    engine.tick()
    assert engine.state("room.temperature_high") == AlarmState.NORMAL
    assert [(t.from_state, t.to_state, t.cause, t.user) for t in journal] == [
        ("normal", "unacknowledged", "raised", None),
        ("unacknowledged", "acknowledged", "acknowledged", "张三"),
        ("acknowledged", "normal", "cleared", None),
    ]
    assert journal[0].at == T0 + timedelta(seconds=1060)


def test_returned_unacknowledged_then_acknowledge_goes_normal() -> None:
    clock, journal = FakeClock(), []
    engine = _engine(clock, journal, on_delay_s=0.0, off_delay_s=0.0)
    engine.report_value("room.temperature_high", 4.0)
    engine.report_value("room.temperature_high", 1.0)
    assert engine.state("room.temperature_high") == AlarmState.RETURNED_UNACKNOWLEDGED
    engine.acknowledge("room.temperature_high", "op")
    assert engine.state("room.temperature_high") == AlarmState.NORMAL
    with pytest.raises(AlarmError):
        engine.acknowledge("room.temperature_high", "op")


def test_noise_inside_the_deadband_never_flaps() -> None:
    """Thousands of noisy samples around the setpoint, all within the deadband once raised,
    with no delays at all: one raise, no clear, until the value really drops."""
    clock, journal = FakeClock(), []
    engine = _engine(clock, journal, on_delay_s=0.0, off_delay_s=0.0, deadband=0.5)
    rng = random.Random(7)
    engine.report_value("room.temperature_high", 3.1)
    samples = 0
    for _ in range(5000):
        clock.t += 1.0
        value = 3.0 + rng.uniform(-0.49, 0.49)  # crosses the setpoint constantly, inside the deadband
        engine.report_value("room.temperature_high", value)
        samples += value < 3.0
    assert samples > 2000  # the noise really was below the setpoint half the time
    assert [t.cause for t in journal] == ["raised"]
    clock.t += 1
    engine.report_value("room.temperature_high", 2.4)
    assert [t.cause for t in journal] == ["raised", "cleared"]


def test_noise_across_the_setpoint_is_held_off_by_the_delays() -> None:
    """Without a deadband, noise straddling the setpoint is held off by the on-delay."""
    clock, journal = FakeClock(), []
    engine = _engine(clock, journal, deadband=0.0, on_delay_s=60.0)
    rng = random.Random(3)
    for _ in range(5000):
        clock.t += 1.0
        engine.report_value("room.temperature_high", 3.0 + rng.gauss(0.0, 0.3))
        engine.tick()
    # a run of 60 samples all above the setpoint has probability 2**-60 per start
    assert journal == []


def test_shelve_hides_until_expiry_then_shows_what_the_condition_calls_for() -> None:
    clock, journal = FakeClock(), []
    engine = _engine(clock, journal, on_delay_s=0.0)
    engine.report_value("room.temperature_high", 5.0)
    engine.shelve("room.temperature_high", "张三", "defrost cycle", 600.0)
    status = engine.status("room.temperature_high")
    assert status.state == AlarmState.SHELVED and status.shelve_reason == "defrost cycle"
    assert status.shelved_until == T0 + timedelta(seconds=1600)
    clock.t += 599
    engine.tick()
    assert engine.state("room.temperature_high") == AlarmState.SHELVED
    clock.t += 1
    engine.tick()
    assert engine.state("room.temperature_high") == AlarmState.UNACKNOWLEDGED
    assert journal[-1].cause == "shelf_expired"
    with pytest.raises(AlarmError):
        engine.shelve("room.temperature_high", "张三", " ", 60)


def test_suppressed_by_design_and_out_of_service() -> None:
    clock, journal = FakeClock(), []
    door = AlarmDefinition("room.door_open", "door_open", "room", "medium", "state", on_delay_s=300.0)
    engine = AlarmEngine([door], clock=clock, wall_clock=clock.wall, journal=journal.append)
    engine.suppress("room.door_open", True, "loading")
    engine.report("room.door_open", True, 1.0)
    clock.t += 900
    engine.tick()
    assert engine.state("room.door_open") == AlarmState.SUPPRESSED  # held open for loading
    engine.report("room.door_open", False, 0.0)
    engine.suppress("room.door_open", False)
    assert engine.state("room.door_open") == AlarmState.NORMAL
    engine.set_out_of_service("room.door_open", True, "tech", "contact replaced")
    engine.report("room.door_open", True)
    clock.t += 400
    engine.tick()
    assert engine.state("room.door_open") == AlarmState.OUT_OF_SERVICE
    engine.set_out_of_service("room.door_open", False, "tech")
    assert engine.state("room.door_open") == AlarmState.UNACKNOWLEDGED
    assert [t.cause for t in journal] == ["suppressed", "unsuppressed", "out_of_service", "returned_to_service"]


def test_floods_are_counted_over_ten_alarms_in_ten_minutes() -> None:
    clock = FakeClock()
    engine = AlarmEngine(
        [AlarmDefinition(f"a{i}", "drift", "line-1", "low") for i in range(12)], clock=clock, wall_clock=clock.wall,
    )
    for i in range(11):
        clock.t += 30
        engine.report(f"a{i}", True, 1.0)
    assert engine.raised_total == 11 and engine.floods_total == 1 and engine.in_flood
    clock.t += 700
    assert engine.flood_rate() == 0 and not engine.in_flood
    assert [t.to_state for t in engine.drain()] == ["unacknowledged"] * 11
