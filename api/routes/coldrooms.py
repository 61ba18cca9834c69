"""Cold-room sensor readings and their freshness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import IntegratorCaller
from api.paging import Cursor, Limit, decode_cursor, encode_cursor
from api.routes.deps import get_handle

router = APIRouter(prefix="/api/v1/coldrooms", tags=["cold chain"])


class ColdroomSensor(BaseModel):
    device: str = Field(description="Sensor name from the config.")
    state: str = Field(description="up (fresh readings) or stale.")
    temperature_celsius: float | None
    relative_humidity_ratio: float | None = Field(description="0-1.")
    failures: int = Field(ge=0, description="Failed polls since start.")
    last_error: str | None


class ColdroomPage(BaseModel):
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


def sensor_rows(handle: Any) -> list[dict[str, Any]]:
    """Every configured sensor's last reading and state, by name (also pushed on the live feed)."""
    poller = handle.sensors
    if poller is None:
        return []
    rows = []
    for name, health in sorted(poller.health.items()):
        reading = health.last_reading
        rows.append(
            {
                "device": name,
                "state": poller.state(name),
                "temperature_celsius": reading.temperature_celsius if reading else None,
                "relative_humidity_ratio": reading.relative_humidity_ratio if reading else None,
                "failures": health.failures,
                "last_error": str(health.last_error) if health.last_error else None,
            }
        )
    return rows


@router.get("", response_model=ColdroomPage)
async def coldrooms(request: Request, _: IntegratorCaller, limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """Last reading and state (up/stale) of every configured sensor, by name."""
    after = decode_cursor(cursor, str)
    rows = [r for r in sensor_rows(get_handle(request)) if after is None or r["device"] > after]
    page = rows[:limit]
    more = len(rows) > limit
    return {"items": page, "next_cursor": encode_cursor(page[-1]["device"]) if more else None}
