"""The cold-room model against its closed-form solution, on a fake clock."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from simulators.coldroom import (
    ColdroomModel,
    ColdroomSimSettings,
    RoomSettings,
    ScenarioEvent,
    demo_settings,
    tenths,
)


class FakeClock:
    def __init__(self) -> None:
        self.t_s = 5000.0

    def __call__(self) -> float:
        return self.t_s


def room(**kw: object) -> RoomSettings:
    return RoomSettings.model_validate({"name": "r", "unit_id": 1, **kw})


def test_room_at_setpoint_stays_there() -> None:
    clock = FakeClock()
    model = ColdroomModel(ColdroomSimSettings(rooms=[room(setpoint_celsius=1.5)]), clock)
    clock.t_s += 3600
    assert model.room(1).temperature_celsius == pytest.approx(1.5)
    assert model.room(1).humidity_percent == pytest.approx(90.0)


def test_pull_down_follows_the_exponential() -> None:
    clock = FakeClock()
    settings = ColdroomSimSettings(
        rooms=[
            room(
                setpoint_celsius=0.0,
                initial_celsius=20.0,
                ambient_celsius=20.0,
                cooling_time_constant_s=1000.0,
                leak_time_constant_s=4000.0,
            )
        ]
    )
    model = ColdroomModel(settings, clock)
    clock.t_s += 700
    # settles at the setpoint with rate k_cool + k_leak
    expected = 20.0 * math.exp(-(1 / 1000 + 1 / 4000) * 700)
    assert model.room(1).temperature_celsius == pytest.approx(expected)


def test_scripted_compressor_failure_warms_the_room_until_repaired() -> None:
    clock = FakeClock()
    settings = ColdroomSimSettings(
        rooms=[room(setpoint_celsius=2.0, ambient_celsius=26.0, leak_time_constant_s=3600.0)],
        events=[
            ScenarioEvent(at_s=100, unit_id=1, action="compressor_fail"),
            ScenarioEvent(at_s=1900, unit_id=1, action="compressor_restore"),
        ],
    )
    model = ColdroomModel(settings, clock)
    seen = []
    for _ in range(40):
        clock.t_s += 50
        seen.append(model.room(1).temperature_celsius)
    # 2000 s in: failed from 100 s to 1900 s (1800 s toward 26 degC with tau 3600 s), then 100 s of cooling
    at_repair = 26.0 + (2.0 - 26.0) * math.exp(-1800 / 3600)
    assert max(seen) == pytest.approx(at_repair, abs=0.05)
    assert all(b > a for a, b in zip(seen[1:37], seen[2:38], strict=True))  # rising while failed
    assert seen[-1] < max(seen)  # cooling again after the repair
    assert not model.rooms[1].door_open and model.rooms[1].compressor_ok


def test_door_opening_raises_temperature_and_lowers_humidity() -> None:
    clock = FakeClock()
    settings = ColdroomSimSettings(
        rooms=[room()],
        events=[
            ScenarioEvent(at_s=10, unit_id=1, action="door_open"),
            ScenarioEvent(at_s=310, unit_id=1, action="door_close"),
        ],
    )
    model = ColdroomModel(settings, clock)
    clock.t_s += 310
    r = model.room(1)
    assert r.temperature_celsius > 2.5 and r.humidity_percent < 88.0
    clock.t_s += 20000
    assert model.room(1).temperature_celsius == pytest.approx(2.0, abs=0.01)


def test_events_are_applied_at_their_time_even_in_one_big_step() -> None:
    fine, coarse = FakeClock(), FakeClock()
    s = demo_settings(2)
    a, b = ColdroomModel(s, fine), ColdroomModel(s, coarse)
    for _ in range(300):
        fine.t_s += 1
        a.advance()
    coarse.t_s += 300
    b.advance()
    for unit in (1, 2):
        assert a.rooms[unit].temperature_celsius == pytest.approx(b.rooms[unit].temperature_celsius)


def test_register_words() -> None:
    assert tenths(-20.5) == 0xFF33
    assert tenths(30.5) == 0x0131
    assert tenths(-4.5) == 65491


def test_settings_validation() -> None:
    with pytest.raises(ValidationError):
        ColdroomSimSettings(rooms=[room(), room()])
    with pytest.raises(ValidationError):
        ColdroomSimSettings(
            rooms=[room()], events=[ScenarioEvent(at_s=1, unit_id=9, action="door_open")]
        )
