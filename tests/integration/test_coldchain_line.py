"""The compressor-failure scenario end to end: the cold-room simulator over Modbus TCP (its
clock 60 times faster than the line's, so the scenario plays in seconds), the line's real
Modbus driver and poller, the cold chain, the alarm engine, /metrics and the alarm API.

The high-temperature alarm raises after its on-delay, within one poll of it (the poller's
readings are the evidence: the alarm raises no earlier than on-delay after the first reading
over the limit, and no later than one poll after that); it shows on /metrics and in the alarm
list, is acknowledged through the API (audit-logged), clears after its off-delay once the
compressor is repaired, and every transition is in the journal."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.compose import open_line
from api.config import parse_config
from drivers.interfaces import SensorReading
from grading.access import Role
from grading.alarm_journal import journal_page
from simulators.coldroom import ColdroomModel, ColdroomServer, ColdroomSimSettings
from tests.integration.test_line_devices import _already_open

pytestmark = pytest.mark.slow

SPEED = 60.0  # simulated seconds per real second
POLL_S, ON_DELAY_S, OFF_DELAY_S = 0.25, 2.0, 2.0
HIGH_C, DEADBAND_C = 3.0, 0.3
ALARM = "room-2.temperature_high"


def test_compressor_failure_alarm_through_modbus_metrics_and_api(tmp_path: Path, until) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        t0 = time.monotonic()
        sim = ColdroomModel(ColdroomSimSettings.model_validate({
            "rooms": [{"name": "room-1", "unit_id": 1}, {"name": "room-2", "unit_id": 2}],
            "events": [{"at_s": 0, "unit_id": 2, "action": "compressor_fail"},
                       {"at_s": 600, "unit_id": 2, "action": "compressor_restore"}],
        }), clock=lambda: t0 + (time.monotonic() - t0) * SPEED)
        server = ColdroomServer(sim)
        port = await server.start_tcp()
        config = parse_config({
            "line": {"lanes": 1}, "vision": {"workers": 1}, "camera": {"geometry": {"height_px": 160, "fps": 5.0}},
            "sensors": [
                {"name": f"room-{i}", "transport": {"kind": "tcp", "host": "127.0.0.1", "port": port}, "device_id": i,
                 "profile": "xy-md02", "poll_interval_s": POLL_S}
                for i in (1, 2)
            ],
            "coldchain": {"rooms": [
                {"name": f"room-{i}", "setpoint_c": 2.0, "temperature_low_c": 0.0, "temperature_high_c": HIGH_C,
                 "alarms": {"high_on_delay_s": ON_DELAY_S, "off_delay_s": OFF_DELAY_S, "temperature_deadband_c": DEADBAND_C}}
                for i in (1, 2)
            ]},
            "database": {"url": f"sqlite:///{tmp_path}/line.db"},
        })
        try:
            async with open_line(config, start=False) as handle:
                readings: list[tuple[float, float]] = []  # (line clock, temperature) of room-2, as polled
                monitor = handle.coldchain
                seen = monitor.on_reading

                def record(device: str, reading: SensorReading) -> None:
                    if device == "room-2" and reading.temperature_celsius is not None:
                        readings.append((reading.t_s, reading.temperature_celsius))
                    seen(device, reading)

                handle.sensors._on_reading = record  # noqa: SLF001  (see what the poller hands on)
                app = create_app(lambda: _already_open(handle))
                transport = httpx.ASGITransport(app=app)
                async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://l") as client:
                    access = app.state.auth.access
                    reader = {"Authorization": f"Bearer {access.create_token('grafana', Role.integrator, 'test')[0]}"}
                    operator = {"Authorization": f"Bearer {access.create_token('shift', Role.operator, 'test')[0]}"}
                    raised_at: list[float] = []

                    def raised() -> bool:
                        if not raised_at and handle.alarms.state(ALARM) == "unacknowledged":
                            raised_at.append(time.monotonic())
                        return bool(raised_at)

                    await until(raised, 30, "the high-temperature alarm")
                    first_over = next(t for t, v in readings if v > HIGH_C)
                    assert first_over + ON_DELAY_S <= raised_at[0] <= first_over + ON_DELAY_S + POLL_S + 0.3  # a tick's slack
                    metrics = (await client.get("/metrics")).text
                    assert f'gradeline_alarm_active{{alarm="{ALARM}",priority="high"}} 1.0' in metrics
                    assert 'gradeline_alarm_active{alarm="room-1.temperature_high",priority="high"} 0.0' in metrics
                    listed = (await client.get("/api/v1/alarms", params={"shown": True}, headers=reader)).json()["items"]
                    assert [a["alarm"] for a in listed] == [ALARM] and listed[0]["value"] > HIGH_C
                    ack = await client.post(f"/api/v1/alarms/{ALARM}/acknowledge", headers=operator)
                    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"

                    await until(lambda: handle.alarms.state(ALARM) == "normal", 60, "the alarm to clear")
                    cleared_at = time.monotonic()
                    first_back = next(t for t, v in readings if t > first_over and v < HIGH_C - DEADBAND_C)
                    assert first_back + OFF_DELAY_S <= cleared_at <= first_back + OFF_DELAY_S + POLL_S + 0.5
                    metrics = (await client.get("/metrics")).text
                    assert f'gradeline_alarm_active{{alarm="{ALARM}",priority="high"}} 0.0' in metrics
                    audit = (await client.get("/api/v1/audit", headers={
                        "Authorization": f"Bearer {access.create_token('boss', Role.supervisor, 'test')[0]}"})).json()["items"]
                    assert any(e["action"] == "alarm.acknowledge" and e["actor"] == "shift" for e in audit)
                await handle.coldchain_service.flush()
                journal = [(r["cause"], r["user_name"]) for r in journal_page(handle.engine, 50, alarm_id=ALARM)]
                assert journal == [("cleared", None), ("acknowledged", "shift"), ("raised", None)]
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_door_contact_over_modbus_raises_and_is_suppressed_while_loading(tmp_path: Path, until) -> None:  # type: ignore[no-untyped-def]
    """The door contact is a digital-input module (profile door-contact) on the same bus: a door
    open longer than its limit raises the door alarm; while the room is being loaded it is
    suppressed by design; when loading ends with the door still open it shows again; once the
    door shuts it waits for an acknowledgement."""
    door = "room-1.door_open"

    async def scenario() -> None:
        t0 = time.monotonic()
        sim = ColdroomModel(ColdroomSimSettings.model_validate({
            "rooms": [{"name": "room-1", "unit_id": 1, "door_unit_id": 3, "door_name": "door-1"}],
            "events": [{"at_s": 0, "unit_id": 1, "action": "door_open"}, {"at_s": 900, "unit_id": 1, "action": "door_close"}],
        }), clock=lambda: t0 + (time.monotonic() - t0) * SPEED)
        server = ColdroomServer(sim)
        port = await server.start_tcp()
        bus = {"kind": "tcp", "host": "127.0.0.1", "port": port}
        config = parse_config({
            "line": {"lanes": 1}, "vision": {"workers": 1}, "camera": {"geometry": {"height_px": 160, "fps": 5.0}},
            "sensors": [
                {"name": "room-1", "transport": bus, "device_id": 1, "profile": "xy-md02", "poll_interval_s": POLL_S},
                {"name": "door-1", "transport": bus, "device_id": 3, "profile": "door-contact", "poll_interval_s": POLL_S},
            ],
            "coldchain": {"rooms": [{"name": "room-1", "door_sensor": "door-1", "alarms": {"door_open_max_s": 1.0}}]},
            "database": {"url": f"sqlite:///{tmp_path}/line.db"},
        })
        try:
            async with open_line(config, start=False) as handle:
                app = create_app(lambda: _already_open(handle))
                transport = httpx.ASGITransport(app=app)
                async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://l") as client:
                    operator = {"Authorization": f"Bearer {app.state.auth.access.create_token('shift', Role.operator, 'test')[0]}"}
                    state = lambda: handle.alarms.state(door)  # noqa: E731
                    await until(lambda: state() == "unacknowledged", 20, "the door alarm")
                    loading = await client.post("/api/v1/coldrooms/room-1/loading", json={"loading": True}, headers=operator)
                    assert loading.status_code == 200 and loading.json()["door_open"] is True and loading.json()["loading"]
                    assert state() == "suppressed"
                    await client.post("/api/v1/coldrooms/room-1/loading", json={"loading": False}, headers=operator)
                    assert state() == "unacknowledged"  # still open: back in view
                    await until(lambda: state() == "returned_unacknowledged", 30, "the door to shut")
                    ack = await client.post(f"/api/v1/alarms/{door}/acknowledge", headers=operator)
                    assert ack.json()["state"] == "normal"
                await handle.coldchain_service.flush()
                causes = [r["cause"] for r in journal_page(handle.engine, 50, alarm_id=door)]
                assert causes == ["acknowledged", "cleared", "unsuppressed", "suppressed", "raised"]
        finally:
            await server.stop()

    asyncio.run(scenario())
