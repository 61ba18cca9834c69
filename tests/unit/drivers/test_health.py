"""The shared device-health primitive: a fault logged once at its start and once at its end;
reconnect backoff on a fake clock."""

from __future__ import annotations

import logging

import pytest

from drivers.health import Backoff, FaultState


class FakeClock:
    def __init__(self) -> None:
        self.t_s = 100.0

    def __call__(self) -> float:
        return self.t_s


def test_a_fault_is_logged_once_when_it_starts_and_once_when_it_clears(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    caplog.set_level(logging.DEBUG, logger="drivers.health")
    health = FaultState("lane-1", clock=clock, consequence="its lane's fruit go to recheck")
    assert health.state == "unknown"
    health.ok()
    for _ in range(5):
        clock.t_s += 1.0
        health.fault(TimeoutError("no answer"))
    clock.t_s += 1.0
    health.ok()
    health.ok()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(warnings) == 1 and "its lane's fruit go to recheck" in warnings[0].getMessage()
    assert len(infos) == 1 and "after 5 failed attempts in 5.0 s" in infos[0].getMessage()
    snap = health.snapshot()
    assert (snap.state, snap.faults, snap.errors, snap.since_s) == ("up", 1, 5, 106.0)


def test_errors_that_do_not_fault_the_device_are_counted_quietly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="drivers.health")
    health = FaultState("lane-1", clock=FakeClock())
    health.ok()
    health.error("one corrupt frame")
    assert health.state == "up" and health.errors == 1 and health.last_error == "one corrupt frame"
    assert not caplog.records


def test_backoff_doubles_to_its_cap_and_resets_on_success() -> None:
    clock = FakeClock()
    backoff = Backoff(0.1, 0.5, clock=clock)
    assert backoff.ready()
    waits = []
    for _ in range(5):
        backoff.failed()
        waits.append(round(backoff.wait_s(), 6))
        assert not backoff.ready()
        clock.t_s += backoff.wait_s()
        assert backoff.ready()
    assert waits == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.succeeded()
    backoff.failed()
    assert backoff.wait_s() == pytest.approx(0.1)


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(0.0, 1.0)
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0)
