"""What the built-in GS1 Digital Link resolver shows: the consumer view and where it comes from.

Owns ``ConsumerView`` (one carton, or one lot or one product when the URI stops at the lot or
the GTIN), the ``TraceLookup`` interface the resolver reads through, ``resolve`` (a Digital Link
URI to a view, or None for anything malformed or unknown), the RFC 9264 linkset, and an
in-memory lookup for tests and demos. The store-backed lookup is built where cartons live.
Grower names reach a view already under the privacy setting (``present_grower``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from grading.trace.gs1 import DigitalLink, GS1Error, parse_digital_link


class ClassShare(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quality_class: str = Field(description="特级, 一级, 二级, ...")
    fruit: int = Field(ge=0)
    share: float = Field(ge=0, le=1, description="Fraction of the lot's graded fruit.")


class LotSummary(BaseModel):
    """How the lot graded, for the consumer page."""

    model_config = ConfigDict(extra="forbid")

    fruit_graded: int = Field(ge=0)
    mean_weight_g: float | None = None
    classes: list[ClassShare] = Field(default_factory=list)


class TemperaturePoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: datetime
    temperature_c: float


class TemperatureSeries(BaseModel):
    """One cold room's readings while the lot was in it (from the cold-chain work)."""

    model_config = ConfigDict(extra="forbid")

    room: str
    points: list[TemperaturePoint]


class ConsumerView(BaseModel):
    """What a scan of a carton's QR shows (lot- or product-level when serial or lot is absent)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "gtin": "16901234567899", "lot": "YN2509A", "serial": "123", "product": "沃柑",
            "quality_class": "特级", "size_class": "L", "pack_date": "2025-09-15", "net_weight_g": 12500,
            "fruit_count": 48, "origin_village": "华宁县盘溪镇大龙潭村", "grower": "张**",
            "harvest_date": "2025-09-13", "lot_summary": {"fruit_graded": 5210, "mean_weight_g": 251.0,
            "classes": [{"quality_class": "特级", "fruit": 2100, "share": 0.403}]},
            "temperatures": [{"room": "冷库1", "points": [{"at": "2025-09-15T12:00:00+08:00", "temperature_c": 4.2}]}],
            "platform_trace_code": None,
        }]},
    )

    gtin: str
    lot: str | None = None
    serial: str | None = None
    product: str
    quality_class: str | None = None
    size_class: str | None = None
    pack_date: date | None = None
    net_weight_g: int | None = None
    fruit_count: int | None = None
    origin_village: str | None = None
    grower: str | None = Field(None, description="Already under the privacy setting: 张**, or absent.")
    harvest_date: date | None = None
    lot_summary: LotSummary | None = None
    temperatures: list[TemperatureSeries] = Field(default_factory=list)
    platform_trace_code: str | None = None


class TraceLookup(Protocol):
    def view(self, gtin: str, lot: str | None, serial: str | None) -> ConsumerView | None:
        """The carton (serial given), lot (lot given) or product (GTIN only); None if unknown."""
        ...


class InMemoryTraceLookup:
    """Views keyed by (gtin, lot, serial); lot and product views are found by their keys too."""

    def __init__(self, views: list[ConsumerView] | None = None) -> None:
        self._views: dict[tuple[str, str | None, str | None], ConsumerView] = {}
        for view in views or []:
            self.add(view)

    def add(self, view: ConsumerView) -> None:
        self._views[(view.gtin, view.lot, view.serial)] = view

    def view(self, gtin: str, lot: str | None, serial: str | None) -> ConsumerView | None:
        found = self._views.get((gtin, lot, serial))
        if found is not None or serial is not None:
            return found
        # a lot or product page from the first carton of it, without the carton's own fields
        for (g, l_, _s), v in self._views.items():
            if g == gtin and (lot is None or l_ == lot):
                keep_lot = lot is not None
                return v.model_copy(update={
                    "serial": None, "net_weight_g": None, "fruit_count": None,
                    "lot": v.lot if keep_lot else None,
                    **({} if keep_lot else {"origin_village": None, "grower": None, "harvest_date": None,
                                            "lot_summary": None, "temperatures": [], "pack_date": None,
                                            "platform_trace_code": None, "quality_class": v.quality_class,
                                            "size_class": v.size_class}),
                })
        return None


def resolve(lookup: TraceLookup, uri: str) -> tuple[ConsumerView, DigitalLink] | None:
    """The view a Digital Link URI names and the parsed link, or None when the URI is
    malformed, is not a GTIN link (or names a variant gradeline does not issue: 22, 235), or
    names nothing known. Never raises for bad input."""
    try:
        link = parse_digital_link(uri)
    except GS1Error:
        return None
    if link.primary_key.ai != "01" or link.get("22") is not None or link.get("235") is not None:
        return None
    view = lookup.view(link.primary_key.value, link.get("10"), link.get("21"))
    return None if view is None else (view, link)


GS1_VOC = "https://gs1.org/voc/"


def linkset(anchor: str, page_url: str, json_url: str) -> dict[str, object]:
    """RFC 9264 linkset (application/linkset+json) of the links this resolver has for ``anchor``."""
    return {
        "linkset": [{
            "anchor": anchor,
            f"{GS1_VOC}defaultLink": [{"href": page_url, "type": "text/html", "hreflang": ["zh-CN"], "title": "产品追溯信息"}],
            f"{GS1_VOC}pip": [
                {"href": page_url, "type": "text/html", "hreflang": ["zh-CN"], "title": "产品追溯信息"},
                {"href": json_url, "type": "application/json", "title": "Traceability data (JSON)"},
            ],
            f"{GS1_VOC}traceability": [{"href": json_url, "type": "application/json", "title": "追溯数据"}],
        }]
    }
