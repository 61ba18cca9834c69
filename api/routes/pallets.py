"""Pallets over HTTP: create one (it gets its SSCC), put cartons on and take them off, ship it,
its SSCC label (preview, ZPL, printing). Thin: the rules are ``grading.trace.pallets``'.

Reading is for integrators (like cartons); building, shipping and printing are the operator's,
and every one of them is audit-logged, refusals included. A line without ``[trace]`` has no
SSCCs to give: every route answers 409 saying so.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import Audit, IntegratorCaller, OperatorCaller
from api.paging import Cursor, Limit, decode_cursor, encode_cursor
from api.problems import BadGateway, Conflict, NotFoundProblem, ProblemError, documented
from api.routes.deps import get_handle
from api.routes.lots import who_text
from drivers.printer import PrinterError
from grading.trace import pallets as domain
from grading.trace.certificates import CenterCertificate
from grading.trace.labels import PalletLabel, RenderedLabel, render_pallet

router = APIRouter(prefix="/api/v1", tags=["pallets"])
PalletId = Annotated[int, Path(ge=1, le=2**62, description="Pallet id.")]
CartonId = Annotated[int, Path(ge=1, le=2**62, description="Carton id.")]
_MEDIA = {"png": "image/png", "pdf": "application/pdf", "zpl": "application/zpl"}


class Unprocessable(ProblemError):
    status = 422


class PalletIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination: str | None = Field(None, min_length=1, max_length=200, description="Where it goes, if known.")


class PalletCartonIn(BaseModel):
    """One of the two: the carton's id (clicked) or its code as scanned (element string in any
    scanner form, bracketed HRI, or Digital Link URI)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"carton_id": 87}, {"code": "]d20116901234567899310300987613261202" + "10L2\u001d21line-1.87"},
    ]})

    carton_id: int | None = Field(None, ge=1, le=2**62)
    code: str | None = Field(None, min_length=1, max_length=400)

    @model_validator(mode="after")
    def _one(self) -> PalletCartonIn:
        if (self.carton_id is None) == (self.code is None):
            raise ValueError("give either carton_id or code")
        return self


class ShipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination: str | None = Field(None, min_length=1, max_length=200)


class CodedCartonOut(BaseModel):
    """A closed, coded carton as the pallet views list it."""

    carton_id: int
    gtin: str
    serial: str
    lot: str
    quality_class: str
    size_class: str | None
    net_weight_g: int
    fruit_count: int | None


class PalletCartonOut(CodedCartonOut):
    added_at: datetime
    added_by: str


_PALLET_EXAMPLE: dict[str, Any] = {
    "id": 4, "sscc": "369012341000000014", "hri": "(00)369012341000000014", "line": "line-1",
    "created_at": "2026-12-02T08:00:00Z", "created_by": "user:wang", "shipped_at": None, "shipped_by": None,
    "destination": None, "carton_count": 0, "net_weight_g": 0, "lots": [], "cartons": [],
}


class PalletOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_PALLET_EXAMPLE]})

    id: int
    sscc: str = Field(description="SSCC-18, AI (00).")
    hri: str
    line: str
    created_at: datetime
    created_by: str
    shipped_at: datetime | None
    shipped_by: str | None
    destination: str | None
    carton_count: int
    net_weight_g: int
    lots: list[str] = Field(description="The grower lots of the cartons now on it.")
    cartons: list[PalletCartonOut]
    certificate: CenterCertificate | None = Field(
        None, description="The packing center's own 合格证: a pallet of more than one lot gets it when it ships.")


class PalletPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_PALLET_EXAMPLE], "next_cursor": None}]})

    items: list[PalletOut]
    next_cursor: str | None


class LooseCartonOut(CodedCartonOut):
    closed_at: datetime | None


