"""Store: migrations match the schema, the writer persists every row, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from grading.schema import events, fruit, metadata
from grading.store import RecordWriter, count_fruit, create_store_engine, migrate, open_lot


def _row(lot_id: int, cup: int) -> dict[str, Any]:
    return {
        "uid": str(uuid.uuid4()), "lot_id": lot_id, "lane": cup % 4, "cup_index": cup,
        "graded_at": datetime.now(UTC), "weight_g": 200.0 + cup, "diameter_major_mm": 75.0,
        "diameter_minor_mm": 72.5, "area_cm2": 43.0, "volume_cm3": 210.0,
        "colour_fractions": {"red": 0.6, "green": 0.3}, "defect_count": 1, "defect_area_cm2": 0.3,
        "elongation": 1.03, "quality_score": None, "flags": [], "views": 9, "quality_class": "class_i",
        "size_class": "75-80", "reasons": ["extra:colour.red=0.60<0.90"], "outlet": 2, "late": False,
        "decision_latency_ms": 12.5,
    }


def test_migration_matches_schema_and_is_idempotent(database_url: str) -> None:
    engine = create_store_engine(database_url)
    migrate(engine)
    migrate(engine)  # a second start must be a no-op
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        version = conn.execute(text("select version_num from alembic_version")).scalar_one()
    engine.dispose()
    assert diff == []
    assert version == "0001"


def test_writer_persists_every_row_in_batches(database_url: str) -> None:
    engine = create_store_engine(database_url)
    migrate(engine)
    lot = open_lot(engine, code="L-1", grower="张三", variety="富士", product="apple", recipe="apple", line="l1")
    assert open_lot(engine, code="L-1", grower="x", variety="", product="apple", recipe="apple", line="l1").id == lot.id
    writer = RecordWriter(engine, batch_size=64, flush_interval_s=0.05)
    writer.start()
    rows = [_row(lot.id, i) for i in range(1000)]
    for row in rows:
        writer.submit_fruit(row)
    writer.submit_event({"at": datetime.now(UTC), "kind": "test", "lot_id": lot.id, "message": "m", "payload": {"a": 1}})
    assert writer.flush(timeout_s=30)
    writer.close(timeout_s=30)
    assert count_fruit(engine, lot.id) == 1000
    with engine.connect() as conn:
        stored = conn.execute(select(fruit.c.uid, fruit.c.weight_g, fruit.c.colour_fractions).order_by(fruit.c.cup_index)).all()
        n_events = conn.execute(select(events.c.id)).all()
    engine.dispose()
    assert [r.uid for r in stored] == [r["uid"] for r in rows]
    assert stored[999].weight_g == 1199.0
    assert stored[0].colour_fractions == {"red": 0.6, "green": 0.3}
    assert len(n_events) == 1
    assert writer.batches_written >= 1000 // 64


def test_a_failed_batch_is_retried_not_dropped(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    migrate(engine)
    lot = open_lot(engine, code="L-2", grower="", variety="", product="apple", recipe="apple", line="l1")
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE fruit RENAME TO fruit_away"))
    writer = RecordWriter(engine, batch_size=10, flush_interval_s=0.05)
    writer.start()
    for i in range(25):
        writer.submit_fruit(_row(lot.id, i))
    assert not writer.flush(timeout_s=0.5)  # cannot be acknowledged while the table is missing
    assert writer.write_errors >= 1
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE fruit_away RENAME TO fruit"))
    assert writer.flush(timeout_s=30)
    writer.close(timeout_s=30)
    assert count_fruit(engine) == 25
    engine.dispose()


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL
    engine.dispose()
