"""Outlets (fill, full flags, open carton) and cartons (close, list, read)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Audit, IntegratorCaller, OperatorCaller
from api.paging import Cursor, Limit, decode_cursor, encode_cursor
from api.problems import Conflict, NotFoundProblem, documented
from api.routes.deps import get_handle
from api.routes.lots import who_text
from grading.lots.cartons import Carton, carton_fruit_uids, get_carton, list_cartons
from grading.lots.lots import LotError
from grading.schema import as_utc
from grading.trace.gs1 import hri, parse_unbracketed

router = APIRouter(prefix="/api/v1", tags=["outlets and cartons"])
OutletNumber = Annotated[int, Path(ge=1, le=255, description="Outlet number.")]
CartonId = Annotated[int, Path(ge=1, le=2**62, description="Carton id.")]

_OUTLET_EXAMPLE: dict[str, Any] = {
    "number": 1, "name": "特级 Extra", "role": "pack", "quality_classes": ["extra"], "size_classes": [],
    "group": "extra/*", "fruit_assigned": 402, "full": False, "full_by_plc": False, "full_by_hand": False,
    "carton": {"id": 88, "quality_class": "extra", "size_class": None, "opened_at": "2026-12-02T08:01:00+00:00",
               "fruit_count": 37, "fruit_weight_g": 7612.4},
}
_CARTON_EXAMPLE: dict[str, Any] = {
    "id": 87, "lot_id": 12, "outlet": 1, "quality_class": "extra", "size_class": None,
    "opened_at": "2026-12-02T07:58:11+00:00", "closed_at": "2026-12-02T08:01:00+00:00", "closed_by": "user:王芳",
    "fruit_count": 48, "fruit_weight_g": 9876.5, "scale_weight_g": None, "net_weight_g": 9876.5,
    "off_grade_count": 3, "compliant": False, "issues": ["off-grade 3/48 = 6.2 % > 5 %"],
    "gtin": "16901234567899", "serial": "line-1.87", "pack_date": "2026-12-02",
    "element_string": "0116901234567899310300987613261202" "10L2\u001d21line-1.87",
    "hri": "(01)16901234567899(3103)009876(13)261202(10)L2(21)line-1.87",
    "digital_link": "https://trace.example.cn/01/16901234567899/10/L2/21/line-1.87?13=261202&3103=009876",
}


class OpenCartonOut(BaseModel):
    id: int
    quality_class: str
    size_class: str | None
    opened_at: datetime | None
    fruit_count: int = Field(description="Committed, non-late fruit so far.")
    fruit_weight_g: float


class OutletOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_OUTLET_EXAMPLE]})

    number: int
    name: str
    role: str = Field(description="pack, recheck or cull.")
    quality_classes: list[str]
    size_classes: list[str]
    group: str = Field(description="(quality, size) group: outlets of one group share its fruit, balanced.")
    fruit_assigned: int = Field(description="Fruit decided for it since start.")
    full: bool = Field(description="Its fruit go to the next outlet of its group, else recirculate.")
    full_by_plc: bool
    full_by_hand: bool
    carton: OpenCartonOut | None = Field(description="Its open carton (packing outlets).")


class OutletPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_OUTLET_EXAMPLE], "next_cursor": None}]})

    items: list[OutletOut]
    next_cursor: str | None


class FullIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"full": True}]})

    full: bool = Field(strict=True, description="true: mark full; false: clear a mark made here (the PLC's input is its own).")


class CartonCloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"scale_weight_g": 10012.0}]})

    scale_weight_g: float | None = Field(None, ge=0, le=100_000, strict=True, description="A carton scale's reading, if there is one.")


class CartonOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CARTON_EXAMPLE]})

    id: int
    lot_id: int
    outlet: int
    quality_class: str
    size_class: str | None
    opened_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    fruit_count: int | None = Field(description="Its fruit rows, at close (null while open).")
    fruit_weight_g: float | None
    scale_weight_g: float | None
    net_weight_g: float | None = Field(description="The carton scale's reading where there is one, else the sum of its fruit.")
    off_grade_count: int | None = Field(description="Its fruit below the carton's class.")
    compliant: bool | None = Field(description="Within the class's tolerance (Extra 5 %, Class I and II 10 % by count).")
    issues: list[str] | None
    gtin: str | None = Field(None, description="GTIN-14 of its kind (AI 01); null while open, or uncoded (no [trace]).")
    serial: str | None = Field(None, description="Serial (AI 21), <line id>.<n>, never given twice.")
    pack_date: date | None = Field(None, description="Pack date (AI 13), the close's local date.")
    element_string: str | None = Field(None, description="Unbracketed GS1 element string, GS (U+001D) after a variable-length value.")
    hri: str | None = Field(None, description="The element string in bracketed form, as printed under the symbol.")
    digital_link: str | None = Field(None, description="GS1 Digital Link URI, what the label's QR holds.")


class CartonDetailOut(CartonOut):
    fruit_uids: list[str] = Field(description="Its fruit, by record uid.")


class CartonPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_CARTON_EXAMPLE], "next_cursor": None}]})

    items: list[CartonOut]
    next_cursor: str | None


def carton_out(carton: Carton) -> dict[str, Any]:
    return {
        "id": carton.id, "lot_id": carton.lot_id, "outlet": carton.outlet, "quality_class": carton.quality_class,
        "size_class": carton.size_class, "opened_at": as_utc(carton.opened_at), "closed_at": as_utc(carton.closed_at),
        "closed_by": carton.closed_by, "fruit_count": carton.fruit_count, "fruit_weight_g": carton.fruit_weight_g,
        "scale_weight_g": carton.scale_weight_g, "net_weight_g": carton.net_weight_g,
        "off_grade_count": carton.off_grade_count, "compliant": carton.compliant, "issues": carton.issues,
        "gtin": carton.gtin, "serial": carton.serial, "pack_date": carton.pack_date,
        "element_string": carton.element_string, "digital_link": carton.digital_link,
        "hri": None if carton.element_string is None else hri(parse_unbracketed(carton.element_string)),
    }


def outlet_rows(handle: Any) -> list[dict[str, Any]]:
    """Every outlet's state (also pushed on the live feed)."""
    packer = handle.packer
    runtime = handle.runtime
    status = getattr(runtime, "_status", None)
    plc_flags = tuple(status.outlet_full) if status is not None else ()
    assigned = runtime.decider.assigner.assigned_counts
    rows = []
    for o in packer.outlets:
        by_plc = o.number <= len(plc_flags) and bool(plc_flags[o.number - 1])
        by_hand = packer.full_by_hand.get(o.number, False)
        carton = packer.open_carton(o.number)
        rows.append({
            "number": o.number, "name": o.name, "role": o.role, "quality_classes": list(o.quality_classes),
            "size_classes": list(o.size_classes),
            "group": o.role if o.role != "pack" else f"{'+'.join(o.quality_classes) or '*'}/{'+'.join(o.size_classes) or '*'}",
            "fruit_assigned": assigned.get(o.number, 0), "full": by_plc or by_hand, "full_by_plc": by_plc,
            "full_by_hand": by_hand,
            "carton": None if carton is None else {
                "id": carton.id, "quality_class": carton.quality_class, "size_class": carton.size_class,
                "opened_at": as_utc(carton.opened_at), "fruit_count": carton.fruit_count,
                "fruit_weight_g": round(carton.fruit_weight_g, 1),
            },
        })
    return rows


