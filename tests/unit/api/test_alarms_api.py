"""The alarm routes over the line's engine: the list, acknowledge (operator) and shelve
(supervisor), each audit-logged with the caller, refusals as 409 problems."""

from __future__ import annotations

from grading.access import Role
from grading.alarms import AlarmDefinition, AlarmEngine
from tests.unit.api.conftest import Api


def test_list_acknowledge_and_shelve_are_audited(api: Api) -> None:
    engine = AlarmEngine([
        AlarmDefinition("room-2.temperature_high", "temperature_high", "room-2", "high", "high", 3.0),
        AlarmDefinition("room-1.temperature_high", "temperature_high", "room-1", "high", "high", 3.0),
    ])
    api.app.state.line.alarms = engine
    engine.report_value("room-2.temperature_high", 6.5)
    engine.report_value("room-1.temperature_high", 5.0)
    listed = api.client.get("/api/v1/alarms", params={"shown": True}, headers=api.bearer(Role.integrator)).json()
    assert [(a["alarm"], a["state"], a["value"]) for a in listed["items"]] == [
        ("room-1.temperature_high", "unacknowledged", 5.0), ("room-2.temperature_high", "unacknowledged", 6.5),
    ]
    ack = api.client.post("/api/v1/alarms/room-2.temperature_high/acknowledge", headers=api.bearer(Role.operator))
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    assert ack.json()["acknowledged_by"] == "test-operator"
    again = api.client.post("/api/v1/alarms/room-2.temperature_high/acknowledge", headers=api.bearer(Role.operator))
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    refused = api.client.post("/api/v1/alarms/room-1.temperature_high/shelve", json={"reason": "x", "duration_s": 60},
                              headers=api.bearer(Role.operator))
    assert refused.status_code == 403
    shelved = api.client.post("/api/v1/alarms/room-1.temperature_high/shelve",
                              json={"reason": "defrost", "duration_s": 600}, headers=api.bearer(Role.supervisor))
    assert shelved.status_code == 200 and shelved.json()["state"] == "shelved"
    assert shelved.json()["shelve_reason"] == "defrost"
    audit = api.client.get("/api/v1/audit", headers=api.bearer(Role.supervisor)).json()["items"]
    entries = [(e["action"], e["target"], e["outcome"]) for e in audit if e["action"].startswith("alarm.")]
    assert entries == [
        ("alarm.shelve", "room-1.temperature_high", "ok"),
        ("alarm.acknowledge", "room-2.temperature_high", "refused"),
        ("alarm.acknowledge", "room-2.temperature_high", "ok"),
    ]
    missing = api.client.post("/api/v1/alarms/nope/acknowledge", headers=api.bearer(Role.operator))
    assert missing.status_code == 404
