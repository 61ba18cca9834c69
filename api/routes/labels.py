"""A carton's label: preview (PNG, PDF) or ZPL, and printing it on the line's label printer.

``GET /api/v1/cartons/{id}/label`` reads (integrator, like the carton itself);
``POST /api/v1/cartons/{id}/label/print`` sends the ZPL job to the ``[trace]`` printer
(operator) and is audit-logged, so every reprint names who asked for it. The label is drawn
from the carton's stored code (``grading.trace.carton_codes.carton_label_of``) off the loop.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Audit, IntegratorCaller, OperatorCaller
from api.problems import BadGateway, Conflict, NotFoundProblem, documented
from api.routes.deps import get_handle
from drivers.printer import PrinterError
from grading.trace.carton_codes import carton_label_of
from grading.trace.codes import present_grower
from grading.trace.labels import CartonLabel, RenderedLabel, render

router = APIRouter(prefix="/api/v1", tags=["outlets and cartons"])
CartonId = Annotated[int, Path(ge=1, le=2**62, description="Carton id.")]
_MEDIA = {"png": "image/png", "pdf": "application/pdf", "zpl": "application/zpl"}


class PrintOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "carton_id": 87, "serial": "line-1.87", "printer": "192.168.1.40:9100", "bytes": 24816,
    }]})

    carton_id: int
    serial: str = Field(description="The carton's serial (AI 21) printed.")
    printer: str = Field(description="host:port the job went to.")
    bytes: int = Field(description="Size of the ZPL job.")


class LabelOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "carton_id": 87, "digital_link": "https://trace.example.cn/01/16901234567899/10/L2/21/line-1.87?13=261202&3103=009876",
        "hri": "(01)16901234567899(3103)009876(13)261202(10)L2(21)line-1.87", "product": "沃柑",
        "quality_class": "特级", "size_class": "L", "grower": "王*", "notes": [],
        "platform_trace_code": None, "certificate_lots": ["L2"], "certificate_number": None,
    }]})

    carton_id: int
    digital_link: str = Field(description="What the QR holds.")
    hri: str = Field(description="The element string as printed beside the DataMatrix.")
    product: str
    quality_class: str
    size_class: str
    grower: str | None = Field(description="As printed, under the privacy setting.")
    notes: list[str] = Field(description="What the drawing had to shorten or leave out.")
    platform_trace_code: str | None = Field(None, description="The lot's 追溯码 as printed (each lot's, for mixed lots).")
    certificate_lots: list[str] = Field(default_factory=list, description="The lots the 合格证 block lists.")
    certificate_number: str | None = Field(
        None, description="The packing center's own certificate number: cartons of more than one lot only."
    )


async def _rendered(request: Request, carton_id: int) -> tuple[CartonLabel, RenderedLabel]:
    handle = get_handle(request)
    trace = handle.config.trace
    if trace is None:
        raise NotFoundProblem("this line has no [trace] configuration: its cartons carry no codes")

    def draw() -> tuple[CartonLabel, RenderedLabel] | None:
        label = carton_label_of(handle.engine, trace, handle.recipe, carton_id)
        return None if label is None else (label, render(label))

    found = await asyncio.to_thread(draw)
    if found is None:
        raise NotFoundProblem(f"no coded carton {carton_id} (unknown, still open, or empty)")
    return found


@router.get(
    "/cartons/{carton_id}/label", response_model=LabelOut,
    responses={**documented(404), 200: {"content": {m: {} for m in _MEDIA.values()}}},
)
async def carton_label(
    request: Request, carton_id: CartonId, _: IntegratorCaller,
    format: Annotated[Literal["png", "pdf", "zpl", "json"], Query(description="png (default), pdf, zpl or json.")] = "png",
) -> Any:
    """A closed, coded carton's label, 100 x 150 mm: PNG preview (default), PDF, the ZPL job,
    or what it says as JSON."""
    label, rendered = await _rendered(request, carton_id)
    if format == "json":
        return {
            "carton_id": carton_id, "digital_link": label.digital_link, "hri": label.code.hri(),
            "product": label.product, "quality_class": label.quality_class, "size_class": label.size_class,
            "grower": present_grower(label.grower, label.grower_privacy), "notes": list(rendered.notes),
            "platform_trace_code": label.platform_trace_code, "certificate_lots": list(label.certificate.lots),
            "certificate_number": label.certificate.number,
        }
    if format == "zpl":
        body = rendered.zpl.encode()
    else:
        body = await asyncio.to_thread(rendered.png if format == "png" else rendered.pdf)
    return Response(body, media_type=_MEDIA[format], headers={"Cache-Control": "no-store"})


@router.post("/cartons/{carton_id}/label/print", response_model=PrintOut, responses=documented(404, 409, 502))
async def print_label(request: Request, carton_id: CartonId, who: OperatorCaller, audit: Audit) -> dict[str, Any]:
    """Print (or reprint) a carton's label on the line's label printer; audit-logged with who asked."""
    handle = get_handle(request)
    printer = getattr(handle, "printer", None)
    if printer is None:
        await audit(who, "carton.label.print", target=str(carton_id), outcome="refused", detail="no printer")
        raise Conflict("no label printer is configured ([trace] printer_host)")
    label, rendered = await _rendered(request, carton_id)
    job = rendered.zpl.encode()
    where = f"{printer.host}:{printer.port}"
    try:
        await printer.print_job(job)
    except PrinterError as exc:
        await audit(who, "carton.label.print", target=str(carton_id), outcome="failed", detail=str(exc))
        raise BadGateway(str(exc)) from exc
    await audit(who, "carton.label.print", target=str(carton_id),
                after={"serial": label.code.serial, "printer": where, "bytes": len(job)})
    return {"carton_id": carton_id, "serial": label.code.serial, "printer": where, "bytes": len(job)}