def _outlet(handle: Any, number: int) -> Any:
    for o in handle.packer.outlets:
        if o.number == number:
            return o
    raise NotFoundProblem(f"no outlet {number}")


@router.get("/outlets", response_model=OutletPage)
async def outlets(request: Request, _: IntegratorCaller) -> dict[str, Any]:
    """Every outlet: its group, fill, full flags and open carton."""
    return {"items": outlet_rows(get_handle(request)), "next_cursor": None}


@router.post("/outlets/{number}/full", response_model=OutletOut, responses=documented(404))
async def mark_full(request: Request, number: OutletNumber, body: FullIn, who: OperatorCaller, audit: Audit) -> dict[str, Any]:
    """Mark an outlet full (or clear the mark): from the next decision its fruit go to the next
    outlet of its group, else recirculate."""
    handle = get_handle(request)
    _outlet(handle, number)
    before = handle.packer.full_by_hand.get(number, False)
    handle.packer.full_by_hand[number] = body.full  # read by the next decision, on this loop
    await audit(who, "outlet.full", target=str(number), before={"full": before}, after={"full": body.full})
    return next(r for r in outlet_rows(handle) if r["number"] == number)


@router.post("/outlets/{number}/carton/close", response_model=CartonOut, responses=documented(404, 409))
async def close_carton(
    request: Request, number: OutletNumber, who: OperatorCaller, audit: Audit, body: CartonCloseIn | None = None
) -> dict[str, Any]:
    """Close the outlet's open carton (a new one opens at once); returns the closed carton with
    its fruit count, weight and compliance, from its fruit rows."""
    handle = get_handle(request)
    _outlet(handle, number)
    scale = body.scale_weight_g if body is not None else None
    try:
        carton = await handle.lots.close_carton(number, by=who_text(who), scale_weight_g=scale)
    except LotError as exc:
        await audit(who, "carton.close", target=f"outlet {number}", outcome="refused", detail=str(exc))
        raise Conflict(str(exc)) from exc
    await audit(who, "carton.close", target=str(carton.id), after={"outlet": number, "fruit_count": carton.fruit_count,
                                                                   "compliant": carton.compliant})
    live = getattr(request.app.state, "live", None)
    out = carton_out(carton)
    if live is not None:
        live.publish("carton_closed", {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in out.items()})
    return out


@router.get("/cartons", response_model=CartonPage)
async def cartons(
    request: Request, _: IntegratorCaller, lot: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    outlet: Annotated[int | None, Query(ge=1, le=255)] = None,
    compliant: bool | None = None, limit: Limit = 50, cursor: Cursor = None,
) -> dict[str, Any]:
    """Cartons, newest first; filter by lot, outlet, compliance."""
    handle = get_handle(request)
    after = decode_cursor(cursor, int)
    found = await asyncio.to_thread(
        list_cartons, handle.engine, lot_id=lot, outlet=outlet, compliant=compliant, after_id=after, limit=limit + 1
    )
    page = found[:limit]
    return {"items": [carton_out(c) for c in page], "next_cursor": encode_cursor(page[-1].id) if len(found) > limit else None}


@router.get("/cartons/{carton_id}", response_model=CartonDetailOut, responses=documented(404))
async def carton(request: Request, carton_id: CartonId, _: IntegratorCaller) -> dict[str, Any]:
    """One carton, with the uids of the fruit in it."""
    handle = get_handle(request)
    found = await asyncio.to_thread(get_carton, handle.engine, carton_id)
    if found is None:
        raise NotFoundProblem(f"no carton {carton_id}")
    return carton_out(found) | {"fruit_uids": await asyncio.to_thread(carton_fruit_uids, handle.engine, carton_id)}
