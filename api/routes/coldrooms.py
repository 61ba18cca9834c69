"""Cold rooms: each room now against its band, its sensors, history, excursions, loading and
pre-cooling batches, and the lots or pallets in it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.auth import Audit, IntegratorCaller, OperatorCaller
from api.paging import Cursor, Limit, decode_cursor, encode_cursor
from api.problems import InvalidParameter, NotFoundProblem, documented
from api.routes.deps import get_handle
from grading.coldchain.history import ColdchainStore
from grading.coldchain.monitor import ColdchainMonitor, RoomNow

router = APIRouter(prefix="/api/v1/coldrooms", tags=["cold chain"])

# RFC 3339 date-times as text (pydantic would also take a bare number as a Unix time); no zone = UTC.
Instant = Annotated[str | None, Query(
    pattern=r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?$",
    description="RFC 3339 date and time, e.g. 2026-12-02T09:00:00+08:00 (default: see the route).",
    json_schema_extra={"format": "date-time"},
)]
RoomName = Annotated[str, Path(min_length=1, max_length=64, examples=["room-1"], description="The room's name.")]

ROOM_EXAMPLE: dict[str, Any] = {
    "room": "冷库-1", "purpose": "storage", "state": "up", "temperature_celsius": 1.2, "relative_humidity_ratio": 0.91,
    "door_open": None, "loading": False, "air_sensor": "冷库-1", "last_read_age_s": 4.2,
    "band": {"setpoint_celsius": 1.0, "temperature_low_celsius": -1.0, "temperature_high_celsius": 3.0,
             "humidity_low_ratio": 0.85, "source": "DOMAIN.md s.7: Table L3.3; ..."},
    "trend": [[1800.0, 1.1], [1770.0, 1.2]], "cooling": {}, "residents": [],
}


class BandOut(BaseModel):
    setpoint_celsius: float
    temperature_low_celsius: float = Field(description="Below this is out of band (the low alarm's setpoint).")
    temperature_high_celsius: float = Field(description="Above this is out of band (the high alarm's setpoint).")
    humidity_low_ratio: float = Field(description="0-1; below it the low-humidity alarm's condition holds.")
    source: str = Field(description="Where the figures come from.")


class CoolingOut(BaseModel):
    elapsed_s: float
    initial_celsius: float
    air_celsius: float
    core_celsius: float
    fraction_left: float = Field(description="(core - air) / (initial - air): 1 at the start, 0.125 at seven-eighths cooling.")
    progress: float = Field(description="0-1 toward seven-eighths cooling.")
    half_cooling_measured_s: float | None
    seven_eighths_measured_s: float | None
    half_cooling_predicted_s: float | None
    seven_eighths_predicted_s: float | None = Field(description="From the fitted cooling curve; null until it can be fitted.")


class Resident(BaseModel):
    residence_id: int
    lot_id: int
    lot_code: str
    pallet: str = Field(description="\"\" for the whole lot.")
    entered_at: datetime


class RoomOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ROOM_EXAMPLE]})

    room: str
    purpose: str = Field(description="storage or precooling.")
    state: str = Field(description="up (the air sensor's readings are fresh) or stale.")
    temperature_celsius: float | None = Field(description="Now; null while the air sensor is stale (never a stale value).")
    relative_humidity_ratio: float | None = Field(description="0-1; null while stale.")
    door_open: bool | None
    loading: bool = Field(description="Being loaded: the door alarm is suppressed by design.")
    air_sensor: str
    last_read_age_s: float | None = Field(description="Age of the air sensor's last good reading.")
    band: BandOut
    trend: list[tuple[float, float]] = Field(description="Short trend: [seconds ago, °C], oldest first, one per 30 s.")
    cooling: dict[str, CoolingOut | None] = Field(description="Pre-cooling batch per core probe.")
    residents: list[Resident]


class RoomPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [ROOM_EXAMPLE], "next_cursor": None}]})

    items: list[RoomOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class ColdroomSensor(BaseModel):
    device: str = Field(description="Sensor name from the config.")
    state: str = Field(description="up (fresh readings) or stale.")
    temperature_celsius: float | None = Field(description="The last reading (null while stale: it is not current).")
    relative_humidity_ratio: float | None = Field(description="0-1.")
    failures: int = Field(ge=0, description="Failed polls since start.")
    last_error: str | None


class SensorPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"device": "冷库-1", "state": "up", "temperature_celsius": 2.1, "relative_humidity_ratio": 0.9,
                         "failures": 0, "last_error": None},
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    items: list[ColdroomSensor]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class MinuteOut(BaseModel):
    minute_at: datetime
    min: float
    max: float
    mean: float
    samples: int
    out_of_band_s: float


class HistoryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "room": "room-1", "quantity": "temperature",
        "items": [{"minute_at": "2026-12-02T09:14:00+00:00", "min": 1.1, "max": 1.3, "mean": 1.2, "samples": 6,
                   "out_of_band_s": 0.0}],
    }]})

    room: str
    quantity: str
    items: list[MinuteOut]


class ExcursionOut(BaseModel):
    start: datetime
    end: datetime
    minutes_out_of_band: float
    min: float
    max: float


class ExcursionsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "room": "room-2", "minutes_out_of_band": 31.5,
        "items": [{"start": "2026-12-02T09:15:00+00:00", "end": "2026-12-02T09:47:00+00:00",
                   "minutes_out_of_band": 31.5, "min": 2.9, "max": 6.4}],
    }]})

    room: str
    minutes_out_of_band: float
    items: list[ExcursionOut]


class LoadingIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{"loading": True}]})

    loading: StrictBool


class BatchOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"room": "预冷-1", "probes": ["core-1"]}]})

    room: str
    probes: list[str]


def _band(room: RoomNow) -> dict[str, Any]:
    b = room.band
    return {"setpoint_celsius": b.setpoint_c, "temperature_low_celsius": b.temperature_low_c,
            "temperature_high_celsius": b.temperature_high_c, "humidity_low_ratio": b.humidity_low_ratio,
            "source": b.source}


def _cooling(estimate: Any) -> dict[str, Any] | None:
    if estimate is None:
        return None
    return {
        "elapsed_s": estimate.elapsed_s, "initial_celsius": estimate.initial_c, "air_celsius": estimate.air_c,
        "core_celsius": estimate.core_c, "fraction_left": estimate.fraction_left, "progress": estimate.progress,
        "half_cooling_measured_s": estimate.half_cooling_measured_s,
        "seven_eighths_measured_s": estimate.seven_eighths_measured_s,
        "half_cooling_predicted_s": estimate.half_cooling_predicted_s,
        "seven_eighths_predicted_s": estimate.seven_eighths_predicted_s,
    }


def room_rows(handle: Any, residents: dict[str, list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """Every room now (also pushed on the live feed as ``coldrooms``); residents from the
    service's cache unless given."""
    monitor: ColdchainMonitor | None = getattr(handle, "coldchain", None)
    if monitor is None:
        return []
    if residents is None:
        service = getattr(handle, "coldchain_service", None)
        residents = service.residents if service is not None else {}
    rows = []
    for room in monitor.now():
        age = room.last_read_age_s
        rows.append({
            "room": room.room, "purpose": room.purpose, "state": "up" if room.air_sensor_up else "stale",
            "temperature_celsius": room.temperature_c, "relative_humidity_ratio": room.humidity_ratio,
            "door_open": room.door_open, "loading": room.loading, "air_sensor": room.air_sensor, "last_read_age_s": age,
            "band": _band(room), "trend": [list(p) for p in reversed(room.trend)],
            "cooling": {probe: _cooling(e) for probe, e in room.cooling.items()},
            "residents": (residents or {}).get(room.room, []),
        })
    return rows