class LooseCartonPage(BaseModel):
    """The newest first, at most ``limit``: a touch screen lists the latest, so no further page."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [{
        "carton_id": 87, "gtin": "19521234000010", "serial": "line-1.87", "lot": "2026-1202-003",
        "quality_class": "extra", "size_class": None, "net_weight_g": 9876, "fruit_count": 48,
        "closed_at": "2026-12-02T08:01:00Z",
    }], "next_cursor": None}]})

    items: list[LooseCartonOut]
    next_cursor: None = None


class PalletPrintOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "pallet_id": 4, "sscc": "369012341000000014", "printer": "192.168.1.40:9100", "bytes": 48213,
    }]})

    pallet_id: int
    sscc: str
    printer: str = Field(description="host:port the job went to.")
    bytes: int = Field(description="Size of the ZPL job.")


def _out(pallet: domain.Pallet) -> dict[str, Any]:
    return {
        "id": pallet.id, "sscc": pallet.sscc, "hri": f"(00){pallet.sscc}", "line": pallet.line,
        "created_at": pallet.created_at, "created_by": pallet.created_by, "shipped_at": pallet.shipped_at,
        "shipped_by": pallet.shipped_by, "destination": pallet.destination, "carton_count": pallet.carton_count,
        "net_weight_g": pallet.net_weight_g, "lots": list(pallet.lots), "certificate": pallet.certificate,
        "cartons": [{
            "carton_id": c.carton_id, "gtin": c.gtin, "serial": c.serial, "lot": c.lot_code,
            "quality_class": c.quality_class, "size_class": c.size_class, "net_weight_g": c.net_weight_g,
            "fruit_count": c.fruit_count, "added_at": c.added_at, "added_by": c.added_by,
        } for c in pallet.cartons],
    }


def _traced(request: Request) -> Any:
    handle = get_handle(request)
    if handle.config.trace is None or getattr(handle, "serials", None) is None:
        raise Conflict("this line has no [trace] configuration: it gives no SSCCs, so it builds no pallets")
    return handle


def _problem(exc: domain.PalletError) -> ProblemError:
    if isinstance(exc, domain.PalletNotFound):
        return NotFoundProblem(str(exc))
    if isinstance(exc, domain.PalletConflict):
        return Conflict(str(exc))
    return Unprocessable(str(exc))


async def _found(handle: Any, pallet_id: int) -> domain.Pallet:
    pallet = await asyncio.to_thread(domain.get_pallet, handle.engine, pallet_id)
    if pallet is None:
        raise NotFoundProblem(f"no pallet {pallet_id}")
    return pallet


@router.post("/pallets", response_model=PalletOut, responses=documented(409))
async def create_pallet(request: Request, who: OperatorCaller, audit: Audit, body: PalletIn | None = None) -> Any:
    """A new, empty pallet with its SSCC (from the line's durable counter: never given twice)."""
    handle = _traced(request)
    pallet = await asyncio.to_thread(
        domain.create_pallet, handle.engine, handle.config.trace, handle.serials, line=handle.config.line.name,
        at=datetime.now(UTC), by=who_text(who), destination=body.destination if body else None,
    )
    await audit(who, "pallet.create", target=pallet.sscc, after={"id": pallet.id, "destination": pallet.destination})
    return _out(pallet)


@router.get("/pallets", response_model=PalletPage, responses=documented(409))
async def list_pallets(
    request: Request, _: IntegratorCaller,
    shipped: Annotated[bool | None, Query(description="Only shipped (true) or open (false) pallets.")] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> Any:
    """The line's pallets, newest first."""
    handle = _traced(request)
    after = decode_cursor(cursor, int)
    found = await asyncio.to_thread(
        domain.list_pallets, handle.engine, line=handle.config.line.name, shipped=shipped, after_id=after,
        limit=limit + 1,
    )
    page = found[:limit]
    return {"items": [_out(p) for p in page], "next_cursor": encode_cursor(page[-1].id) if len(found) > limit else None}


@router.get("/pallets/loose-cartons", response_model=LooseCartonPage, responses=documented(409))
async def loose_cartons(
    request: Request, _: IntegratorCaller, limit: Annotated[int, Query(ge=1, le=200)] = 30,
) -> Any:
    """The line's closed, coded cartons on no pallet, newest first: what can go on one."""
    handle = _traced(request)
    found = await asyncio.to_thread(domain.loose_cartons, handle.engine, line=handle.config.line.name, limit=limit)
    return {"items": found, "next_cursor": None}


@router.get("/pallets/{pallet_id}", response_model=PalletOut, responses=documented(404, 409))
async def get_pallet(request: Request, pallet_id: PalletId, _: IntegratorCaller) -> Any:
    """One pallet with the cartons now on it."""
    return _out(await _found(_traced(request), pallet_id))


@router.post("/pallets/{pallet_id}/cartons", response_model=PalletOut, responses=documented(404, 409, 422))
async def add_carton(request: Request, pallet_id: PalletId, body: PalletCartonIn, who: OperatorCaller, audit: Audit) -> Any:
    """Put a closed, coded carton on the pallet, by id or by its scanned code."""
    handle = _traced(request)
    asked = {"carton_id": body.carton_id} if body.carton_id is not None else {"code": body.code}
    try:
        pallet = await asyncio.to_thread(
            domain.add_carton, handle.engine, pallet_id, carton_id=body.carton_id, code=body.code,
            at=datetime.now(UTC), by=who_text(who),
        )
    except domain.PalletError as exc:
        await audit(who, "pallet.carton.add", target=str(pallet_id), outcome="refused", after=asked, detail=str(exc))
        raise _problem(exc) from exc
    added = pallet.cartons[-1]
    await audit(who, "pallet.carton.add", target=pallet.sscc,
                after={"carton_id": added.carton_id, "serial": added.serial, "carton_count": pallet.carton_count})
    return _out(pallet)


@router.delete("/pallets/{pallet_id}/cartons/{carton_id}", response_model=PalletOut, responses=documented(404, 409))
async def remove_carton(
    request: Request, pallet_id: PalletId, carton_id: CartonId, who: OperatorCaller, audit: Audit,
) -> Any:
    """Take a carton off the pallet (before it ships); the pallet's history keeps it."""
    handle = _traced(request)
    try:
        pallet = await asyncio.to_thread(
            domain.remove_carton, handle.engine, pallet_id, carton_id, at=datetime.now(UTC), by=who_text(who),
        )
    except domain.PalletError as exc:
        await audit(who, "pallet.carton.remove", target=str(pallet_id), outcome="refused",
                    before={"carton_id": carton_id}, detail=str(exc))
        raise _problem(exc) from exc
    await audit(who, "pallet.carton.remove", target=pallet.sscc, before={"carton_id": carton_id},
                after={"carton_count": pallet.carton_count})
    return _out(pallet)


@router.post("/pallets/{pallet_id}/ship", response_model=PalletOut, responses=documented(404, 409))
async def ship_pallet(request: Request, pallet_id: PalletId, who: OperatorCaller, audit: Audit, body: ShipIn | None = None) -> Any:
    """The pallet leaves: shipped now, its cartons fixed from here on. An empty pallet is refused."""
    handle = _traced(request)
    try:
        pallet = await asyncio.to_thread(
            domain.ship_pallet, handle.engine, pallet_id, at=datetime.now(UTC), by=who_text(who),
            destination=body.destination if body else None,
            certifier=domain.certifier_of(handle.config.trace, handle.serials.line_id, handle.recipe.product),
        )
    except domain.PalletError as exc:
        await audit(who, "pallet.ship", target=str(pallet_id), outcome="refused", detail=str(exc))
        raise _problem(exc) from exc
    await audit(who, "pallet.ship", target=pallet.sscc, before={"shipped": False},
                after={"shipped": True, "carton_count": pallet.carton_count, "destination": pallet.destination,
                       "certificate": pallet.certificate.number if pallet.certificate else None})
    return _out(pallet)


async def _rendered(handle: Any, pallet_id: int) -> tuple[domain.Pallet, PalletLabel, RenderedLabel]:
    pallet = await _found(handle, pallet_id)
    label = domain.pallet_label_of(pallet, handle.config.trace, handle.recipe)
    return pallet, label, await asyncio.to_thread(render_pallet, label)


class PalletLabelOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "pallet_id": 4, "sscc": "369012341000000014", "hri": "(00)369012341000000014", "packing_center": "华宁柑橘包装中心",
        "carton_count": 2, "net_weight_g": 20001, "contents": ["沃柑 特级 L × 2 箱"], "lots": ["YN-A", "YN-B"],
        "created_at": "2026-12-02T08:00:00Z", "shipped_at": "2026-12-02T10:00:00Z", "destination": "昆明",
        "certificate_number": "line-1.Z3", "notes": [],
    }]})

    pallet_id: int
    sscc: str
    hri: str = Field(description="As printed under the GS1-128.")
    packing_center: str
    carton_count: int
    net_weight_g: int
    contents: list[str] = Field(description="One line per product / class / size with its carton count.")
    lots: list[str]
    created_at: datetime
    shipped_at: datetime | None
    destination: str | None
    certificate_number: str | None = Field(description="The center's 合格证 of a mixed-lot pallet, once shipped.")
    notes: list[str] = Field(description="What the drawing had to leave out.")


