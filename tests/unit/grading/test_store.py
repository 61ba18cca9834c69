"""Store: migrations match the schema, the writer persists every row, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select, text

from grading.grader import GradeResult
from grading.measurement import FruitMeasurement
from grading.records import EventRecord, FruitRecord
from grading.schema import events, fruit, lots, metadata
from grading.store import (
    RecordWriter,
    _write_transaction,
    count_fruit,
    create_store_engine,
    migrate,
    open_lot,
)


def _record(lot_id: int, cup: int) -> FruitRecord:
    return FruitRecord(
        uid=str(uuid.uuid4()), lot_id=lot_id, lane=cup % 4, cup_index=cup, graded_at=datetime.now(UTC),
        measurement=FruitMeasurement(
            weight_g=200.0 + cup, diameter_major_mm=75.0, diameter_minor_mm=72.5, area_cm2=43.0,
            colour_fractions={"red": 0.6, "green": 0.3}, defect_count=1, defect_area_cm2=0.3,
            elongation=1.03, volume_cm3=210.0,
        ),
        views=9, grade=GradeResult("class_i", "75-80", ("extra:colour.red=0.60<0.90",)),
        outlet=2, late=False, decision_latency_ms=12.5,
    )


def test_migration_matches_schema_and_is_idempotent(database_url: str) -> None:
    engine = create_store_engine(database_url)
    migrate(engine)
    migrate(engine)  # a second start must be a no-op
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        version = conn.execute(text("select version_num from alembic_version")).scalar_one()
    engine.dispose()
    assert diff == []
    assert version == "0012_certificates"


def test_migration_0002_keeps_existing_rows_and_gives_old_events_uids(database_url: str) -> None:
    engine = create_store_engine(database_url)
    migrate(engine, "0001")
    at = datetime(2026, 11, 30, tzinfo=UTC)
    with engine.begin() as conn:
        lot_id = conn.execute(
            insert(lots).values(code="OLD", product="apple", recipe="apple", line="l1", started_at=at)
        ).inserted_primary_key[0]  # type: ignore[index]
        # 0001's events had no uid column: write them as a 0001 line did
        conn.execute(
            text("INSERT INTO events (at, kind, lot_id, message, payload) VALUES (:at, 'k', :lot, 'm', '{}')"),
            [{"at": at, "lot": lot_id}, {"at": at, "lot": lot_id}],
        )
    migrate(engine)
    with engine.connect() as conn:
        uids = conn.execute(select(events.c.uid)).scalars().all()
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert len(uids) == 2 and len(set(uids)) == 2 and all(uids)
    assert diff == []


def test_writer_persists_every_row_in_batches(database_url: str) -> None:
    engine = create_store_engine(database_url)
    migrate(engine)
    lot = open_lot(engine, code="L-1", grower="张三", variety="富士", product="apple", recipe="apple", line="l1")
    assert open_lot(engine, code="L-1", grower="x", variety="", product="apple", recipe="apple", line="l1").id == lot.id
    writer = RecordWriter(engine, batch_size=64, flush_interval_s=0.05)
    writer.start()
    records = [_record(lot.id, i) for i in range(1000)]
    futures = [writer.commit(records[i : i + 10]) for i in range(0, 1000, 10)]
    writer.submit_event(EventRecord(at=datetime.now(UTC), kind="test", message="m", lot_id=lot.id, payload={"a": 1}))
    assert writer.flush(timeout_s=30)
    assert all(f.done() and f.result().quarantined == () for f in futures)
    writer.close(timeout_s=30)
    assert count_fruit(engine, lot.id) == 1000
    with engine.connect() as conn:
        stored = conn.execute(select(fruit.c.uid, fruit.c.weight_g, fruit.c.colour_fractions).order_by(fruit.c.cup_index)).all()
        n_events = conn.execute(select(events.c.id)).all()
    engine.dispose()
    assert [r.uid for r in stored] == [r.uid for r in records]
    assert stored[999].weight_g == 1199.0
    assert stored[0].colour_fractions == {"red": 0.6, "green": 0.3}
    assert len(n_events) == 1
    assert writer.rows_written == 1001 and writer.fruit_rows_written == 1000
    assert writer.batches_written >= 1000 // 64


def test_a_missing_table_is_waited_out_not_quarantined(database_url: str) -> None:
    """Every row failing alike is the schema, not the rows: keep them queued, retry, write them."""
    engine = create_store_engine(database_url)
    migrate(engine)
    lot = open_lot(engine, code="L-2", grower="", variety="", product="apple", recipe="apple", line="l1")
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE fruit RENAME TO fruit_away"))
    writer = RecordWriter(engine, batch_size=10, flush_interval_s=0.05)
    writer.start()
    future = writer.commit([_record(lot.id, i) for i in range(25)])
    assert not writer.flush(timeout_s=0.5)  # cannot be acknowledged while the table is missing
    assert not future.done()
    assert writer.health().retries_total >= 1
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE fruit_away RENAME TO fruit"))
    assert future.result(timeout=30).quarantined == ()
    writer.close(timeout_s=30)
    assert count_fruit(engine) == 25
    assert writer.health().quarantined_total == 0
    engine.dispose()


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL
    engine.dispose()


def test_a_released_savepoint_is_undone_by_the_transactions_rollback(database_url: str) -> None:
    """pysqlite would run the first SAVEPOINT outside the transaction; the writer's must not."""
    engine = create_store_engine(database_url)
    migrate(engine)
    with pytest.raises(RuntimeError), _write_transaction(engine) as conn:
        with conn.begin_nested():
            conn.execute(insert(lots).values(code="GONE", product="p", recipe="r", line="l", started_at=datetime.now(UTC)))
        raise RuntimeError("roll back")
    with engine.connect() as conn:
        assert conn.execute(select(lots.c.id)).all() == []
    engine.dispose()
