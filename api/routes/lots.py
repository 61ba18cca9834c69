"""Lots: start (or switch), close, list, read; a lot's pack-out, settlement and what-if.

Thin handlers over ``grading.lots``: the line-level operations are ``handle.lots``
(``grading.lots.service.LineLots``), the reports are computed in the domain.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from api.auth import Audit, IntegratorCaller, OperatorCaller, SupervisorCaller
from api.paging import Cursor, Limit, decode_cursor, encode_cursor
from api.problems import Conflict, InvalidParameter, NotFoundProblem, documented
from api.routes.deps import get_handle
from grading.lots import lots as lot_store
from grading.lots.lots import LotDetails, LotError, LotNotFound
from grading.lots.packout import lot_packout, packout_csv
from grading.lots.receiving import (
    TRACE_CODE_MAX_LENGTH,
    CertificateForm,
    IncomingCertificate,
    ReceivingError,
    lot_certificates,
    record_certificate,
    set_platform_trace_code,
)
from grading.schema import as_utc
from grading.store import Lot

router = APIRouter(prefix="/api/v1/lots", tags=["lots"])
LotId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Lot id.")]

_LOT_EXAMPLE: dict[str, Any] = {
    "id": 12, "code": "2026-1202-003", "line": "line-1", "grower": "张三", "grower_id": "MZ-0417",
    "product": "apple", "variety": "红富士", "origin_village": "石屏县宝秀镇", "origin_plot": "3号地",
    "harvest_date": "2026-12-01", "received_weight_kg": 1250.0, "recipe": "apple",
    "recipe_hash": "9f2c41d0c7b5e1e8a6a0f1e25b7c3d7a4c8b1f0e2d3c4b5a69788776655443322",
    "started_at": "2026-12-02T07:58:11+00:00", "ended_at": None, "started_by": "user:李娜", "closed_by": None,
    "platform_trace_code": None, "open": True, "counts": {"fruit_total": 5120, "weight_kg": 1034.2, "late_total": 0,
                             "quality_classes": {"extra": 1800, "class_i": 2900}, "size_classes": {"75-80": 2100}},
}



_CERTIFICATE_EXAMPLE: dict[str, Any] = {
    "number": "HG530000-0042", "issuer": "张三", "contact": "138 0000 0000", "product_name": "苹果",
    "quantity": "1250 kg", "origin": "云南省石屏县宝秀镇", "issued_on": "2026-12-01", "form": "paper", "note": "",
}


def _iso_date(value: object) -> object:
    # JSON has no date: only the text YYYY-MM-DD is one (pydantic alone would also take a number
    # as a Unix time, and the schema says a date string)
    if value is None or isinstance(value, date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a date YYYY-MM-DD")
    return date.fromisoformat(value)


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class CertificateIn(BaseModel):
    """A grower's 承诺达标合格证 as received: its fields as written on it (free text)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_CERTIFICATE_EXAMPLE]})

    issuer: str = Field(min_length=1, max_length=100, description="承诺主体: who promises (the grower or co-op).")
    form: CertificateForm = Field("paper", description="paper (printed), electronic (QR) or handwritten.")
    number: str = Field("", max_length=64, description="Its number as printed, if it has one.")
    contact: str = Field("", max_length=100, description="联系方式.")
    product_name: str = Field("", max_length=64, description="产品名称.")
    quantity: str = Field("", max_length=64, description="数量 as written (weight and/or count).")
    origin: str = Field("", max_length=200, description="产地.")
    issued_on: IsoDate | None = Field(None, description="开具时间, YYYY-MM-DD.")
    note: str = Field("", max_length=2000)

    def certificate(self) -> IncomingCertificate:
        return IncomingCertificate(**self.model_dump())


class CertificateOut(CertificateIn):
    model_config = ConfigDict(json_schema_extra={"examples": [
        _CERTIFICATE_EXAMPLE | {"id": 3, "lot_id": 12, "received_at": "2026-12-02T07:58:11+00:00", "received_by": "user:李娜"}
    ]})

    id: int
    lot_id: int
    received_at: datetime | None
    received_by: str


class CertificatePage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "items": [_CERTIFICATE_EXAMPLE | {"id": 3, "lot_id": 12, "received_at": "2026-12-02T07:58:11+00:00",
                                          "received_by": "user:李娜"}],
        "next_cursor": None,
    }]})

    items: list[CertificateOut]
    next_cursor: str | None = Field(None, description="Always null: a lot's certificates come in one page.")


