"""Cold rooms and lots through the API: rooms against their bands (a stale one shows no value),
moves of a lot and a pallet between rooms (operator, audit-logged), the lot's cold-chain history,
a room's minute history, refusals as problems."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from drivers.interfaces import SensorReading
from grading.access import Role
from grading.alarms import AlarmEngine
from grading.coldchain.config import RoomSettings
from grading.coldchain.history import ColdchainStore
from grading.coldchain.monitor import ColdchainMonitor
from grading.coldchain.service import ColdchainService
from tests.unit.api.conftest import Api


def test_rooms_moves_and_a_lots_history(api: Api) -> None:
    handle = api.app.state.line
    t = [1000.0]
    alarms = AlarmEngine(clock=lambda: t[0])
    monitor = ColdchainMonitor(
        [RoomSettings(name="预冷-1", purpose="precooling", product="cherry"), RoomSettings(name="冷库-1", product="cherry")],
        alarms, clock=lambda: t[0],
    )
    handle.alarms, handle.coldchain = alarms, monitor
    handle.coldchain_service = ColdchainService(handle.engine, alarms, monitor, ColdchainStore(handle.engine), retention_days=30)
    monitor.on_reading("预冷-1", SensorReading(0.5, 0.93, t[0]))
    reader, operator = api.bearer(Role.integrator), api.bearer(Role.operator)

    rooms = api.client.get("/api/v1/coldrooms", headers=reader).json()["items"]
    assert [(r["room"], r["state"], r["temperature_celsius"]) for r in rooms] == [("冷库-1", "stale", None), ("预冷-1", "up", 0.5)]
    assert rooms[1]["band"]["temperature_high_celsius"] == 1.5 and "Table L3.3" in rooms[1]["band"]["source"]

    lot_id = 1
    moved = api.client.post(f"/api/v1/lots/{lot_id}/coldchain/moves", json={"room": "预冷-1"}, headers=operator)
    assert moved.status_code == 200 and moved.json() == {"lot_id": 1, "pallet": "", "left": None, "entered": "预冷-1"}
    again = api.client.post(f"/api/v1/lots/{lot_id}/coldchain/moves", json={"room": "预冷-1"}, headers=operator)
    assert again.status_code == 409
    pallet = api.client.post(f"/api/v1/lots/{lot_id}/coldchain/moves", json={"room": "冷库-1", "pallet": "P-2"}, headers=operator)
    assert pallet.json()["entered"] == "冷库-1"
    assert api.client.post(f"/api/v1/lots/{lot_id}/coldchain/moves", json={"room": "nowhere"}, headers=operator).status_code == 404
    assert api.client.post("/api/v1/lots/999/coldchain/moves", json={"room": "冷库-1"}, headers=operator).status_code == 404
    assert api.client.post(f"/api/v1/lots/{lot_id}/coldchain/moves", json={"room": None}, headers=reader).status_code == 403

    rooms = api.client.get("/api/v1/coldrooms", headers=reader).json()["items"]
    assert [(r["room"], [(x["lot_code"], x["pallet"]) for x in r["residents"]]) for r in rooms] == [
        ("冷库-1", [("LOT-9", "P-2")]), ("预冷-1", [("LOT-9", "")]),
    ]
    assert asyncio.run(_refresh(handle)) == {"冷库-1": ["P-2"], "预冷-1": [""]}  # the live feed's cache
    history = api.client.get(f"/api/v1/lots/{lot_id}/coldchain", headers=reader).json()
    assert [(s["room"], s["pallet"], s["left_at"]) for s in history["stays"]] == [("预冷-1", "", None), ("冷库-1", "P-2", None)]
    assert api.client.get("/api/v1/lots/999/coldchain", headers=reader).status_code == 404
    ColdchainStore(handle.engine).write(monitor.finished_minutes(everything=True))  # the minute so far
    window = {"since": "2020-01-01T00:00:00Z", "until": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    rows = api.client.get("/api/v1/coldrooms/预冷-1/history", params=window, headers=reader).json()["items"]
    assert [(r["min"], r["max"], r["mean"], r["samples"], r["out_of_band_s"]) for r in rows] == [(0.5, 0.5, 0.5, 1, 0.0)]
    bad = api.client.get("/api/v1/coldrooms/预冷-1/history", params={"until": "0.5"}, headers=reader)
    assert bad.status_code == 422
    audit = api.client.get("/api/v1/audit", headers=api.bearer(Role.supervisor)).json()["items"]
    assert [e["target"] for e in audit if e["action"] == "lot.coldchain_move" and e["outcome"] == "ok"] == ["1/P-2", "1"]


async def _refresh(handle) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    await handle.coldchain_service.refresh_residents()
    return {room: [r["pallet"] for r in rows] for room, rows in handle.coldchain_service.residents.items()}
