"""Consumer views of two cartons of one lot, with cold-room series, for the resolver tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi import FastAPI

from api.problems import install_problem_handlers
from api.routes import resolver
from grading.trace.resolver import (
    ClassShare,
    ConsumerView,
    InMemoryTraceLookup,
    LotSummary,
    TemperaturePoint,
    TemperatureSeries,
)

GTIN = "16901234567899"
START = datetime(2025, 9, 15, 4, 0, tzinfo=UTC)


def series() -> list[TemperatureSeries]:
    return [
        TemperatureSeries(room=room, points=[
            TemperaturePoint(at=START + timedelta(minutes=15 * i), temperature_c=base + 0.3 * ((i * 7) % 5))
            for i in range(48)
        ])
        for room, base in (("预冷间", 8.0), ("冷库1", 3.5))
    ]


def carton_view(lot: str, serial: str) -> ConsumerView:
    return ConsumerView(
        gtin=GTIN, lot=lot, serial=serial, product="沃柑", quality_class="特级", size_class="L",
        pack_date=date(2025, 9, 15), net_weight_g=12500, fruit_count=48, origin_village="华宁县盘溪镇大龙潭村",
        grower="张**", harvest_date=date(2025, 9, 13),
        lot_summary=LotSummary(fruit_graded=5210, mean_weight_g=251.0, classes=[
            ClassShare(quality_class="特级", fruit=2100, share=0.403),
            ClassShare(quality_class="一级", fruit=2300, share=0.441),
            ClassShare(quality_class="二级", fruit=810, share=0.156),
        ]),
        temperatures=series(), platform_trace_code="53042410001202509150001",
    )


CARTONS = [("YN2509A", "123"), ("YN2509A", "124"), ("A/B%C", "x+1")]


def resolver_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(resolver.router)
    app.state.trace_lookup = InMemoryTraceLookup([carton_view(lot, serial) for lot, serial in CARTONS])
    return app