def certificate_out(cert: IncomingCertificate) -> CertificateOut:
    return CertificateOut(
        issuer=cert.issuer, form=cert.form, number=cert.number, contact=cert.contact, product_name=cert.product_name,
        quantity=cert.quantity, origin=cert.origin, issued_on=cert.issued_on, note=cert.note, id=cert.id or 0,
        lot_id=cert.lot_id or 0, received_at=as_utc(cert.received_at), received_by=cert.received_by,
    )


_TRACE_CODE_FIELD = Field(
    None, max_length=TRACE_CODE_MAX_LENGTH + 64,  # trimmed, then held to the limit (a 422 naming the field)
    description=f"The national platform's 追溯码, opaque: stored as given after trimming (at most "
    f"{TRACE_CODE_MAX_LENGTH} characters, no control characters). Blank: none.",
)


class LotStartIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "code": "2026-1202-003", "grower": "张三", "grower_id": "MZ-0417", "product": "apple", "variety": "红富士",
            "origin_village": "石屏县宝秀镇", "origin_plot": "3号地", "harvest_date": "2026-12-01",
            "received_weight_kg": 1250.0,
        }]},
    )

    code: str = Field(min_length=1, max_length=40, description="Lot code, unique.")
    grower: str = Field(min_length=1, max_length=100, description="Grower's name.")
    grower_id: str = Field("", max_length=40, description="Grower's ID (e.g. cooperative member number).")
    product: str = Field("", max_length=32, description="Product; must be the one the line's recipe grades (empty: that one).")
    variety: str = Field("", max_length=64)
    origin_village: str = Field("", max_length=100)
    origin_plot: str = Field("", max_length=100)
    harvest_date: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD.")
    received_weight_kg: float | None = Field(None, ge=0, le=1_000_000, strict=True, description="Weight received, for the yield.")
    platform_trace_code: str | None = _TRACE_CODE_FIELD
    certificates: list[CertificateIn] = Field(
        default_factory=list, max_length=50, description="The grower's 承诺达标合格证 received with the fruit."
    )


class LotCounts(BaseModel):
    fruit_total: int
    weight_kg: float
    late_total: int
    quality_classes: dict[str, int]
    size_classes: dict[str, int]


class LotOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_LOT_EXAMPLE]})

    id: int
    code: str
    line: str
    grower: str
    grower_id: str
    product: str
    variety: str
    origin_village: str
    origin_plot: str
    harvest_date: date | None
    received_weight_kg: float | None
    recipe: str = Field(description="Recipe name.")
    recipe_hash: str | None = Field(description="SHA-256 of the exact recipe text it is graded by (GET /api/v1/recipes/{hash}).")
    started_at: datetime | None
    ended_at: datetime | None
    started_by: str
    closed_by: str | None
    platform_trace_code: str | None = Field(None, description="The national platform's 追溯码 (opaque), if given.")
    open: bool
    counts: LotCounts | None = Field(None, description="For the lot open on this line: fruit graded since the line started.")
    certificates: list[CertificateOut] | None = Field(
        None, description="GET /api/v1/lots/{id} only: the 合格证 received with the lot."
    )


class LotSwitchOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"lot": _LOT_EXAMPLE, "closed_lot": None, "closed_cartons": []}]})

    lot: LotOut
    closed_lot: LotOut | None = Field(description="The lot this one replaced (a switch), if one was open.")
    closed_cartons: list[int] = Field(description="Cartons closed with the lot that was replaced or closed.")


class LotPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_LOT_EXAMPLE], "next_cursor": None}]})

    items: list[LotOut]
    next_cursor: str | None


def lot_out(lot: Lot, handle: Any | None = None) -> LotOut:
    counts = None
    if handle is not None and handle.runtime.lot is not None and handle.runtime.lot.id == lot.id:
        counts = LotCounts(**handle.lot_stats.of(lot.id))
    return LotOut(
        id=lot.id, code=lot.code, line=lot.line, grower=lot.grower, grower_id=lot.grower_id, product=lot.product,
        variety=lot.variety, origin_village=lot.origin_village, origin_plot=lot.origin_plot,
        harvest_date=lot.harvest_date, received_weight_kg=lot.received_weight_kg, recipe=lot.recipe,
        recipe_hash=lot.recipe_hash, started_at=as_utc(lot.started_at), ended_at=as_utc(lot.ended_at),
        started_by=lot.started_by, closed_by=lot.closed_by, platform_trace_code=lot.platform_trace_code,
        open=lot.is_open, counts=counts,
    )


