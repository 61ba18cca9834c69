"""The HTTP API over a line handle: routes, problem+json 503, and /metrics parsed independently."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.metrics import build_registry
from drivers.interfaces import Frame, OutletDecision, PlcStatus, WeightReading
from grading.config import load_config
from grading.grader import Grader
from grading.outlets import OutletAssigner
from grading.recipe import load_recipe
from grading.runtime import LineRuntime, RuntimeSettings
from grading.store import RecordWriter, create_store_engine, migrate, open_lot


class _Plc:
    name = "plc"

    async def read_status(self) -> PlcStatus:
        return PlcStatus(7, 8.0, True, (False,) * 5, time.monotonic())

    async def write_decisions(self, decisions: Sequence[OutletDecision]) -> None: ...
    async def heartbeat(self) -> None: ...
    async def open(self) -> None: ...
    async def close(self) -> None: ...


class _Scale:
    name = "scale-0"

    async def read_weight(self) -> WeightReading:
        return WeightReading(200.0, True, time.monotonic())

    async def open(self) -> None: ...
    async def close(self) -> None: ...


class _Camera:
    name = "camera"

    async def read(self) -> Frame:
        await asyncio.Event().wait()  # never delivers: these tests need no fruit
        raise AssertionError

    async def open(self) -> None: ...
    async def close(self) -> None: ...


class _Tracker:
    def update(self, views: Sequence[object], belt_position_cups: float | None) -> list[Any]:
        return []

    def flush(self) -> list[Any]:
        return []


class _Measurer:
    def measure(self, image_bgr: np.ndarray, belt_position_cups: float | None = None) -> list[Any]:
        return []


@dataclass
class _Handle:
    runtime: LineRuntime
    registry: Any


def _factory(tmp_path: Path, started: asyncio.Event | None = None):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def open_line() -> AsyncIterator[_Handle]:
        config = load_config(None)
        engine = create_store_engine(f"sqlite:///{tmp_path}/api.db")
        migrate(engine)
        lot = open_lot(engine, code="LOT-9", grower="李四", variety="", product="apple", recipe="apple", line="line-1")
        writer = RecordWriter(engine)
        writer.start()
        executor = ThreadPoolExecutor(1, thread_name_prefix="vision-api-test")
        runtime = LineRuntime(
            settings=RuntimeSettings("line-1", 1, -10, 6, 1.0, 0.01),
            camera=_Camera(), scales=[_Scale()], plc=_Plc(), measurer_factory=_Measurer,
            tracker_factory=_Tracker, grader=Grader(load_recipe("apple")),
            assigner=OutletAssigner(config.outlets), writer=writer, lot=lot, executor=executor,
            clock=time.monotonic,
        )
        task = asyncio.create_task(runtime.run())
        try:
            yield _Handle(runtime, build_registry(runtime))
        finally:
            await runtime.shutdown()
            await task
            executor.shutdown()
            writer.close(10)
            engine.dispose()

    return open_line


async def _with_client(tmp_path: Path, body) -> None:  # type: ignore[no-untyped-def]
    app = create_app(_factory(tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://line") as client:
            await body(client, app)


def test_line_state_start_stop(tmp_path: Path) -> None:
    async def body(client: httpx.AsyncClient, app: Any) -> None:
        state = (await client.get("/api/v1/line")).json()
        assert state["state"] == "stopped"
        assert state["lot"] == "LOT-9"
        for key in ("fruit_total", "fruit_per_second", "quality_classes", "size_classes", "outlets"):
            assert key in state
        assert (await client.post("/api/v1/line/start")).json()["state"] == "running"
        assert (await client.get("/api/v1/health")).json() == {"status": "ok", "line": "running"}
        assert (await client.post("/api/v1/line/stop")).json()["state"] == "stopped"

    asyncio.run(_with_client(tmp_path, body))


def test_metrics_answer_directly_in_prometheus_text(tmp_path: Path) -> None:
    async def body(client: httpx.AsyncClient, app: Any) -> None:
        await client.post("/api/v1/line/start")
        response = await client.get("/metrics")
        assert response.status_code == 200  # no 307 to /metrics/
        assert response.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
        running = families["gradeline_line_running"].samples
        assert [(s.labels, s.value) for s in running] == [({"line": "line-1"}, 1.0)]
        assert families["gradeline_outlet_late_decisions"].type == "counter"
        assert "process_cpu_seconds" in families

    asyncio.run(_with_client(tmp_path, body))


def test_starting_line_answers_503_problem_json(tmp_path: Path) -> None:
    async def run() -> None:
        app = create_app(_factory(tmp_path))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://line") as client:
            app.state.line = None  # as between start-up and the line being ready
            response = await client.get("/api/v1/line")
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == 503
            assert (await client.get("/api/v1/health")).json() == {"status": "starting"}

    asyncio.run(run())


def test_hmi_page_is_chinese_first(tmp_path: Path) -> None:
    async def body(client: httpx.AsyncClient, app: Any) -> None:
        page = await client.get("/")
        assert page.status_code == 200
        assert '<html lang="zh-CN">' in page.text
        assert "/api/v1/line" in page.text

    asyncio.run(_with_client(tmp_path, body))