@router.get(
    "/pallets/{pallet_id}/label", response_model=PalletLabelOut,
    responses={**documented(404, 409), 200: {"content": {m: {} for m in _MEDIA.values()}}},
)
async def pallet_label(
    request: Request, pallet_id: PalletId, _: IntegratorCaller,
    format: Annotated[Literal["png", "pdf", "zpl", "json"], Query(description="png (default), pdf, zpl or json.")] = "png",
) -> Any:
    """The pallet's SSCC label, 100 x 150 mm: PNG preview (default), PDF, the ZPL job, or what it
    says as JSON."""
    pallet, label, rendered = await _rendered(_traced(request), pallet_id)
    if format == "json":
        return {**asdict(label), "pallet_id": pallet.id, "hri": label.hri, "notes": list(rendered.notes)}
    if format == "zpl":
        body = rendered.zpl.encode()
    else:
        body = await asyncio.to_thread(rendered.png if format == "png" else rendered.pdf)
    return Response(body, media_type=_MEDIA[format], headers={"Cache-Control": "no-store"})


@router.post("/pallets/{pallet_id}/label/print", response_model=PalletPrintOut, responses=documented(404, 409, 502))
async def print_pallet_label(request: Request, pallet_id: PalletId, who: OperatorCaller, audit: Audit) -> Any:
    """Print (or reprint) the pallet's SSCC label on the line's label printer; audit-logged."""
    handle = _traced(request)
    printer = getattr(handle, "printer", None)
    if printer is None:
        await audit(who, "pallet.label.print", target=str(pallet_id), outcome="refused", detail="no printer")
        raise Conflict("no label printer is configured ([trace] printer_host)")
    pallet, _label, rendered = await _rendered(handle, pallet_id)
    job = rendered.zpl.encode()
    where = f"{printer.host}:{printer.port}"
    try:
        await printer.print_job(job)
    except PrinterError as exc:
        await audit(who, "pallet.label.print", target=pallet.sscc, outcome="failed", detail=str(exc))
        raise BadGateway(str(exc)) from exc
    await audit(who, "pallet.label.print", target=pallet.sscc, after={"printer": where, "bytes": len(job)})
    return {"pallet_id": pallet.id, "sscc": pallet.sscc, "printer": where, "bytes": len(job)}