def live_lot(handle: Any) -> dict[str, Any]:
    """The open lot and its counts, pushed on the live feed (``lot``); ``{"lot": null}`` when none."""
    lot = handle.runtime.lot
    if lot is None:
        return {"lot": None}
    return {"lot": lot_out(lot, handle).model_dump(mode="json")}


def who_text(who: Any) -> str:
    return f"{who.kind}:{who.name}"


async def find_lot(handle: Any, lot_id: int) -> Lot:
    try:
        return await asyncio.to_thread(lot_store.get_lot, handle.engine, lot_id)
    except LotNotFound as exc:
        raise NotFoundProblem(str(exc)) from exc


@router.post("", response_model=LotSwitchOut, responses=documented(409))
async def start_lot(request: Request, body: LotStartIn, who: OperatorCaller, audit: Audit) -> LotSwitchOut:
    """Start a lot on this line, graded by the line's recipe. A lot already open is closed at the
    same cup boundary (a switch): every fruit is recorded against the lot open when it was graded."""
    handle = get_handle(request)
    fields = body.model_dump(exclude={"certificates"})
    try:
        fields["harvest_date"] = date.fromisoformat(body.harvest_date) if body.harvest_date else None
    except ValueError as exc:
        raise InvalidParameter("body.harvest_date", "not a date (YYYY-MM-DD)") from exc
    details = LotDetails(**fields, certificates=tuple(c.certificate() for c in body.certificates))
    try:
        switch = await handle.lots.start(details, by=who_text(who))
    except ReceivingError as exc:
        raise InvalidParameter(f"body.{exc.field}", exc.message) from exc
    except LotError as exc:
        await audit(who, "lot.start", target=body.code, outcome="refused", detail=str(exc))
        raise Conflict(str(exc)) from exc
    out = LotSwitchOut(
        lot=lot_out(switch.lot, handle), closed_lot=lot_out(switch.closed_lot) if switch.closed_lot else None,
        closed_cartons=[c.id for c in switch.closed_cartons],
    )
    await audit(who, "lot.start", target=switch.lot.code,
                before={"lot": switch.closed_lot.code if switch.closed_lot else None},
                after=body.model_dump(mode="json") | {"id": switch.lot.id, "recipe_hash": switch.lot.recipe_hash})
    return out


@router.get("", response_model=LotPage)
async def list_lots(
    request: Request,
    _: IntegratorCaller,
    grower: Annotated[str | None, Query(description="Grower name or ID.")] = None,
    product: str | None = None,
    on: Annotated[
        str | None,
        Query(alias="date", min_length=10, max_length=10, description="Lots started on this day (UTC), YYYY-MM-DD."),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> LotPage:
    """Lots, newest first, filtered by grower (name or ID), product and start date."""
    handle = get_handle(request)
    after = decode_cursor(cursor, int)
    try:
        day = date.fromisoformat(on) if on is not None else None
    except ValueError as exc:
        raise InvalidParameter("query.date", "not a date (YYYY-MM-DD)") from exc
    found = await asyncio.to_thread(
        lot_store.list_lots, handle.engine, grower=grower, product=product, on=day, after_id=after, limit=limit + 1
    )
    page = list(found[:limit])
    return LotPage(items=[lot_out(lot, handle) for lot in page],
                   next_cursor=encode_cursor(page[-1].id) if len(found) > limit else None)


@router.get("/current", response_model=LotOut, responses=documented(404))
async def current_lot(request: Request, _: IntegratorCaller) -> LotOut:
    """The lot open on this line, with its counts since the line started."""
    handle = get_handle(request)
    lot = handle.runtime.lot
    if lot is None:
        raise NotFoundProblem("no lot is open on this line")
    return lot_out(await find_lot(handle, lot.id), handle)


@router.get("/{lot_id}", response_model=LotOut, responses=documented(404))
async def get_lot(request: Request, lot_id: LotId, _: IntegratorCaller) -> LotOut:
    """The lot, with the 合格证 received with it."""
    handle = get_handle(request)
    out = lot_out(await find_lot(handle, lot_id), handle)
    received = await asyncio.to_thread(lot_certificates, handle.engine, lot_id)
    return out.model_copy(update={"certificates": [certificate_out(c) for c in received]})


class TraceCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"platform_trace_code": "5300000012345678"}]})

    platform_trace_code: str | None = _TRACE_CODE_FIELD