def sensor_rows(handle: Any) -> list[dict[str, Any]]:
    """Every configured sensor's last reading and state, by name."""
    poller = handle.sensors
    if poller is None:
        return []
    rows = []
    for name, health in sorted(poller.health.items()):
        reading = health.last_reading
        up = poller.state(name) == "up"
        rows.append(
            {
                "device": name,
                "state": "up" if up else "stale",
                "temperature_celsius": reading.temperature_celsius if reading and up else None,
                "relative_humidity_ratio": reading.relative_humidity_ratio if reading and up else None,
                "failures": health.failures,
                "last_error": str(health.last_error) if health.last_error else None,
            }
        )
    return rows


def _store(request: Request) -> ColdchainStore:
    return ColdchainStore(get_handle(request).engine)


def _monitor(request: Request, room: str) -> ColdchainMonitor:
    monitor: ColdchainMonitor | None = getattr(get_handle(request), "coldchain", None)
    if monitor is None or room not in monitor.rooms:
        raise NotFoundProblem(f"no room {room!r}")
    return monitor


async def _residents(request: Request, names: list[str]) -> dict[str, list[dict[str, Any]]]:
    store = _store(request)
    return {name: await asyncio.to_thread(store.residents, name) for name in names}


@router.get("", response_model=RoomPage)
async def coldrooms(request: Request, _: IntegratorCaller, limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """Every room now: temperature and humidity against its band, a short trend, pre-cooling, residents."""
    handle = get_handle(request)
    after = decode_cursor(cursor, str)
    names = [r["room"] for r in room_rows(handle)]
    rows = [r for r in room_rows(handle, await _residents(request, names)) if after is None or r["room"] > after]
    rows.sort(key=lambda r: r["room"])
    page = rows[:limit]
    return {"items": page, "next_cursor": encode_cursor(page[-1]["room"]) if len(rows) > limit else None}


@router.get("/sensors", response_model=SensorPage)
async def sensors(request: Request, _: IntegratorCaller, limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """Last reading and state (up/stale) of every configured sensor, by name."""
    after = decode_cursor(cursor, str)
    rows = [r for r in sensor_rows(get_handle(request)) if after is None or r["device"] > after]
    page = rows[:limit]
    return {"items": page, "next_cursor": encode_cursor(page[-1]["device"]) if len(rows) > limit else None}


def _instant(text: str | None, field: str) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidParameter(f"query.{field}", f"not an ISO 8601 date and time: {exc}") from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _window(since: str | None, until: str | None, hours: float) -> tuple[datetime, datetime]:
    end = _instant(until, "until") or datetime.now(UTC)
    return _instant(since, "since") or end - timedelta(hours=hours), end


@router.get("/{room}/history", response_model=HistoryOut, responses=documented(404))
async def history(
    request: Request, _: IntegratorCaller, room: RoomName,
    since: Instant = None,
    until: Instant = None,
    quantity: Annotated[str, Query(max_length=80, description="temperature, humidity or core:<probe>.")] = "temperature",
) -> dict[str, Any]:
    """The room's readings, one row per minute: min, max, mean, samples and seconds out of band."""
    _monitor(request, room)
    start, end = _window(since, until, 24)
    await get_handle(request).coldchain_service.flush()
    items = await asyncio.to_thread(_store(request).history, room, start, end, quantity)
    return {"room": room, "quantity": quantity, "items": items}


@router.get("/{room}/excursions", response_model=ExcursionsOut, responses=documented(404))
async def excursions(
    request: Request, _: IntegratorCaller, room: RoomName,
    since: Instant = None,
    until: Instant = None,
) -> dict[str, Any]:
    """Runs of minutes when the room's temperature was out of its band, with the minutes out of band."""
    _monitor(request, room)
    start, end = _window(since, until, 24 * 7)
    await get_handle(request).coldchain_service.flush()
    items = await asyncio.to_thread(_store(request).excursions, room, start, end)
    return {"room": room, "minutes_out_of_band": round(sum(i["minutes_out_of_band"] for i in items), 2), "items": items}


@router.post("/{room}/loading", response_model=RoomOut, responses=documented(404))
async def loading(request: Request, who: OperatorCaller, audit: Audit, room: RoomName, body: LoadingIn) -> dict[str, Any]:
    """Start or end loading the room: while loading, its door alarm is suppressed by design."""
    monitor = _monitor(request, room)
    before = monitor.rooms[room].loading
    monitor.set_loading(room, body.loading)
    await get_handle(request).coldchain_service.flush()
    await audit(who, "coldroom.loading", target=room, before={"loading": before}, after={"loading": body.loading})
    handle = get_handle(request)
    return next(r for r in room_rows(handle, await _residents(request, [room])) if r["room"] == room)


@router.post("/{room}/precooling", response_model=BatchOut, responses=documented(404))
async def precooling(request: Request, who: OperatorCaller, audit: Audit, room: RoomName) -> dict[str, Any]:
    """Start following a new batch on the room's core probes (the probes are in the new batch's fruit)."""
    monitor = _monitor(request, room)
    probes = monitor.start_batch(room)
    await audit(who, "coldroom.precooling_start", target=room, after={"probes": probes})
    return {"room": room, "probes": probes}
