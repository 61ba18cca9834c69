"""A lot's way through the cold rooms: moves in and out (the lot, or one of its pallets), and its
cold-chain history (time in each room, min/max/mean temperature, minutes out of band), which the
consumer page and the EPCIS sensor events of the traceability work read."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Audit, IntegratorCaller, OperatorCaller
from api.problems import Conflict, NotFoundProblem, documented
from api.routes.deps import get_handle
from grading.coldchain.history import ColdchainStore

router = APIRouter(prefix="/api/v1/lots", tags=["cold chain"])

LotId = Annotated[int, Path(ge=1, le=2**31 - 1, examples=[12], description="The lot's id (lots.id).")]

STAY_EXAMPLE: dict[str, Any] = {
    "residence_id": 3, "room": "预冷-1", "pallet": "", "entered_at": "2026-12-02T08:00:00+00:00",
    "left_at": "2026-12-02T11:10:00+00:00", "duration_s": 11400.0, "temperature_min_celsius": 0.4,
    "temperature_max_celsius": 3.1, "temperature_mean_celsius": 1.2, "minutes_out_of_band": 4.5,
}


class StayOut(BaseModel):
    residence_id: int
    room: str
    pallet: str = Field(description="\"\" when the whole lot moved.")
    entered_at: datetime
    left_at: datetime | None = Field(description="null while it is still in the room.")
    duration_s: float
    temperature_min_celsius: float | None
    temperature_max_celsius: float | None
    temperature_mean_celsius: float | None = Field(description="Time-weighted over the stay, from the minute rows.")
    minutes_out_of_band: float = Field(description="Minutes the room was outside its band during the stay.")


class LotColdchain(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "lot_id": 12, "stays": [STAY_EXAMPLE], "minutes_out_of_band": 4.5, "duration_s": 11400.0,
        "temperature_min_celsius": 0.4, "temperature_max_celsius": 3.1,
    }]})

    lot_id: int
    stays: list[StayOut] = Field(description="Oldest first; up to the last complete minute.")
    duration_s: float = Field(description="Total time in cold rooms.")
    minutes_out_of_band: float
    temperature_min_celsius: float | None
    temperature_max_celsius: float | None


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{"room": "冷库-1", "pallet": ""}]})

    room: str | None = Field(max_length=64, description="The room it goes into; null: out of the cold chain (shipped).")
    pallet: str = Field("", max_length=64, description="A pallet of the lot, or \"\" for the whole lot.")


class MoveOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"lot_id": 12, "pallet": "", "left": "预冷-1", "entered": "冷库-1"}]})

    lot_id: int
    pallet: str
    left: str | None = Field(description="The room it left, if it was in one.")
    entered: str | None


def _stay(s: Any) -> dict[str, Any]:
    return {
        "residence_id": s.residence_id, "room": s.room, "pallet": s.pallet, "entered_at": s.entered_at, "left_at": s.left_at,
        "duration_s": round(s.duration_s, 1), "temperature_min_celsius": s.temperature_min_c,
        "temperature_max_celsius": s.temperature_max_c,
        "temperature_mean_celsius": None if s.temperature_mean_c is None else round(s.temperature_mean_c, 3),
        "minutes_out_of_band": round(s.minutes_out_of_band, 2),
    }


@router.get("/{lot_id}/coldchain", response_model=LotColdchain, responses=documented(404))
async def lot_coldchain(request: Request, _: IntegratorCaller, lot_id: LotId) -> dict[str, Any]:
    """The lot's cold-chain history: each stay in a room with its temperatures and minutes out of band."""
    handle = get_handle(request)
    store = ColdchainStore(handle.engine)
    if not await asyncio.to_thread(store.lot_exists, lot_id):
        raise NotFoundProblem(f"no lot {lot_id}")
    service = getattr(handle, "coldchain_service", None)
    if service is not None:
        await service.flush()
    stays = await asyncio.to_thread(store.lot_history, lot_id)
    lows = [s.temperature_min_c for s in stays if s.temperature_min_c is not None]
    highs = [s.temperature_max_c for s in stays if s.temperature_max_c is not None]
    return {
        "lot_id": lot_id, "stays": [_stay(s) for s in stays], "duration_s": round(sum(s.duration_s for s in stays), 1),
        "minutes_out_of_band": round(sum(s.minutes_out_of_band for s in stays), 2),
        "temperature_min_celsius": min(lows) if lows else None, "temperature_max_celsius": max(highs) if highs else None,
    }


@router.post("/{lot_id}/coldchain/moves", response_model=MoveOut, responses=documented(404, 409))
async def move(request: Request, who: OperatorCaller, audit: Audit, lot_id: LotId, body: MoveIn) -> dict[str, Any]:
    """Move the lot (or a pallet of it) into a room, from the room it is in; `room: null` takes it out."""
    handle = get_handle(request)
    monitor = getattr(handle, "coldchain", None)
    if body.room is not None and (monitor is None or body.room not in monitor.rooms):
        raise NotFoundProblem(f"no room {body.room!r}")
    store = ColdchainStore(handle.engine)
    try:
        ended, started = await asyncio.to_thread(store.move, lot_id, body.room, user=who.name, pallet=body.pallet)
    except LookupError as exc:
        raise NotFoundProblem(str(exc)) from exc
    except ValueError as exc:
        raise Conflict(str(exc)) from exc
    left = ended["room"] if ended else None
    service = getattr(handle, "coldchain_service", None)
    if service is not None:
        await service.refresh_residents()
    if body.room is not None and monitor is not None and monitor.rooms[body.room].settings.purpose == "precooling":
        monitor.start_batch(body.room)  # a batch entering a pre-cooling room: follow it on the room's probes
    await audit(who, "lot.coldchain_move", target=f"{lot_id}{'/' + body.pallet if body.pallet else ''}",
                before={"room": left}, after={"room": body.room})
    live = getattr(request.app.state, "live", None)
    if live is not None:
        live.publish("lot_moved", {"lot_id": lot_id, "pallet": body.pallet, "left": left, "entered": body.room})
    return {"lot_id": lot_id, "pallet": body.pallet, "left": left, "entered": body.room}