@router.put("/{lot_id}/platform-trace-code", response_model=LotOut, responses=documented(404))
async def put_platform_trace_code(
    request: Request, lot_id: LotId, body: TraceCodeIn, who: SupervisorCaller, audit: Audit
) -> LotOut:
    """Set (or, with null or blank, clear) the lot's 追溯码 as the national platform issued it,
    often after receiving. Its cartons' labels print it from then on (a reprint carries it)."""
    handle = get_handle(request)
    lot = await find_lot(handle, lot_id)
    try:
        before, after = await asyncio.to_thread(set_platform_trace_code, handle.engine, lot_id, body.platform_trace_code)
    except ReceivingError as exc:
        await audit(who, "lot.trace_code", target=lot.code, outcome="refused", detail=exc.message)
        raise InvalidParameter(f"body.{exc.field}", exc.message) from exc
    await audit(who, "lot.trace_code", target=lot.code, before={"platform_trace_code": before},
                after={"platform_trace_code": after})

    def refresh() -> None:  # the open lot as the live feed shows it (loop-owned: between decisions)
        current = handle.runtime.lot
        if current is not None and current.id == lot_id:
            handle.runtime.lot = replace(current, platform_trace_code=after)

    await handle.runtime.between_decisions(refresh)
    return lot_out(await find_lot(handle, lot_id), handle)


@router.get("/{lot_id}/certificates", response_model=CertificatePage, responses=documented(404))
async def list_certificates(request: Request, lot_id: LotId, _: IntegratorCaller) -> CertificatePage:
    """The 合格证 received with the lot, in the order they were recorded."""
    handle = get_handle(request)
    await find_lot(handle, lot_id)
    found = await asyncio.to_thread(lot_certificates, handle.engine, lot_id)
    return CertificatePage(items=[certificate_out(c) for c in found])


@router.post("/{lot_id}/certificates", response_model=CertificateOut, responses=documented(404))
async def post_certificate(
    request: Request, lot_id: LotId, body: CertificateIn, who: OperatorCaller, audit: Audit
) -> CertificateOut:
    """Record a 承诺达标合格证 the grower handed over with the lot (open or closed)."""
    handle = get_handle(request)
    lot = await find_lot(handle, lot_id)
    try:
        stored = await asyncio.to_thread(
            record_certificate, handle.engine, lot_id, body.certificate(), at=datetime.now(UTC), by=who_text(who)
        )
    except ReceivingError as exc:
        await audit(who, "lot.certificate", target=lot.code, outcome="refused", detail=exc.message)
        raise InvalidParameter(f"body.{exc.field.removeprefix('certificate.')}", exc.message) from exc
    except LotNotFound as exc:
        raise NotFoundProblem(str(exc)) from exc
    out = certificate_out(stored)
    await audit(who, "lot.certificate", target=lot.code, after=out.model_dump(mode="json"))
    return out


@router.post("/{lot_id}/close", response_model=LotSwitchOut, responses=documented(404, 409))
async def close_lot(request: Request, lot_id: LotId, who: OperatorCaller, audit: Audit) -> LotSwitchOut:
    """Close the lot: intake stops first (no fruit is graded without a lot), then the lot and its
    open cartons are closed. Start the next lot, then the line."""
    handle = get_handle(request)
    await find_lot(handle, lot_id)
    try:
        switch = await handle.lots.close(lot_id, by=who_text(who))
    except LotError as exc:
        await audit(who, "lot.close", target=str(lot_id), outcome="refused", detail=str(exc))
        raise Conflict(str(exc)) from exc
    await audit(who, "lot.close", target=switch.lot.code, before={"open": True}, after={"open": False})
    return LotSwitchOut(lot=lot_out(switch.lot), closed_lot=None, closed_cartons=[c.id for c in switch.closed_cartons])


_PACKOUT_EXAMPLE: dict[str, Any] = {
    "fruit": 3, "weight_kg": 0.6124,
    "cells": [{"quality_class": "extra", "size_class": "75-80", "fruit": 2, "weight_kg": 0.4101, "weighed_fruit": 2,
               "mean_weight_g": 205.1, "fruit_percent": 66.67, "weight_percent": 66.97}],
    "quality_classes": [], "rejects": {}, "recheck": {}, "recirculated": {}, "late": {}, "cartons": [],
    "lot": {"id": 12, "code": "2026-1202-003"}, "yield_percent": None,
}


