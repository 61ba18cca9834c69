"""``gradeline bench packout``: the pack-out of a big lot on SQLite, timed.

Builds a SQLite database (in a temporary directory unless ``--db``) with one lot of
``--fruit`` fruit rows (random classes, sizes and weights) beside a second lot, then times
``grading.lots.packout.lot_packout`` (SQL GROUP BY over the covering index) and, as a
baseline in the same run, the same query with that index dropped (only the lot's
``(lot_id, graded_at)`` index left). Last line: JSON with ``fruit`` and ``seconds``.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from api.cli import CliParsers


def register(parsers: CliParsers) -> None:
    bench = parsers.bench.add_parser("packout", help="Time a lot's pack-out on SQLite.")
    bench.add_argument("--fruit", type=int, default=1_000_000, help="Fruit rows in the lot (default 1000000).")
    bench.add_argument("--db", help="SQLite file to build (default: a temporary one, removed after).")
    bench.add_argument("--no-baseline", action="store_true", help="Skip the run without the covering index.")
    bench.add_argument("--json", action="store_true", help="Only the JSON line.")
    bench.set_defaults(func=_run)


def _fill(path: Path, fruit_n: int) -> tuple[int, float]:
    from grading.lots import lots as lot_store
    from grading.lots.lots import LotDetails
    from grading.store import create_store_engine, migrate

    engine = create_store_engine(f"sqlite:///{path}")
    migrate(engine)
    at = datetime.now(UTC)
    lot, _ = lot_store.start_lot(engine, LotDetails("BENCH-1", "bench"), line="bench", recipe_name="apple",
                                 recipe_hash=None, at=at, by="bench")
    other, _ = lot_store.start_lot(engine, LotDetails("BENCH-2", "bench"), line="bench", recipe_name="apple",
                                   recipe_hash=None, at=at, by="bench", switch=True)
    engine.dispose()
    started = time.perf_counter()
    rng = random.Random(1)
    classes = ["extra", "class_i", "class_ii", "cull", "recheck"]
    sizes = ["65-70", "70-75", "75-80", "80-85", "85-90", None]
    stamp = at.strftime("%Y-%m-%d %H:%M:%S.%f")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # building the bench's data only
    sql = (
        "INSERT INTO fruit (uid, lot_id, lane, cup_index, graded_at, weight_g, diameter_major_mm, diameter_minor_mm,"
        " area_cm2, colour_fractions, defect_count, flags, views, quality_class, size_class, reasons, outlet, late)"
        " VALUES (?, ?, ?, ?, ?, ?, 80.0, 78.0, 50.0, '{}', 0, '[]', 6, ?, ?, '[]', ?, ?)"
    )

    def rows(lot_id: int, n: int):  # noqa: ANN202 (a generator of row tuples)
        for i in range(n):
            late = rng.random() < 0.01
            yield (
                str(uuid.UUID(int=rng.getrandbits(128))), lot_id, i % 4, i, stamp,
                None if rng.random() < 0.01 else round(rng.uniform(120.0, 320.0), 1),
                rng.choice(classes), rng.choice(sizes), 0 if late else rng.randint(1, 5), late,
            )

    with conn:
        conn.executemany(sql, rows(lot.id, fruit_n))
        conn.executemany(sql, rows(other.id, max(1, fruit_n // 10)))
    conn.close()
    return lot.id, time.perf_counter() - started


def _time_packout(path: Path, lot_id: int) -> tuple[float, int]:
    from grading.lots.packout import lot_packout
    from grading.store import create_store_engine

    engine = create_store_engine(f"sqlite:///{path}")
    try:
        started = time.perf_counter()
        report = lot_packout(engine, lot_id)
        return time.perf_counter() - started, report.fruit
    finally:
        engine.dispose()


def _run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "packout.db"
        lot_id, build_s = _fill(path, args.fruit)
        seconds, counted = _time_packout(path, lot_id)
        result: dict[str, object] = {
            "bench": "packout", "fruit": counted, "seconds": round(seconds, 3), "build_seconds": round(build_s, 1),
        }
        if counted != args.fruit:
            raise SystemExit(f"pack-out counted {counted} fruit, the lot has {args.fruit}")
        if not args.no_baseline:
            conn = sqlite3.connect(path)
            conn.execute("DROP INDEX ix_fruit_lot_packout")
            conn.close()
            baseline_s, _ = _time_packout(path, lot_id)
            result["baseline_seconds_without_covering_index"] = round(baseline_s, 3)
        if not args.json:
            print(f"pack-out of a {counted}-fruit lot: {seconds:.3f} s (building the data: {build_s:.1f} s)")
        print(json.dumps(result))
    return 0
