"""The record writer: durable commits in order, non-finite values, replays, quarantine,
corrections, health, and outages it waits out; each on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from grading.grader import GradeResult
from grading.measurement import FruitMeasurement
from grading.records import EventRecord, FruitRecord
from grading.schema import events, fruit, quarantine
from grading.store import (
    CommitResult,
    Lot,
    RecordWriter,
    StoreError,
    create_store_engine,
    event_row,
    fruit_row,
    migrate,
    open_lot,
)
from tests.tcp_proxy import CuttableProxy

NAN, INF = float("nan"), float("inf")


def _fruit(lot_id: int, cup: int, /, *, grade: GradeResult | None = None, **changes: Any) -> FruitRecord:
    """A class I fruit in cup ``cup``; ``changes`` replace measurement or record fields."""
    measurement = FruitMeasurement(
        weight_g=200.0 + cup, diameter_major_mm=75.0, diameter_minor_mm=72.5, area_cm2=43.0,
        colour_fractions={"red": 0.6, "green": 0.3}, defect_count=1, defect_area_cm2=0.3,
        elongation=1.03, volume_cm3=210.0,
    )
    measurement_fields = {f.name for f in dataclasses.fields(FruitMeasurement)}
    measurement = dataclasses.replace(measurement, **{k: v for k, v in changes.items() if k in measurement_fields})
    record = FruitRecord(
        uid=str(uuid.uuid4()), lot_id=lot_id, lane=cup % 4, cup_index=cup, graded_at=datetime.now(UTC),
        measurement=measurement, views=9,
        grade=grade or GradeResult("class_i", "75-80", ("extra:colour.red=0.60<0.90",)),
        outlet=2, late=False, decision_latency_ms=12.5,
    )
    return dataclasses.replace(record, **{k: v for k, v in changes.items() if k not in measurement_fields})


def _event(lot_id: int | None, kind: str = "test", **payload: Any) -> EventRecord:
    return EventRecord(at=datetime.now(UTC), kind=kind, message="m", lot_id=lot_id, payload=payload)


def _wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def store(database_url: str) -> Iterator[tuple[Engine, Lot]]:
    engine = create_store_engine(database_url)
    migrate(engine)
    lot = open_lot(engine, code="L-W", grower="", variety="", product="apple", recipe="apple", line="l1")
    yield engine, lot
    engine.dispose()


@pytest.fixture
def writer(store: tuple[Engine, Lot]) -> Iterator[RecordWriter]:
    w = RecordWriter(store[0], batch_size=64, flush_interval_s=0.05)
    w.start()
    yield w
    w.close(timeout_s=30)


def _fruit_rows(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {row.uid: row for row in conn.execute(select(fruit)).all()}


def _quarantine_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(quarantine).order_by(quarantine.c.id)).all())


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _append(resolved: list[int], n: int, _future: Future[Any]) -> None:
    resolved.append(n)  # a done-callback: runs on the writer thread as each future resolves


def _no_nan(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise AssertionError(f"{token} in stored JSON")

    return json.loads(text, parse_constant=refuse)


# --- mapping -----------------------------------------------------------------------------------


def test_fruit_row_makes_non_finite_floats_null_and_flags_them() -> None:
    record = _fruit(
        1, 3, diameter_major_mm=NAN, area_cm2=INF, weight_g=-INF,
        colour_fractions={"red": NAN, "green": 0.3}, flags=frozenset({"edge"}),
    )
    row = fruit_row(record)
    assert row["diameter_major_mm"] is None and row["area_cm2"] is None and row["weight_g"] is None
    assert row["diameter_minor_mm"] == 72.5
    # the colour stays, unknown: a dropped colour would read back as 0 % of the surface
    assert row["colour_fractions"] == {"red": None, "green": 0.3}
    assert row["flags"] == [
        "edge", "non_finite:area_cm2", "non_finite:colour_fractions.red",
        "non_finite:diameter_major_mm", "non_finite:weight_g",
    ]
    assert fruit_row(_fruit(1, 3))["flags"] == []


def test_event_row_makes_non_finite_payload_values_null_and_lists_them() -> None:
    row = event_row(_event(1, temp={"max": INF, "min": 1.5}, readings=[1.0, NAN]))
    assert row["payload"] == {
        "temp": {"max": None, "min": 1.5}, "readings": [1.0, None], "_non_finite": ["temp.max", "readings[1]"],
    }
    assert "_non_finite" not in event_row(_event(1, a=1.0))["payload"]


# --- storing -----------------------------------------------------------------------------------


def test_non_finite_measurements_are_stored_as_null_with_flags(store: tuple[Engine, Lot], writer: RecordWriter) -> None:
    engine, lot = store
    odd = _fruit(lot.id, 0, diameter_major_mm=NAN, elongation=INF, defect_area_cm2=-INF, colour_fractions={"red": NAN})
    after = [_fruit(lot.id, i) for i in range(1, 6)]
    result = writer.commit([odd, *after], [_event(lot.id, reading=NAN)]).result(timeout=30)
    assert result == CommitResult()
    rows = _fruit_rows(engine)
    assert set(rows) == {odd.uid, *(r.uid for r in after)}
    stored = rows[odd.uid]
    assert (stored.diameter_major_mm, stored.elongation, stored.defect_area_cm2) == (None, None, None)
    assert stored.diameter_minor_mm == 72.5
    assert stored.colour_fractions == {"red": None}
    assert set(stored.flags) == {
        "non_finite:diameter_major_mm", "non_finite:elongation", "non_finite:defect_area_cm2",
        "non_finite:colour_fractions.red",
    }
    assert all(rows[r.uid].flags == [] for r in after)
    with engine.connect() as conn:
        assert conn.execute(select(events.c.payload)).scalar_one() == {"reading": None, "_non_finite": ["reading"]}


def test_a_replayed_uid_is_a_no_op(store: tuple[Engine, Lot], writer: RecordWriter) -> None:
    engine, lot = store
    once = _fruit(lot.id, 0)
    assert writer.commit([once]).result(timeout=30) == CommitResult()
    assert writer.commit([once]).result(timeout=30).already_stored_uids == {once.uid}

    batch = [_fruit(lot.id, i) for i in range(1, 51)]
    batch_events = [_event(lot.id, n=i) for i in range(3)]
    first = writer.commit(batch, batch_events)
    replay = writer.commit(batch, batch_events)  # e.g. after a commit whose outcome was unknown
    assert first.result(timeout=30) == CommitResult()
    assert replay.result(timeout=30).already_stored_uids == {r.uid for r in batch} | {e.uid for e in batch_events}

    later = _fruit(lot.id, 99)
    assert writer.commit([later]).result(timeout=30) == CommitResult()
    assert _count(engine, fruit) == 52
    assert _count(engine, events) == 3
    health = writer.health()
    assert health.duplicates_total == 1 + 53
    assert health.fruit_rows_written == 52 and health.rows_written == 55
    assert health.quarantined_total == 0


def test_refused_rows_are_quarantined_and_the_rest_stored(
    store: tuple[Engine, Lot], writer: RecordWriter, database_url: str
) -> None:
    engine, lot = store
    postgres = make_url(database_url).get_backend_name() == "postgresql"
    good = [_fruit(lot.id, i) for i in range(6)]
    no_lot = _fruit(lot.id, 10, lot_id=987654, diameter_minor_mm=NAN)  # foreign key; NaN in its payload
    no_class = _fruit(lot.id, 11, grade=GradeResult(None, None, ()))  # type: ignore[arg-type]  # NOT NULL
    long_size = _fruit(lot.id, 12, grade=GradeResult("class_i", "x" * 33, ()))  # over String(32)
    unmappable = _fruit(lot.id, 13, cup_index="thirteen")
    event_no_lot = _event(987654)
    unit = [good[0], no_lot, good[1], no_class, good[2], long_size, good[3], unmappable, good[4]]
    result = writer.commit(unit, [_event(lot.id), event_no_lot]).result(timeout=30)
    later = writer.commit([good[5]]).result(timeout=30)

    refused = {no_lot.uid, no_class.uid, unmappable.uid, event_no_lot.uid} | ({long_size.uid} if postgres else set())
    assert result.quarantined_uids == refused
    assert later == CommitResult()
    reasons = {q.uid: q.reason for q in result.quarantined}
    assert "foreign key" in reasons[no_lot.uid].lower()
    assert "not null" in reasons[no_class.uid].lower().replace("-", " ")
    assert reasons[unmappable.uid].startswith("cannot map record: TypeError")
    if postgres:  # SQLite does not enforce string lengths: there the row is stored
        assert "too long" in reasons[long_size.uid]

    stored = _fruit_rows(engine)
    assert set(stored) == {r.uid for r in good} | ({long_size.uid} if not postgres else set())
    assert _count(engine, events) == 1
    rows = _quarantine_rows(engine)
    assert {r.uid for r in rows} == refused
    by_uid = {r.uid: r for r in rows}
    assert by_uid[event_no_lot.uid].table_name == "events"
    assert {by_uid[uid].reason for uid in refused} == {reasons[uid] for uid in refused}
    payload = _no_nan(by_uid[no_lot.uid].payload)
    assert payload["lot_id"] == 987654 and payload["diameter_minor_mm"] is None
    assert "non_finite:diameter_minor_mm" in payload["flags"]
    assert _no_nan(by_uid[unmappable.uid].payload)["cup_index"] == "thirteen"
    health = writer.health()
    assert health.quarantined_total == len(refused)
    assert health.state == "up" and health.retries_total == 0


def test_refused_rows_in_large_batches_are_bisected_out(store: tuple[Engine, Lot], writer: RecordWriter) -> None:
    engine, lot = store
    records = [_fruit(lot.id, i) for i in range(300)]
    for i in (0, 97, 98, 250, 299):
        records[i] = dataclasses.replace(records[i], lot_id=987654)
    futures = [writer.commit(records[i : i + 100]) for i in range(0, 300, 100)]
    quarantined = set().union(*(f.result(timeout=30).quarantined_uids for f in futures))
    assert quarantined == {records[i].uid for i in (0, 97, 98, 250, 299)}
    assert _count(engine, fruit) == 295
    assert len(_quarantine_rows(engine)) == 5


def test_futures_resolve_in_submission_order(store: tuple[Engine, Lot], writer: RecordWriter) -> None:
    engine, lot = store
    resolved: list[int] = []
    futures: list[Future[Any]] = []
    committed: list[FruitRecord] = []
    for i in range(60):
        if i % 10 == 9:
            future: Future[Any] = writer.mark_not_sorted([committed[-1].uid], "late")
        else:
            records = [_fruit(lot.id, 100 * i + k, lot_id=987654 if k == 2 and i % 7 == 0 else lot.id) for k in range(i % 4 + 1)]
            committed.extend(records)
            future = writer.commit(records, [_event(lot.id)] if i % 3 == 0 else ())
        if i % 5 == 0:
            writer.submit_event(_event(lot.id, n=i))
        future.add_done_callback(functools.partial(_append, resolved, i))
        futures.append(future)
    assert writer.flush(timeout_s=30)
    assert resolved == list(range(60))
    assert all(f.exception() is None for f in futures)


def test_the_event_loop_awaits_a_commit(store: tuple[Engine, Lot], writer: RecordWriter) -> None:
    """How the runtime uses it: record before you sort."""
    engine, lot = store
    records = [_fruit(lot.id, i) for i in range(8)]

    async def frame() -> CommitResult:
        return await asyncio.wrap_future(writer.commit(records))

    assert asyncio.run(frame()) == CommitResult()
    assert set(_fruit_rows(engine)) == {r.uid for r in records}


def test_mark_not_sorted_corrects_committed_rows(store: tuple[Engine, Lot], writer: RecordWriter) -> None:
    engine, lot = store
    records = [_fruit(lot.id, i) for i in range(3)]
    writer.commit(records).result(timeout=30)
    uids = [records[0].uid, records[1].uid, "never-stored"]
    assert writer.mark_not_sorted(uids, "not_sorted:plc_write_failed").result(timeout=30) == 2
    assert writer.mark_not_sorted(uids, "not_sorted:plc_write_failed").result(timeout=30) == 2  # a replay
    rows = _fruit_rows(engine)
    for r in records[:2]:
        assert rows[r.uid].late is True and rows[r.uid].outlet == 0
        assert rows[r.uid].reasons == ["extra:colour.red=0.60<0.90", "not_sorted:plc_write_failed"]
    untouched = rows[records[2].uid]
    assert (untouched.late, untouched.outlet, untouched.reasons) == (False, 2, ["extra:colour.red=0.60<0.90"])


def test_close_writes_everything_pending(store: tuple[Engine, Lot]) -> None:
    engine, lot = store
    writer = RecordWriter(engine, flush_interval_s=10.0)  # events would otherwise wait 10 s
    writer.start()
    for i in range(30):
        writer.submit_event(_event(lot.id, n=i))
    writer.close(timeout_s=30)
    assert _count(engine, events) == 30
    with pytest.raises(StoreError):
        writer.commit([_fruit(lot.id, 0)])


def test_health_counts_pending_work_on_the_injected_clock(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    migrate(engine)
    lot = open_lot(engine, code="L-H", grower="", variety="", product="apple", recipe="apple", line="l1")
    now_s = [100.0]
    writer = RecordWriter(engine, clock=lambda: now_s[0])
    first = writer.commit([_fruit(lot.id, 0), _fruit(lot.id, 1)], [_event(lot.id)])
    now_s[0] += 1.5
    writer.commit([_fruit(lot.id, 2)])
    writer.submit_event(_event(lot.id))
    now_s[0] += 1.0
    health = writer.health()
    assert (health.pending_rows, health.pending_units, health.oldest_pending_age_s) == (5, 2, 2.5)
    assert health.state == "unknown" and health.last_error is None
    writer.start()
    first.result(timeout=30)
    assert writer.flush(timeout_s=30)
    health = writer.health()
    assert (health.pending_rows, health.pending_units, health.oldest_pending_age_s) == (0, 0, 0.0)
    assert health.state == "up" and health.rows_written == 5
    writer.close(timeout_s=30)
    engine.dispose()


def test_close_gives_up_on_a_database_that_stays_locked(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url, sqlite_busy_timeout_s=0.05)
    migrate(engine)
    lot = open_lot(engine, code="L-C", grower="", variety="", product="apple", recipe="apple", line="l1")
    holder = sqlite3.connect(make_url(sqlite_url).database or "", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        writer = RecordWriter(engine)
        writer.start()
        future = writer.commit([_fruit(lot.id, 0)])
        _wait_for(lambda: writer.health().retries_total >= 1, 30, "a failed attempt")
        with pytest.raises(StoreError, match="1 rows were not committed"):
            writer.close(timeout_s=0.5)
        assert isinstance(future.exception(timeout=30), StoreError)
    finally:
        holder.rollback()
        holder.close()
    engine.dispose()


# --- outages -----------------------------------------------------------------------------------

OUTAGE_S = 10.0


@pytest.mark.slow
def test_an_outage_loses_and_doubles_nothing(
    database_url: str, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The database is unreachable for 10 s: on SQLite another connection holds an exclusive
    lock (the writer's busy timeout is short, so it sees "database is locked"); on PostgreSQL a
    proxy between writer and server resets every connection."""
    caplog.set_level(logging.INFO, logger="grading.store")
    url = make_url(database_url)
    admin = create_store_engine(database_url)
    migrate(admin)
    lot = open_lot(admin, code="L-O", grower="", variety="", product="apple", recipe="apple", line="l1")
    proxy: CuttableProxy | None = None
    holder: sqlite3.Connection | None = None
    if url.get_backend_name() == "sqlite":
        engine = create_store_engine(database_url, sqlite_busy_timeout_s=0.2)
    else:
        proxy = CuttableProxy(url.port or 5432)
        engine = create_store_engine(url.set(port=proxy.port).render_as_string(hide_password=False), connect_timeout_s=2)
    writer = RecordWriter(engine, flush_interval_s=0.05)
    writer.start()
    try:
        before = [_fruit(lot.id, i) for i in range(5)]
        assert writer.commit(before).result(timeout=30) == CommitResult()

        outage_ends_s = time.monotonic() + OUTAGE_S
        if proxy is not None:
            proxy.set_cut(True)
        else:
            holder = sqlite3.connect(url.database or "", isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
        units = [[_fruit(lot.id, 100 + 5 * u + k) for k in range(5)] for u in range(20)]
        resolved: list[int] = []
        futures = []
        for n, unit in enumerate(units):
            future = writer.commit(unit, [_event(lot.id, unit=n)])
            future.add_done_callback(functools.partial(_append, resolved, n))
            futures.append(future)
        replay = writer.commit(before)  # a replay queued behind them
        writer.submit_event(_event(lot.id, kind="loose"))

        _wait_for(lambda: writer.health().retries_total >= 2, OUTAGE_S, "the writer to retry")
        health = writer.health()
        assert health.state == "down" and health.last_error
        assert health.pending_units == 21 and health.pending_rows == 20 * 6 + 5 + 1
        assert health.oldest_pending_age_s > 0
        assert not any(f.done() for f in futures)

        time.sleep(max(0.0, outage_ends_s - time.monotonic()))  # the outage lasts its 10 s
        assert not any(f.done() for f in futures)
        assert writer.health().pending_units == 21
        if proxy is not None:
            proxy.set_cut(False)
        elif holder is not None:
            holder.rollback()

        assert all(f.result(timeout=30) == CommitResult() for f in futures)
        assert replay.result(timeout=30).already_stored_uids == {r.uid for r in before}
        assert resolved == list(range(20))
        assert writer.flush(timeout_s=30)
    finally:
        writer.close(timeout_s=30)
        engine.dispose()
        if holder is not None:
            holder.close()
        if proxy is not None:
            proxy.close()
    assert _count(admin, fruit) == 5 + 100
    assert _count(admin, events) == 21
    assert _quarantine_rows(admin) == []
    health = writer.health()
    assert health.state == "up" and health.pending_rows == 0 and health.retries_total >= 2
    assert health.fruit_rows_written == 105 and health.duplicates_total == 5
    # logged once when writing started failing and once when it recovered
    messages = [r.getMessage() for r in caplog.records if r.name == "grading.store" and r.levelno >= logging.INFO]
    assert sum("store: fault:" in m for m in messages) == 1
    assert sum("store: recovered after" in m for m in messages) == 1
    admin.dispose()