class PackoutOut(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_PACKOUT_EXAMPLE]})

    fruit: int = Field(description="Every fruit row of the lot.")
    weight_kg: float = Field(description="Sum of the weighed fruit, to the milligram.")
    cells: list[dict[str, Any]] = Field(description="Quality class x size class: fruit, kg, mean g, % of fruit and of kg.")
    quality_classes: list[dict[str, Any]]
    rejects: dict[str, Any] = Field(description="Cull: out of every class.")
    recheck: dict[str, Any]
    recirculated: dict[str, Any] = Field(description="Not late, but no outlet could take them (all full).")
    late: dict[str, Any] = Field(description="Their decision was not written in time: they recirculated.")
    cartons: list[dict[str, Any]] = Field(description="Cartons per class and size.")
    lot: dict[str, Any]
    yield_percent: float | None = Field(description="Weighed kg / received kg.")


async def packout_report(handle: Any, lot: Lot) -> dict[str, Any]:
    report = await asyncio.to_thread(lot_packout, handle.engine, lot.id)
    out = report.as_dict(lot, handle.recipe.quality_class_ids())
    out["lot"]["started_at"] = as_utc(out["lot"]["started_at"])
    out["lot"]["ended_at"] = as_utc(out["lot"]["ended_at"])
    return out


def wants_csv(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept.split("text/csv")[0]


@router.get(
    "/{lot_id}/packout", response_model=PackoutOut, responses={**documented(404), 200: {"content": {"text/csv": {}}}}
)
async def packout(request: Request, lot_id: LotId, _: IntegratorCaller) -> Any:
    """The lot's pack-out, computed in SQL from its fruit rows; CSV with `Accept: text/csv`."""
    handle = get_handle(request)
    report = await packout_report(handle, await find_lot(handle, lot_id))
    if wants_csv(request):
        return Response(packout_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="packout-{lot_id}.csv"'})
    return report


@router.get("/{lot_id}/packout/page", response_class=HTMLResponse, include_in_schema=False)
async def packout_page(request: Request, lot_id: LotId, _: IntegratorCaller, lang: str = "zh-CN") -> HTMLResponse:
    """The pack-out as a printable page for the grower (Chinese; `?lang=en` for English), with a
    class x size chart."""
    from api.reports import packout_html

    handle = get_handle(request)
    lot = await find_lot(handle, lot_id)
    report = await packout_report(handle, lot)
    return HTMLResponse(packout_html(report, handle.recipe, lang))


__all__ = ["SupervisorCaller", "router"]


def price_table(handle: Any) -> Any:
    from grading.lots.settlement import load_price_table

    prices = getattr(handle, "prices", None)
    return prices if prices is not None else load_price_table()


class SettlementOut(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "lot": {"id": 12, "code": "2026-1202-003", "grower": "张三"}, "currency": "CNY", "weight_kg": 1034.2,
        "lines": [{"quality_class": "extra", "size_class": "80-85", "fruit": 1800, "weight_kg": 412.5,
                   "price_cny_per_kg": 9.0, "value_cny": 3712.5}],
        "gross_cny": 6120.4,
        "deductions": [{"name": "分级包装费 grading and packing", "kind": "per_kg", "rate": 0.3, "amount_cny": 310.26}],
        "payable_cny": 5810.14,
    }]})

    lot: dict[str, Any]
    currency: str
    weight_kg: float = Field(description="Weighed kg of the lot.")
    lines: list[dict[str, Any]] = Field(description="Per quality class x size class: fruit, kg, CNY/kg, value.")
    gross_cny: float
    deductions: list[dict[str, Any]]
    payable_cny: float


async def settlement_report(handle: Any, lot: Lot) -> dict[str, Any]:
    from grading.lots.settlement import settlement

    packout_data = await asyncio.to_thread(lot_packout, handle.engine, lot.id)
    lot_info = {"id": lot.id, "code": lot.code, "grower": lot.grower, "grower_id": lot.grower_id,
                "product": lot.product, "received_weight_kg": lot.received_weight_kg, "recipe_hash": lot.recipe_hash}
    return settlement(packout_data, price_table(handle), lot_info)


