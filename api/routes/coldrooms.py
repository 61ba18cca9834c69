"""Cold-room sensor readings and their freshness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.routes.deps import get_handle

router = APIRouter(prefix="/api/v1/coldrooms", tags=["cold chain"])


@router.get("")
async def coldrooms(request: Request) -> dict[str, Any]:
    """Last reading and state (up/stale) of every configured sensor."""
    handle = get_handle(request)
    poller = handle.sensors
    if poller is None:
        return {"sensors": []}
    sensors = []
    for name, health in sorted(poller.health.items()):
        reading = health.last_reading
        sensors.append(
            {
                "device": name,
                "state": poller.state(name),
                "temperature_celsius": reading.temperature_celsius if reading else None,
                "relative_humidity_ratio": reading.relative_humidity_ratio if reading else None,
                "failures": health.failures,
                "last_error": str(health.last_error) if health.last_error else None,
            }
        )
    return {"sensors": sensors}
