"""SensorPoller health: up/stale by the injected clock, faults logged once, typed errors."""

from __future__ import annotations

import asyncio
import logging

import pytest

from drivers.modbus.errors import ModbusTimeout
from drivers.modbus.sensor import ModbusClimateSensor, SensorPoller
from drivers.modbus.settings import ModbusSensorSettings, ModbusTcpTransport


class FakeClock:
    def __init__(self) -> None:
        self.t_s = 0.0

    def __call__(self) -> float:
        return self.t_s


class ScriptedBus:
    """Stands in for ModbusBus: answers from a register dict, or raises when told to."""

    def __init__(self) -> None:
        self.registers = {("input", 1): 0xFFD3, ("input", 2): 0x0320}
        self.fail = False
        self.requests: list[tuple[int, str, int, int]] = []

    async def read(
        self, device: str, device_id: int, table: str, address: int, count: int
    ) -> list[int]:
        self.requests.append((device_id, table, address, count))
        if self.fail:
            raise ModbusTimeout(device, device_id, table, address, "no answer")
        return [self.registers[(table, a)] for a in range(address, address + count)]

    async def connect(self, device: str = "", device_id: int = 0) -> None:
        return None


def make(
    clock: FakeClock, bus: ScriptedBus, interval_s: float = 1.0
) -> tuple[SensorPoller, ModbusClimateSensor]:
    settings = ModbusSensorSettings(
        name="room-1",
        transport=ModbusTcpTransport(kind="tcp", host="127.0.0.1", port=1502),
        device_id=3,
        profile="xy-md02",
        poll_interval_s=interval_s,
    )
    sensor = ModbusClimateSensor(settings, bus, clock=clock)  # type: ignore[arg-type]
    return SensorPoller([sensor], clock=clock), sensor


def test_reading_decodes_the_profile_in_one_request() -> None:
    clock, bus = FakeClock(), ScriptedBus()
    _, sensor = make(clock, bus)
    reading = asyncio.run(sensor.read())
    assert reading.temperature_celsius == pytest.approx(-4.5)
    assert reading.relative_humidity_ratio == pytest.approx(0.8)
    assert bus.requests == [(3, "input", 1, 2)]


def test_state_turns_stale_on_a_failed_poll_and_by_age(caplog: pytest.LogCaptureFixture) -> None:
    clock, bus = FakeClock(), ScriptedBus()
    poller, sensor = make(clock, bus, interval_s=1.0)
    assert poller.state("room-1") == "stale"  # never read
    asyncio.run(poller.poll_once(sensor))
    assert poller.state("room-1") == "up"
    clock.t_s = 2.0  # exactly two intervals old: still fresh
    assert poller.state("room-1") == "up"
    clock.t_s = 2.01
    assert poller.state("room-1") == "stale"
    asyncio.run(poller.poll_once(sensor))
    assert poller.state("room-1") == "up"

    caplog.set_level(logging.INFO, logger="drivers.modbus.sensor")
    bus.fail = True
    for _ in range(6):
        clock.t_s += 1.0
        h = asyncio.run(poller.poll_once(sensor))
        assert poller.state("room-1") == "stale"
    assert h.consecutive_failures == 6 and isinstance(h.last_error, ModbusTimeout)
    assert "unit 3 input @1" in str(h.last_error)
    faults = [r for r in caplog.records if "fault" in r.getMessage()]
    assert len(faults) == 1
    # the last good reading is kept for display, marked stale
    assert h.last_reading is not None and h.last_reading.temperature_celsius == pytest.approx(-4.5)

    bus.fail = False
    asyncio.run(poller.poll_once(sensor))
    assert poller.state("room-1") == "up"
    recovered = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(recovered) == 1 and "after 6 failed attempts" in recovered[0].getMessage()


def test_poll_loop_runs_at_its_interval_and_stops() -> None:
    clock, bus = FakeClock(), ScriptedBus()
    sleeps: list[float] = []

    async def fake_sleep(dt: float) -> None:
        sleeps.append(dt)
        clock.t_s += dt
        await asyncio.sleep(0)

    async def run() -> None:
        settings = ModbusSensorSettings(
            name="r",
            transport=ModbusTcpTransport(kind="tcp", host="h"),
            profile="xy-md02",
            poll_interval_s=5.0,
        )
        sensor = ModbusClimateSensor(settings, bus, clock=clock)  # type: ignore[arg-type]
        poller = SensorPoller([sensor], clock=clock, sleep=fake_sleep)
        poller.start()
        while len(bus.requests) < 4:
            await asyncio.sleep(0)
        await poller.stop()

    asyncio.run(run())
    assert sleeps[:3] == [5.0, 5.0, 5.0]