@router.get(
    "/{lot_id}/settlement", response_model=SettlementOut,
    responses={**documented(404), 200: {"content": {"text/csv": {}}}},
)
async def lot_settlement(request: Request, lot_id: LotId, _: SupervisorCaller) -> Any:
    """What the grower is owed for the lot: kg and value per class x size from the price table,
    less deductions. CSV with `Accept: text/csv`."""
    from grading.lots.settlement import settlement_csv

    handle = get_handle(request)
    report = await settlement_report(handle, await find_lot(handle, lot_id))
    if wants_csv(request):
        return Response(settlement_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="settlement-{lot_id}.csv"'})
    return report


@router.get("/{lot_id}/settlement/page", response_class=HTMLResponse, include_in_schema=False)
async def settlement_page(request: Request, lot_id: LotId, _: SupervisorCaller, lang: str = "zh-CN") -> HTMLResponse:
    """The settlement as a printable page (Chinese; `?lang=en` for English)."""
    from api.reports import settlement_html

    handle = get_handle(request)
    report = await settlement_report(handle, await find_lot(handle, lot_id))
    return HTMLResponse(settlement_html(report, handle.recipe, lang))


class WhatIfIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"recipe": "apple"}, {"recipe_hash": "9f2c41d0c7b5e1e8a6a0f1e25b7c3d7a4c8b1f0e2d3c4b5a69788776655443322"},
        {"recipe_text": "format_version = 1\nname = \"apple-strict\"\n..."},
    ]})

    recipe: str | None = Field(None, description="A built-in recipe name.")
    recipe_hash: str | None = Field(None, description="A stored recipe version (GET /api/v1/recipes).")
    recipe_text: str | None = Field(None, max_length=200_000, description="A recipe's TOML text, e.g. one with edited limits.")


class WhatIfOut(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "actual": {"fruit": 34, "weight_kg": 5.4, "value_cny": 40.1}, "whatif": {"fruit": 34, "weight_kg": 5.4, "value_cny": 37.2},
        "value_difference_cny": -2.9, "changed_fruit": 10,
        "changes": [{"from_quality": "extra", "from_size": "70-75", "to_quality": "class_i", "to_size": "70-75", "fruit": 10}],
        "changed_uids": ["0f8e..."],
    }]})

    actual: dict[str, Any] = Field(description="The lot's pack-out as graded, with its value.")
    whatif: dict[str, Any] = Field(description="The same fruit under the other recipe.")
    value_difference_cny: float = Field(description="whatif - actual, from the price table.")
    changed_fruit: int
    changes: list[dict[str, Any]] = Field(description="Fruit that changed class or size, by from/to.")
    changed_uids: list[str] = Field(description="Their record uids (at most 1000).")


@router.post("/{lot_id}/whatif", response_model=WhatIfOut, responses=documented(404, 409, 422))
async def whatif(request: Request, lot_id: LotId, body: WhatIfIn, who: SupervisorCaller, audit: Audit) -> dict[str, Any]:
    """Re-grade a closed lot's stored measurements under another recipe (or the same one with
    edited limits); both pack-outs side by side, with the value difference. Changes nothing."""
    from api.problems import InvalidParameter
    from grading.lots.recipes import get_recipe_version, recipe_of_version, validate_recipe_text
    from grading.lots.whatif import regrade_lot, whatif_report
    from grading.recipe import RecipeError, load_recipe

    handle = get_handle(request)
    lot = await find_lot(handle, lot_id)
    if lot.is_open:
        raise Conflict(f"lot {lot.code} is open: close it first")
    given = [k for k in ("recipe", "recipe_hash", "recipe_text") if getattr(body, k) is not None]
    if len(given) != 1:
        raise InvalidParameter("body", "give exactly one of recipe, recipe_hash, recipe_text")
    try:
        if body.recipe is not None:
            recipe = load_recipe(body.recipe)
        elif body.recipe_hash is not None:
            version = await asyncio.to_thread(get_recipe_version, handle.engine, body.recipe_hash)
            if version is None:
                raise NotFoundProblem(f"no recipe version {body.recipe_hash}")
            recipe = recipe_of_version(version)
        else:
            recipe = validate_recipe_text(body.recipe_text or "", "body.recipe_text")
    except RecipeError as exc:
        issue = exc.issues[0]
        raise InvalidParameter(f"body.{given[0]}", f"{issue.field}: {issue.message}") from exc
    result = await asyncio.to_thread(regrade_lot, handle.engine, lot.id, recipe)
    report = whatif_report(result, price_table(handle), recipe.quality_class_ids())
    await audit(who, "lot.whatif", target=lot.code, detail=f"recipe {recipe.name}: {report['changed_fruit']} fruit change")
    return report
