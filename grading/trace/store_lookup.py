"""The consumer view of a scanned code, from the store: the resolver's ``TraceLookup`` in SQL.

Owns ``StoreTraceLookup``. A carton view comes from the coded carton's row (GTIN, serial,
pack date, the net weight read back from its element string, fruit count, class and size), its
lot's (origin village, harvest date, the grower under ``[trace] grower_privacy`` via
``present_grower``), the lot's grading summary (its pack-out, ``grading.lots.packout``), the
platform's 追溯码 of its lot (of each of its lots, for a carton of mixed lots) and the
temperature series of every cold room the lot stayed in (``grading.coldchain.history``: the
room's minute means over each stay). A lot view (GTIN and lot) is the same without the carton's
own fields, from the lot's first coded carton of that GTIN; a product view (GTIN only) names the
product, class and size the ``[trace] gtins`` entry is for. Nothing here speaks HTTP; blocking
(call off the event loop: the resolver route does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from grading.coldchain.history import ColdchainStore
from grading.lots.packout import lot_packout
from grading.recipe import Recipe
from grading.schema import cartons, lots
from grading.trace.certificates import carton_lots, joined
from grading.trace.codes import TraceConfig, present_grower
from grading.trace.gs1 import GS1Error, parse_unbracketed
from grading.trace.resolver import (
    ClassShare,
    ConsumerView,
    LotSummary,
    TemperaturePoint,
    TemperatureSeries,
)


class StoreTraceLookup:
    def __init__(
        self, engine: Engine, trace: TraceConfig, recipe: Recipe,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._trace = trace
        self._recipe = recipe
        self._wall_clock = wall_clock
        self._coldchain = ColdchainStore(engine, wall_clock)

    def view(self, gtin: str, lot: str | None, serial: str | None) -> ConsumerView | None:
        if lot is None and serial is None:
            return self._product_view(gtin)
        query = (
            select(cartons, lots.c.code.label("lot_code"))
            .select_from(cartons.join(lots, lots.c.id == cartons.c.lot_id))
            .where(cartons.c.gtin == gtin, cartons.c.serial.is_not(None))
        )
        if serial is not None:
            query = query.where(cartons.c.serial == serial)
        if lot is not None:
            query = query.where(lots.c.code == lot)
        with self._engine.connect() as conn:
            row = conn.execute(query.order_by(cartons.c.id).limit(1)).mappings().first()
            if row is None:
                return None
            lot_row = conn.execute(select(lots).where(lots.c.id == row["lot_id"])).mappings().one()
            # a carton of mixed lots ([lots] carry-over) shows every lot's 追溯码
            contributing = carton_lots(conn, int(row["id"])) if serial is not None else []
        view = self._carton_view(row, lot_row)
        trace_codes = joined([lot_row["platform_trace_code"], *(r["platform_trace_code"] for r in contributing)])
        view = view.model_copy(update={"platform_trace_code": trace_codes or None})
        if serial is None:  # the lot's page: nothing of one carton
            view = view.model_copy(update={"serial": None, "net_weight_g": None, "fruit_count": None, "pack_date": None})
        return view

    def _names(self, product: str, quality_class: str, size_class: str | None) -> tuple[str, str, str | None]:
        shown_product = self._trace.product_names.get(product, product)
        quality = quality_class
        size = size_class
        if product == self._recipe.product:  # the line's recipe names its classes
            quality = self._recipe.display_names().get(quality_class, (quality_class, ""))[0]
            sizes = {s.id: s.name or s.id for s in self._recipe.size_classes}
            size = sizes.get(size_class, size_class) if size_class else None
        return shown_product, quality, size

    def _product_view(self, gtin: str) -> ConsumerView | None:
        for entry in self._trace.gtins:
            if entry.gtin == gtin:
                product, quality, size = self._names(
                    entry.product, entry.quality_class, None if entry.size_class == "*" else entry.size_class
                )
                return ConsumerView(gtin=gtin, product=product, quality_class=quality, size_class=size)
        return None

    def _carton_view(self, row: Mapping[Any, Any], lot: Mapping[Any, Any]) -> ConsumerView:
        product, quality, size = self._names(lot["product"], row["quality_class"], row["size_class"])
        try:
            weight = {e.ai: e.value for e in parse_unbracketed(row["element_string"])}.get("3103")
        except GS1Error:
            weight = None
        return ConsumerView(
            gtin=row["gtin"], lot=row["lot_code"], serial=row["serial"], product=product, quality_class=quality,
            size_class=size, pack_date=row["pack_date"], net_weight_g=None if weight is None else int(weight),
            fruit_count=row["fruit_count"], origin_village=lot["origin_village"] or None,
            grower=present_grower(lot["grower"], self._trace.grower_privacy), harvest_date=lot["harvest_date"],
            lot_summary=self._summary(int(lot["id"])), temperatures=self._temperatures(int(lot["id"])),
        )

    def _summary(self, lot_id: int) -> LotSummary:
        packout = lot_packout(self._engine, lot_id)
        names = self._recipe.display_names()
        order = {cls: i for i, cls in enumerate(names)}
        weighed = sum(c.weighed for c in packout.by_quality.values())
        weight_mg = sum(c.weight_mg for c in packout.by_quality.values())
        classes = [
            ClassShare(quality_class=names.get(c.quality_class, (c.quality_class, ""))[0], fruit=c.fruit,
                       share=round(c.fruit / packout.fruit, 3) if packout.fruit else 0.0)
            for c in sorted(packout.by_quality.values(), key=lambda c: (order.get(c.quality_class, len(order)), c.quality_class))
            if c.fruit
        ]
        return LotSummary(
            fruit_graded=packout.fruit, mean_weight_g=round(weight_mg / weighed / 1000.0, 1) if weighed else None,
            classes=classes,
        )

    def _temperatures(self, lot_id: int) -> list[TemperatureSeries]:
        now = self._wall_clock()
        series = []
        for stay in self._coldchain.lot_history(lot_id, now):
            minutes = self._coldchain.history(stay.room, stay.entered_at, stay.left_at or now)
            if minutes:
                series.append(TemperatureSeries(room=stay.room, points=[
                    TemperaturePoint(at=m["minute_at"], temperature_c=round(float(m["mean"]), 2)) for m in minutes
                ]))
        return series
