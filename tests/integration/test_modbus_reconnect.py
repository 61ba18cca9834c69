"""A sensor's device killed mid-run: stale quickly, fault logged once, reconnect after return.

The simulator is stopped (its listener and every connection closed) and restarted on the
same port. Waits are conditions with deadlines; the deadlines are the requirement's bounds.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from drivers.modbus.client import BusRegistry
from drivers.modbus.sensor import ModbusClimateSensor, SensorPoller
from drivers.modbus.settings import ModbusSensorSettings, ModbusTcpTransport
from simulators.coldroom import ColdroomModel, ColdroomServer, demo_settings

POLL_INTERVAL_S = 0.2


async def wait_for(condition, deadline_s: float, what: str) -> float:  # type: ignore[no-untyped-def]
    """Wait until ``condition()`` holds; return the time it took. Fails after ``deadline_s``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > deadline_s:
            pytest.fail(f"{what}: not within {deadline_s} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def test_killed_device_goes_stale_logs_once_and_reconnects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="drivers.modbus.sensor")

    async def body() -> None:
        model = ColdroomModel(demo_settings(2), time.monotonic)
        server = ColdroomServer(model)
        port = await server.start_tcp()
        buses = BusRegistry()
        transport = ModbusTcpTransport(kind="tcp", host="127.0.0.1", port=port)
        sensors = [
            ModbusClimateSensor.create(
                ModbusSensorSettings(
                    name=f"room-{u}",
                    transport=transport,
                    device_id=u,
                    profile="xy-md02",
                    poll_interval_s=POLL_INTERVAL_S,
                    timeout_s=0.1,
                ),
                buses,
            )
            for u in (1, 2)
        ]
        poller = SensorPoller(sensors)
        poller.start()
        try:
            await wait_for(
                lambda: all(poller.state(s.name) == "up" for s in sensors), 5, "first readings"
            )

            await server.stop()  # the device dies
            await wait_for(
                lambda: poller.state("room-1") == "stale", 2 * POLL_INTERVAL_S + 1.0, "stale"
            )
            # keep failing for several polls: still one fault line per device
            await wait_for(
                lambda: poller.health["room-1"].consecutive_failures >= 5, 10, "repeated failures"
            )
            faults = [r for r in caplog.records if "fault" in r.getMessage()]
            assert sorted(r.getMessage().split()[1].rstrip(":") for r in faults) == ["room-1", "room-2"]
            assert poller.health["room-1"].last_error is not None
            assert "room-1: unit 1 input @1" in str(poller.health["room-1"].last_error)

            await server.start_tcp(port=port)  # the device returns on the same port
            await wait_for(
                lambda: all(poller.state(s.name) == "up" for s in sensors), 5.0, "reconnect"
            )
            recovered = [r for r in caplog.records if "recovered" in r.getMessage()]
            assert len(recovered) == 2
            assert buses.buses()[0].connects >= 2
        finally:
            await poller.stop()
            buses.close()
            await server.stop()

    asyncio.run(asyncio.wait_for(body(), 60))
