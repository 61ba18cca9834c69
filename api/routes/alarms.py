"""The line's alarms (every source: cold rooms, drift, ...): list, acknowledge, shelve, journal.

Acknowledge is an operator's act (ISA-18.2: the operator who sees an alarm acknowledges it).
Shelving, unshelving and taking an alarm out of service hide alarms from everyone, so they
need a supervisor (ISA-18.2 asks for shelving to be administratively controlled). Each command
is journaled (durable) before it is answered, and audit-logged with the caller.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.auth import Audit, IntegratorCaller, OperatorCaller, SupervisorCaller
from api.paging import Cursor, Limit, decode_cursor, encode_cursor
from api.problems import Conflict, NotFoundProblem, documented
from api.routes.deps import get_handle
from grading.alarm_journal import journal_page
from grading.alarms import AlarmEngine, AlarmError, AlarmStatus, UnknownAlarm

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])

AlarmId = Annotated[str, Path(min_length=1, max_length=160, examples=["room-2.temperature_high"], description="The alarm's id.")]

ALARM_EXAMPLE: dict[str, Any] = {
    "alarm": "room-2.temperature_high", "kind": "temperature_high", "source": "room-2", "priority": "high",
    "state": "unacknowledged", "active": True, "value": 6.4, "setpoint": 3.0, "message": "room-2: temperature above 3.0 °C",
    "raised_at": "2026-12-02T09:14:03+00:00", "acknowledged_by": None, "shelved_by": None, "shelve_reason": "",
    "shelved_until": None,
}


class AlarmOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ALARM_EXAMPLE]})

    alarm: str = Field(description="Stable id: <room>.<kind> or <device>.sensor_stale; the `alarm` label on /metrics.")
    kind: str = Field(description="temperature_high, temperature_low, humidity_low, door_open, sensor_stale, drift, ...")
    source: str = Field(description="The room, device or line it belongs to.")
    priority: str = Field(description="urgent, high, medium or low.")
    state: str = Field(
        description="normal, unacknowledged, acknowledged, returned_unacknowledged, shelved, suppressed or out_of_service."
    )
    active: bool = Field(description="The condition holds (after its on-delay), shown or not.")
    value: float | None = Field(description="The last value the source reported.")
    setpoint: float | None
    message: str
    raised_at: datetime | None
    acknowledged_by: str | None
    shelved_by: str | None
    shelve_reason: str
    shelved_until: datetime | None


class AlarmPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [ALARM_EXAMPLE], "next_cursor": None}]})

    items: list[AlarmOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class ShelveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{"reason": "defrost cycle", "duration_s": 3600}]})

    reason: str = Field(min_length=1, max_length=200, description="Why (kept in the journal and the audit log).")
    duration_s: float = Field(gt=0, le=8 * 3600, description="Longest it stays shelved (at most one shift, 8 h).")


class ServiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{"out_of_service": True, "reason": "probe replaced"}]})

    out_of_service: StrictBool
    reason: str = Field("", max_length=200)


JOURNAL_EXAMPLE: dict[str, Any] = {
    "id": 12, "at": "2026-12-02T09:14:03+00:00", "alarm": "room-2.temperature_high", "from_state": "normal",
    "to_state": "unacknowledged", "cause": "raised", "value": 6.4, "user": None, "reason": "",
}


class JournalEntry(BaseModel):
    id: int
    at: datetime
    alarm: str
    from_state: str
    to_state: str
    cause: str = Field(description="raised, cleared, acknowledged, shelved, unshelved, shelf_expired, suppressed, ...")
    value: float | None
    user: str | None
    reason: str


class JournalPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [JOURNAL_EXAMPLE], "next_cursor": None}]})

    items: list[JournalEntry]
    next_cursor: str | None


def alarm_out(a: AlarmStatus) -> dict[str, Any]:
    d = a.definition
    return {
        "alarm": a.alarm_id, "kind": d.kind, "source": d.source, "priority": d.priority, "state": str(a.state),
        "active": a.active, "value": a.value, "setpoint": d.setpoint, "message": d.message, "raised_at": a.raised_at,
        "acknowledged_by": a.acknowledged_by, "shelved_by": a.shelved_by, "shelve_reason": a.shelve_reason,
        "shelved_until": a.shelved_until,
    }


def alarm_rows(handle: Any) -> list[dict[str, Any]]:
    """Every alarm (also pushed on the live feed as ``alarms``)."""
    engine: AlarmEngine | None = getattr(handle, "alarms", None)
    return [] if engine is None else [alarm_out(a) for a in engine.alarms()]


def _engine(request: Request) -> AlarmEngine:
    engine: AlarmEngine | None = getattr(get_handle(request), "alarms", None)
    if engine is None:
        raise NotFoundProblem("this line has no alarm engine")
    return engine


async def _journaled(request: Request) -> None:
    service = getattr(get_handle(request), "coldchain_service", None)
    if service is not None:
        await service.flush()


def _status(engine: AlarmEngine, alarm_id: str) -> AlarmStatus:
    try:
        return engine.status(alarm_id)
    except UnknownAlarm as exc:
        raise NotFoundProblem(str(exc)) from exc


@router.get("", response_model=AlarmPage)
async def alarms(
    request: Request, _: IntegratorCaller, limit: Limit = 100, cursor: Cursor = None,
    shown: Annotated[bool, Query(description="Only alarms that are not normal (what the alarm list shows).")] = False,
) -> dict[str, Any]:
    """Every alarm of the line with its state, by id."""
    after = decode_cursor(cursor, str)
    rows = [r for r in alarm_rows(get_handle(request)) if (after is None or r["alarm"] > after)]
    if shown:
        rows = [r for r in rows if r["state"] != "normal"]
    page = rows[:limit]
    return {"items": page, "next_cursor": encode_cursor(page[-1]["alarm"]) if len(rows) > limit else None}


@router.get("/journal", response_model=JournalPage)
async def journal(
    request: Request, _: IntegratorCaller, limit: Limit = 100, cursor: Cursor = None,
    alarm: Annotated[str | None, Query(max_length=160, description="Only this alarm's transitions.")] = None,
) -> dict[str, Any]:
    """Every alarm transition, newest first."""
    handle = get_handle(request)
    await _journaled(request)
    before = decode_cursor(cursor, int)
    rows = await asyncio.to_thread(journal_page, handle.engine, limit + 1, before, alarm)
    page = rows[:limit]
    items = [
        {"id": r["id"], "at": r["at"], "alarm": r["alarm_id"], "from_state": r["from_state"], "to_state": r["to_state"],
         "cause": r["cause"], "value": r["value"], "user": r["user_name"], "reason": r["reason"]}
        for r in page
    ]
    return {"items": items, "next_cursor": encode_cursor(page[-1]["id"]) if len(rows) > limit else None}


async def _command(request: Request, audit: Audit, who: Any, action: str, alarm_id: str, do: Any, **detail: Any) -> dict[str, Any]:
    engine = _engine(request)
    a = _status(engine, alarm_id)
    before = {"state": str(a.state)}
    try:
        do(engine)
    except AlarmError as exc:
        await audit(who, action, target=alarm_id, outcome="refused", before=before, detail=str(exc))
        raise Conflict(str(exc)) from exc
    await _journaled(request)
    after = {"state": str(a.state), **detail}
    await audit(who, action, target=alarm_id, before=before, after=after)
    live = getattr(request.app.state, "live", None)
    if live is not None:
        live.publish("alarm", alarm_out(a))
    return alarm_out(a)


@router.post("/{alarm_id}/acknowledge", response_model=AlarmOut, responses=documented(404, 409))
async def acknowledge(request: Request, who: OperatorCaller, audit: Audit, alarm_id: AlarmId) -> dict[str, Any]:
    """Acknowledge an alarm (unacknowledged or returned to normal unacknowledged)."""
    return await _command(request, audit, who, "alarm.acknowledge", alarm_id, lambda e: e.acknowledge(alarm_id, who.name))


@router.post("/{alarm_id}/shelve", response_model=AlarmOut, responses=documented(404, 409))
async def shelve(
    request: Request, who: SupervisorCaller, audit: Audit, alarm_id: AlarmId, body: ShelveIn,
) -> dict[str, Any]:
    """Shelve an alarm for at most `duration_s`, with a reason."""
    return await _command(
        request, audit, who, "alarm.shelve", alarm_id, lambda e: e.shelve(alarm_id, who.name, body.reason, body.duration_s),
        reason=body.reason, duration_s=body.duration_s,
    )


@router.post("/{alarm_id}/unshelve", response_model=AlarmOut, responses=documented(404, 409))
async def unshelve(request: Request, who: SupervisorCaller, audit: Audit, alarm_id: AlarmId) -> dict[str, Any]:
    """Bring a shelved alarm back before its expiry."""
    return await _command(request, audit, who, "alarm.unshelve", alarm_id, lambda e: e.unshelve(alarm_id, who.name))


@router.post("/{alarm_id}/service", response_model=AlarmOut, responses=documented(404, 409))
async def service(
    request: Request, who: SupervisorCaller, audit: Audit, alarm_id: AlarmId, body: ServiceIn,
) -> dict[str, Any]:
    """Take an alarm out of service (maintenance) or return it to service."""
    return await _command(
        request, audit, who, "alarm.service", alarm_id,
        lambda e: e.set_out_of_service(alarm_id, body.out_of_service, who.name, body.reason),
        out_of_service=body.out_of_service, reason=body.reason,
    )
