"""``gradeline bench outbox``: what the outbox costs the decision path.

The line awaits each frame's commit before it writes that frame's decisions to the PLC, so the
commit's latency is on the decision path. This commits the same paced stream of frames (units of
fruit records, one every ``--interval-ms``) through the record writer twice: to a plain local
SQLite store, and to a local outbox (its journal triggers, and the forwarder reading the journal,
copying to a central database and deleting what it forwarded, all at the same time). It prints
the commit latency of each (p50, p99, max) and what the forwarder moved. Then the catch-up after
an outage: ``--backlog-frames`` frames committed with no forwarder (the central database away),
and the time the forwarder takes to empty the outbox once it is back. JSON last.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.cli import CliParsers


def register(parsers: CliParsers) -> None:
    bench = parsers.bench.add_parser("outbox", help="Commit latency with and without the store-and-forward outbox (JSON last).")
    bench.add_argument("--frames", type=int, default=1500, help="Units committed per run.")
    bench.add_argument("--fruit-per-frame", type=int, default=8)
    bench.add_argument("--interval-ms", type=float, default=20.0, help="Time between frames (a line at 50 frames/s).")
    bench.add_argument("--backlog-frames", type=int, default=2500, help="Frames queued during the simulated outage.")
    bench.add_argument("--central-url", help="Central database the forwarder writes (default: a fresh SQLite file).")
    bench.add_argument("--json", action="store_true", help="Print only the JSON line.")
    bench.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    result = run_bench(
        frames=args.frames, fruit_per_frame=args.fruit_per_frame, interval_s=args.interval_ms / 1000.0,
        central_url=args.central_url, backlog_frames=args.backlog_frames,
    )
    if not args.json:
        for key, value in result.items():
            print(f"{key:>28}: {value}")
    print(json.dumps(result))
    return 0


def _record(lot_id: int, cup: int) -> Any:
    from grading.grader import GradeResult
    from grading.measurement import FruitMeasurement
    from grading.records import FruitRecord

    measurement = FruitMeasurement(
        weight_g=200.0, diameter_major_mm=75.0, diameter_minor_mm=72.5, area_cm2=43.0,
        colour_fractions={"red": 0.6, "green": 0.3}, defect_count=0, defect_area_cm2=0.0, elongation=1.03,
        volume_cm3=210.0,
    )
    return FruitRecord(
        uid=str(uuid.uuid4()), lot_id=lot_id, lane=cup % 8, cup_index=cup, graded_at=datetime.now(UTC),
        measurement=measurement, views=9, grade=GradeResult("class_i", "75-80", ()), outlet=2, late=False,
        decision_latency_ms=12.0,
    )


def _percentile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0, 2)


def _run(work: Path, mode: str, frames: int, per_frame: int, interval_s: float, central_url: str) -> dict[str, Any]:
    from grading.outbox import Forwarder, install_outbox
    from grading.store import RecordWriter, create_store_engine, migrate, open_lot

    local = create_store_engine(f"sqlite:///{work / mode}.db")
    migrate(local)
    forwarder = None
    central = None
    if mode == "outbox":
        install_outbox(local)
        central = create_store_engine(central_url)
        forwarder = Forwarder(local, central)  # as the line runs it
        forwarder.start()
    lot = open_lot(local, code=f"BENCH-{uuid.uuid4().hex[:8]}", grower="", variety="", product="apple",
                   recipe="apple", line="bench")
    writer = RecordWriter(local, line_id="bench")
    writer.start()
    latencies: list[float] = []
    try:
        next_s = time.monotonic()
        for frame in range(frames):
            next_s += interval_s
            records = [_record(lot.id, frame * per_frame + k) for k in range(per_frame)]
            t0 = time.perf_counter()
            writer.commit(records).result(30)
            latencies.append(time.perf_counter() - t0)
            time.sleep(max(0.0, next_s - time.monotonic()))
    finally:
        writer.close(30)
        if forwarder is not None:
            forwarder.close(drain_timeout_s=30)
    out: dict[str, Any] = {
        f"{mode}_commit_p50_ms": _percentile_ms(latencies, 0.5),
        f"{mode}_commit_p99_ms": _percentile_ms(latencies, 0.99),
        f"{mode}_commit_max_ms": round(max(latencies) * 1000.0, 2),
    }
    if forwarder is not None:
        out["forwarded_rows"] = forwarder.forwarded_total
        out["outbox_depth_after"] = forwarder.depth()
    local.dispose()
    if central is not None:
        central.dispose()
    return out


def _catch_up(work: Path, frames: int, per_frame: int, central_url: str) -> dict[str, Any]:
    from grading.outbox import Forwarder, install_outbox
    from grading.store import RecordWriter, create_store_engine, migrate, open_lot

    local = create_store_engine(f"sqlite:///{work / 'backlog'}.db")
    migrate(local)
    install_outbox(local)
    lot = open_lot(local, code=f"BENCH-{uuid.uuid4().hex[:8]}", grower="", variety="", product="apple",
                   recipe="apple", line="bench")
    writer = RecordWriter(local, line_id="bench")
    writer.start()
    for frame in range(frames):
        writer.commit([_record(lot.id, frame * per_frame + k) for k in range(per_frame)])
    writer.close(120)
    central = create_store_engine(central_url)
    forwarder = Forwarder(local, central)
    backlog = forwarder.depth()
    t0 = time.perf_counter()
    while forwarder.forward_once():
        pass
    elapsed_s = time.perf_counter() - t0
    forwarder.close()
    local.dispose()
    central.dispose()
    return {
        "backlog_rows": backlog, "catch_up_s": round(elapsed_s, 2),
        "catch_up_rows_per_s": round(backlog / elapsed_s) if elapsed_s > 0 else None,
    }


def run_bench(
    *, frames: int, fruit_per_frame: int, interval_s: float, central_url: str | None = None, backlog_frames: int = 2500
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gradeline-bench-outbox-") as tmp:
        work = Path(tmp)
        url = central_url or f"sqlite:///{work / 'central.db'}"
        result: dict[str, Any] = {"frames": frames, "fruit_per_frame": fruit_per_frame, "central": url.split(":")[0]}
        for mode in ("direct", "outbox"):
            result.update(_run(work, mode, frames, fruit_per_frame, interval_s, url))
        if backlog_frames > 0:
            result.update(_catch_up(work, backlog_frames, fruit_per_frame, url))
        return result
