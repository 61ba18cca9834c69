"""The app over a real LineRuntime with in-memory devices that deliver no fruit, a real store
(SQLite in the test's directory), and credentials of every role."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.testclient import TestClient

from api.app import create_app
from api.compose import label_printer
from api.config import LineConfig, load_config
from api.metrics import build_registry
from grading.access import TOKEN_ROLES, Role
from grading.lots.cartons import CartonPacker, open_cartons, resume_open_cartons
from grading.lots.service import LineLots
from grading.lots.stats import LotStatistics
from grading.recipe import load_recipe
from grading.runtime import LineRuntime
from grading.store import RecordWriter, create_store_engine, migrate, open_lot
from grading.trace.carton_codes import CartonCoder
from grading.trace.codes import TraceConfig
from grading.trace.serials import LineSerials
from grading.trace.store_events import StoreEventSource
from grading.trace.store_lookup import StoreTraceLookup
from tests.line_fakes import (
    FakeCamera,
    FakePlc,
    FakeScale,
    Fused,
    ScriptedTracker,
    make_runtime,
    outlets,
)

# Not loopback: /metrics must ask this client for a token, as it would a machine on the plant network.
REMOTE_CLIENT = ("192.0.2.10", 50000)


@dataclass
class FakeHandle:
    """What the app uses of ``api.compose.LineHandle``."""

    config: LineConfig
    runtime: LineRuntime
    engine: Engine
    registry: Any
    sensors: Any = None
    alarms: Any = None
    coldchain: Any = None
    coldchain_service: Any = None
    lots: Any = None
    packer: Any = None
    lot_stats: Any = None
    recipe: Any = None
    camera: Any = None
    plc: Any = None
    printer: Any = None
    trace_lookup: Any = None
    epcis_events: Any = None
    serials: Any = None


def line_factory(
    tmp_path: Path, config: LineConfig | None = None, script: dict[int, list[Fused]] | None = None,
    trace: TraceConfig | None = None,
) -> Callable[[], Any]:
    """A running line on fake devices; with ``trace`` its closed cartons get GS1 codes."""
    @asynccontextmanager
    async def open_line() -> AsyncIterator[FakeHandle]:
        # the demo config, with the [trace] asked for (none: no codes, as a line without [trace])
        cfg = (config or load_config(None)).model_copy(update={"trace": trace})
        engine = create_store_engine(f"sqlite:///{tmp_path}/api.db")
        migrate(engine)
        lot = open_lot(engine, code="LOT-9", grower="李四", variety="", product="apple", recipe="apple", line="line-1")
        writer = RecordWriter(engine)
        writer.start()
        plc = FakePlc(8.0)  # a moving belt; the camera delivers frames only when a test exposes them
        camera = FakeCamera()
        packer = CartonPacker(outlets(), wall_clock=lambda: datetime.now(UTC))
        resumed = resume_open_cartons(engine, lot.id)  # a test may open the app twice on one database
        missing = [o for o in packer.packing if o.number not in {c.outlet for c in resumed}]
        packer.replace(resumed + open_cartons(engine, lot.id, missing, at=datetime.now(UTC)))
        runtime = make_runtime(
            writer=writer, lot=lot, plc=plc, camera=camera, scales=[FakeScale(plc, 0)], line_name="line-1",
            tracker=ScriptedTracker(script if script is not None else {}),
            carton_for=packer.carton_for, outlet_full=packer.outlet_full,
        )
        stats = LotStatistics()
        runtime.fruit_events.subscribe("cartons", packer.on_fruit)
        runtime.fruit_events.subscribe("lots", stats.on_fruit)
        recipe = load_recipe("apple")
        serials = LineSerials(engine, "line-1", 1)
        lots = LineLots(
            engine=engine, runtime=runtime, writer=writer, packer=packer, recipe=recipe, recipe_hash=None,
            line="line-1", wall_clock=lambda: datetime.now(UTC), on_carton_closed=stats.on_carton_closed,
            check_lot_code=CartonCoder.check_lot_code if trace is not None else lambda code: None,
            coder=None if trace is None else CartonCoder(
                engine, trace, serials, product="apple", timezone=UTC
            ).code,
            carry_over=cfg.lots.carry_over_partial_cartons,
        )
        task = asyncio.create_task(runtime.run())
        try:
            yield FakeHandle(
                cfg, runtime, engine, build_registry(runtime, lot_stats=stats), lots=lots, packer=packer, lot_stats=stats,
                recipe=recipe, camera=camera, plc=plc, printer=label_printer(cfg),
                trace_lookup=None if trace is None else StoreTraceLookup(engine, trace, recipe),
                epcis_events=None if trace is None else StoreEventSource(engine, trace),
                serials=None if trace is None else serials,
            )
        finally:
            await runtime.shutdown()
            await task
            writer.close(10)
            engine.dispose()

    return open_line


@dataclass
class Api:
    app: FastAPI
    client: TestClient
    tokens: dict[Role, str]  # a valid token per token role

    def bearer(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    @property
    def access(self) -> Any:
        return self.app.state.auth.access


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """The app started (lifespan entered) with one token per role, seen from a non-loopback client."""
    app = create_app(line_factory(tmp_path), live_interval_s=0.05, live_recheck_s=0.1)
    with TestClient(app, client=REMOTE_CLIENT) as client:
        access = app.state.auth.access
        tokens = {role: access.create_token(f"test-{role.value}", role, "test")[0] for role in TOKEN_ROLES}
        yield Api(app, client, tokens)
