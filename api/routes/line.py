"""Live line state and start/stop of intake."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Audit, IntegratorCaller, OperatorCaller
from api.problems import Conflict, documented
from api.routes.deps import get_runtime
from grading.runtime import LineRuntime, NoOpenLot

router = APIRouter(prefix="/api/v1/line", tags=["line"])
Runtime = Annotated[LineRuntime, Depends(get_runtime)]

SNAPSHOT_EXAMPLE: dict[str, Any] = {
    "line": "line-1", "state": "running", "lot": "2026-1129-001", "grower": "张三", "product": "apple",
    "recipe": "apple", "fruit_total": 1520, "fruit_per_second": 31.8, "late_total": 0,
    "weights_missing_total": 2, "quality_classes": {"extra": 402, "class_i": 871, "class_ii": 198, "recheck": 49},
    "size_classes": {"75-80": 640, "80-85": 512, "70-75": 368}, "outlets": {"1": 402, "2": 871, "3": 198, "4": 49},
    "lanes": {"0": 380, "1": 381, "2": 379, "3": 380}, "frames_total": 4410, "frames_dropped_total": 0,
    "fruit_rows_written": 1520, "belt_speed_cups_per_s": 8.0, "cup_counter": 1611,
    "devices": {"camera": "ok", "plc": "ok", "lane-1": "ok", "lane-2": "fault", "lane-3": "ok", "lane-4": "ok"},
    "weigh_failures": {
        "inconsistent": 0, "unstable": 0, "reader_behind": 0, "out_of_window": 0, "device_down": 2, "timeout": 0
    },
    "quarantined_total": 0, "frames_unplaced_total": 0,
    "writer": {"state": "up", "pending_rows": 0, "retries_total": 0, "quarantined_total": 0, "oldest_pending_age_s": 0.0},
    "outbox": {"state": "up", "depth": 12, "oldest_age_s": 0.4, "forwarded_total": 1508, "last_error": None},
    "latency_from_exposure": {
        "submitted": {"p50_ms": 9.8, "p99_ms": 14.0}, "measured": {"p50_ms": 18.5, "p99_ms": 27.1},
        "decided": {"p50_ms": 19.2, "p99_ms": 28.0}, "committed": {"p50_ms": 21.0, "p99_ms": 31.2},
        "written": {"p50_ms": 22.4, "p99_ms": 33.9},
    },
}


class WriterState(BaseModel):
    state: str = Field(description="unknown, up or down (writes failing and being retried).")
    pending_rows: int = Field(ge=0, description="Rows waiting to be committed.")
    retries_total: int = Field(ge=0)
    quarantined_total: int = Field(ge=0, description="Rows the database refused, kept in its quarantine.")
    oldest_pending_age_s: float = Field(ge=0)


class OutboxState(BaseModel):
    state: str = Field(description="unknown, up or down (the central database is unreachable; records wait locally).")
    depth: int = Field(ge=0, description="Rows in the local outbox not yet forwarded to the central database.")
    oldest_age_s: float = Field(ge=0, description="Age of the oldest of them; 0 when none waits.")
    forwarded_total: int = Field(ge=0, description="Rows forwarded since start.")
    last_error: str | None = Field(description="Why the last forwarding attempt failed, while it fails.")


class StageLatency(BaseModel):
    p50_ms: float | None
    p99_ms: float | None


class LineSnapshot(BaseModel):
    """The line right now. Later features add fields; clients must ignore the ones they do not know."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [SNAPSHOT_EXAMPLE]})

    line: str = Field(description="Line name.")
    state: str = Field(description="starting, running or stopped.")
    lot: str | None = Field(description="Code of the lot being graded; null when none is open (intake cannot start).")
    lot_id: int | None = Field(None, description="Its id (GET /api/v1/lots/{id}).")
    grower: str | None
    product: str | None
    recipe: str | None
    fruit_total: int = Field(ge=0, description="Graded fruit (committed records) since start.")
    fruit_per_second: float = Field(ge=0, description="Over the last 5 s.")
    late_total: int = Field(ge=0, description="Fruit recorded late: their decision was not written, they recirculated.")
    weights_missing_total: int = Field(ge=0, description="Fruit without a valid weight (sent to recheck).")
    weigh_failures: dict[str, int] = Field(
        description="Fruit without a weight by cause: inconsistent, unstable, reader_behind, out_of_window, "
        "device_down, timeout (docs/operations.md)."
    )
    quarantined_total: int = Field(ge=0, description="Records the store refused; their cups were not sorted.")
    quality_classes: dict[str, int] = Field(description="Fruit per quality class.")
    size_classes: dict[str, int] = Field(description="Fruit per size class.")
    outlets: dict[str, int] = Field(description="Fruit per outlet number; 0 = recirculated.")
    lanes: dict[str, int] = Field(description="Fruit per lane (0-based).")
    frames_total: int = Field(ge=0)
    frames_dropped_total: int = Field(ge=0)
    frames_unplaced_total: int = Field(ge=0, description="Frames with no belt position (no PLC timing, or off the trigger grid).")
    fruit_rows_written: int = Field(ge=0)
    writer: WriterState = Field(description="The record writer's backlog.")
    outbox: OutboxState | None = Field(
        None, description="With [database] outbox: what waits to be forwarded to the central database; else null."
    )
    latency_from_exposure: dict[str, StageLatency] = Field(
        description="Over the last 500 frames, the time from a frame's exposure to the end of each stage: "
        "submitted to vision, measured, decided, committed, written to the PLC."
    )
    belt_speed_cups_per_s: float | None = Field(description="From the PLC; null before its first status.")
    cup_counter: int | None
    devices: dict[str, str] = Field(description="Each device: ok or fault.")


@router.get("", response_model=LineSnapshot)
async def line_state(runtime: Runtime, _: IntegratorCaller) -> dict[str, Any]:
    """State, lot, totals, rate and counts per quality class, size class, outlet and lane."""
    return runtime.snapshot()


@router.post("/start", response_model=LineSnapshot, responses=documented(409))
async def start(runtime: Runtime, who: OperatorCaller, audit: Audit) -> dict[str, Any]:
    """Start intake (no-op when running); 409 while no lot is open."""
    before = runtime.state
    try:
        runtime.start_intake()
    except NoOpenLot as exc:
        await audit(who, "line.start", target=runtime.settings.line_name, outcome="refused", detail=str(exc))
        raise Conflict(str(exc)) from exc
    snapshot = runtime.snapshot()
    await audit(who, "line.start", target=snapshot["line"], before={"state": before}, after={"state": snapshot["state"]})
    return snapshot


@router.post("/stop", response_model=LineSnapshot)
async def stop(runtime: Runtime, who: OperatorCaller, audit: Audit) -> dict[str, Any]:
    """Stop intake; answers once no decision is in progress, so the totals are final."""
    before = runtime.state
    await runtime.stop_intake()
    snapshot = runtime.snapshot()
    await audit(who, "line.stop", target=snapshot["line"], before={"state": before}, after={"state": snapshot["state"]})
    return snapshot
