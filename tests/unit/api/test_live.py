"""The live feed: events derived from consecutive snapshots, the hub's fan-out, and the WebSocket."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from api.live import LiveHub, SubscriberOverflow, derive_events
from grading.access import Role
from tests.unit.api.conftest import Api


def _snap(state: str = "running", **devices: str) -> dict[str, Any]:
    return {"state": state, "fruit_total": 10, "devices": {"camera": "ok", "plc": "ok", **devices}}


def test_events_from_consecutive_snapshots() -> None:
    assert derive_events(None, _snap()) == []
    assert derive_events(_snap("starting"), _snap("stopped")) == []  # came up stopped: nothing happened
    assert derive_events(_snap("starting"), _snap("running")) == [("line_started", {"fruit_total": 10})]
    assert derive_events(_snap("stopped"), _snap("running")) == [("line_started", {"fruit_total": 10})]
    assert derive_events(_snap("running"), _snap("stopped")) == [("line_stopped", {"fruit_total": 10})]
    assert derive_events(_snap(**{"lane-2": "ok"}), _snap(**{"lane-2": "fault"})) == [
        ("device_fault", {"device": "lane-2", "state": "fault"})
    ]
    assert derive_events(_snap(**{"lane-2": "fault"}), _snap(**{"lane-2": "ok"})) == [
        ("device_returned", {"device": "lane-2", "state": "ok"})
    ]
    assert derive_events(_snap(**{"lane-2": "fault"}), _snap(**{"lane-2": "fault"})) == []


def test_hub_sends_state_first_then_events_in_order_and_takes_published_events() -> None:
    async def run() -> None:
        current = [_snap("stopped")]
        hub = LiveHub(lambda: current[0], wall_clock=lambda: datetime(2026, 12, 2, tzinfo=UTC))
        hub.add_source("coldrooms", lambda: {"items": []})
        hub.tick()
        sub = hub.subscribe()
        first = [json.loads(await sub.next()) for _ in range(2)]
        assert [m["type"] for m in first] == ["snapshot", "coldrooms"]
        assert first[0]["data"]["state"] == "stopped"
        current[0] = _snap("running", **{"lane-1": "fault"})
        hub.tick()
        hub.publish("alarm_raised", {"room": "冷库-1", "temperature_celsius": 8.5})
        rest = [json.loads(await sub.next()) for _ in range(5)]
        assert [m["type"] for m in rest] == ["line_started", "device_fault", "snapshot", "coldrooms", "alarm_raised"]
        assert [m["seq"] for m in rest] == sorted(m["seq"] for m in rest)
        assert rest[-1]["data"]["room"] == "冷库-1" and rest[-1]["at"].startswith("2026-12-02")
        late = hub.subscribe()  # a reconnecting client gets the latest state, not old events
        assert [json.loads(await late.next())["type"] for _ in range(2)] == ["snapshot", "coldrooms"]

    asyncio.run(run())


def test_a_subscriber_that_falls_behind_is_dropped_not_buffered() -> None:
    async def run() -> None:
        hub = LiveHub(lambda: _snap(), queue_size=4)
        slow = hub.subscribe()
        for _ in range(5):
            hub.tick()
        with pytest.raises(SubscriberOverflow):
            await slow.next()
        assert hub.subscribers == 0

    asyncio.run(run())


def test_websocket_pushes_snapshots_and_line_events(api: Api) -> None:
    with api.client.websocket_connect("/api/v1/live", headers=api.bearer(Role.integrator)) as ws:
        first = ws.receive_json()
        assert first["type"] == "snapshot" and first["data"]["lot"] == "LOT-9"
        api.client.post("/api/v1/line/start", headers=api.bearer(Role.operator))
        types = []
        for _ in range(100):
            message = ws.receive_json()
            types.append(message["type"])
            if message["type"] == "line_started":
                break
        assert "line_started" in types


def test_websocket_with_a_login_cookie_checks_the_origin(api: Api) -> None:
    api.access.add_user("ma", Role.operator, "8642")
    api.client.post("/api/v1/auth/login", json={"user": "ma", "pin": "8642"})
    with api.client.websocket_connect("/api/v1/live") as ws:
        assert ws.receive_json()["type"] == "snapshot"
    with pytest.raises(WebSocketDenialResponse) as denied, api.client.websocket_connect(
        "/api/v1/live", headers={"Origin": "http://evil.example"}
    ):
        pass
    assert denied.value.status_code == 403


def test_websocket_closes_when_its_token_is_revoked(api: Api) -> None:
    secret, _ = api.access.create_token("dashboard", Role.integrator, "test")
    with api.client.websocket_connect("/api/v1/live", headers={"Authorization": f"Bearer {secret}"}) as ws:
        ws.receive_json()
        api.access.revoke_token("dashboard")
        api.app.state.auth.cache.clear()
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(1000):
                ws.receive_json()
        assert closed.value.code == 4401
