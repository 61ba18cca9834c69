"""The outbox and its forwarder: rows reach the central database in order, with their lot
translated, corrections carried, quarantine rows kept, and replays that change nothing; two lines
share one central database; each central backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from grading.grader import GradeResult
from grading.measurement import FruitMeasurement
from grading.outbox import (
    FORWARDED,
    ForwardedTable,
    Forwarder,
    ForwardRegistry,
    install_outbox,
    outbox_changes,
)
from grading.records import EventRecord, FruitRecord
from grading.schema import cartons, events, fruit, lots, pallet_cartons, pallets, quarantine
from grading.store import RecordWriter, create_store_engine, migrate, open_lot


def _fruit(lot_id: int, cup: int, **changes: Any) -> FruitRecord:
    measurement = FruitMeasurement(
        weight_g=200.0 + cup, diameter_major_mm=75.0, diameter_minor_mm=72.5, area_cm2=43.0,
        colour_fractions={"red": 0.6, "green": 0.3}, defect_count=1, defect_area_cm2=0.3,
        elongation=1.03, volume_cm3=210.0,
    )
    record = FruitRecord(
        uid=str(uuid.uuid4()), lot_id=lot_id, lane=cup % 4, cup_index=cup, graded_at=datetime.now(UTC),
        measurement=measurement, views=9, grade=GradeResult("class_i", "75-80", ()), outlet=2, late=False,
        decision_latency_ms=12.5,
    )
    return dataclasses.replace(record, **changes)


def _event(lot_id: int | None, kind: str = "test", **payload: Any) -> EventRecord:
    return EventRecord(at=datetime.now(UTC), kind=kind, message="m", lot_id=lot_id, payload=payload)


@dataclasses.dataclass
class _Line:
    engine: Engine
    writer: RecordWriter
    lot_id: int


@pytest.fixture
def make_line(tmp_path: Path) -> Iterator[Any]:
    opened: list[_Line] = []

    def make(line_id: str, lot_code: str = "L-1") -> _Line:
        engine = create_store_engine(f"sqlite:///{tmp_path / line_id}.db")
        migrate(engine)
        install_outbox(engine)
        lot = open_lot(engine, code=lot_code, grower="g", variety="v", product="apple", recipe="apple", line=line_id)
        writer = RecordWriter(engine, flush_interval_s=0.02, line_id=line_id)
        writer.start()
        line = _Line(engine, writer, lot.id)
        opened.append(line)
        return line

    yield make
    for line in opened:
        line.writer.close(10)
        line.engine.dispose()


def _drain(forwarder: Forwarder) -> None:
    for _ in range(100):
        if forwarder.forward_once() == 0:
            return
    raise AssertionError("the journal did not empty")


def _rows(engine: Engine, table: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()]


def test_rows_are_forwarded_in_order_translated_corrected_and_replays_change_nothing(
    database_url: str, make_line: Any
) -> None:
    central = create_store_engine(database_url)
    migrate(central)
    # another line's lot first, so that central lot ids differ from the local ones
    open_lot(central, code="OTHER", grower="", variety="", product="apple", recipe="apple", line="x")
    line = make_line("l1")
    forwarder = Forwarder(line.engine, central, batch_size=7)  # small batches: order across batches
    try:
        records = [_fruit(line.lot_id, cup) for cup in range(20)]
        records[3] = _fruit(line.lot_id, 3)
        nan_measurement = dataclasses.replace(records[3].measurement, diameter_major_mm=float("nan"))
        records[3] = dataclasses.replace(records[3], measurement=nan_measurement)
        records[5] = _fruit(line.lot_id, 5, views=None)  # NOT NULL: the local store quarantines it
        result = line.writer.commit(records, [_event(line.lot_id, n=1), _event(None, n=2)]).result(10)
        assert [q.uid for q in result.quarantined] == [records[5].uid]
        line.writer.submit_event(_event(line.lot_id, n=3))
        assert line.writer.flush(10)
        _drain(forwarder)

        corrected = [records[0].uid, records[7].uid]
        assert line.writer.mark_not_sorted(corrected, "late: test").result(10) == 2
        _drain(forwarder)

        local_fruit, central_fruit = _rows(line.engine, fruit), _rows(central, fruit)
        assert [r["uid"] for r in central_fruit] == [r["uid"] for r in local_fruit]  # in order
        assert len(central_fruit) == 19
        (central_lot,) = [r for r in _rows(central, lots) if r["code"] == "L-1"]
        assert central_lot["id"] != line.lot_id and central_lot["line"] == "l1"
        assert {r["lot_id"] for r in central_fruit} == {central_lot["id"]}
        assert {r["line_id"] for r in central_fruit} == {"l1"}
        by_uid = {r["uid"]: r for r in central_fruit}
        assert all(by_uid[uid]["late"] and by_uid[uid]["outlet"] == 0 for uid in corrected)
        assert by_uid[corrected[0]]["reasons"] == ["late: test"]
        assert not by_uid[records[1].uid]["late"]
        assert by_uid[records[3].uid]["diameter_major_mm"] is None
        assert "non_finite:diameter_major_mm" in by_uid[records[3].uid]["flags"]
        graded_at = by_uid[records[1].uid]["graded_at"]
        assert (graded_at if graded_at.tzinfo else graded_at.replace(tzinfo=UTC)) == records[1].graded_at

        central_events = _rows(central, events)
        assert [e["payload"] for e in central_events] == [{"n": 1}, {"n": 2}, {"n": 3}]
        assert [e["lot_id"] for e in central_events] == [central_lot["id"], None, central_lot["id"]]
        (q,) = _rows(central, quarantine)
        assert q["uid"] == records[5].uid and q["line_id"] == "l1" and q["origin_id"] is not None

        # A crash between the central commit and the journal's delete: every row is sent again.
        with line.engine.begin() as conn:
            for table in (lots, events, fruit, quarantine):
                ids = conn.execute(select(table.c.id)).scalars().all()
                conn.execute(insert(outbox_changes), [
                    {"table_name": table.name, "row_id": i, "queued_at_s": 0.0} for i in ids
                ])
        _drain(forwarder)
        assert _rows(central, fruit) == central_fruit
        assert len(_rows(central, events)) == 3 and len(_rows(central, quarantine)) == 1
        assert len(_rows(central, lots)) == 2
        assert forwarder.depth() == 0
    finally:
        central.dispose()


def test_two_lines_share_one_central_database(database_url: str, make_line: Any) -> None:
    central = create_store_engine(database_url)
    a, b = make_line("line-a", "SHARED"), make_line("line-b", "SHARED")
    forwarders = [Forwarder(a.engine, central, idle_poll_s=0.02), Forwarder(b.engine, central, idle_poll_s=0.02)]
    for forwarder in forwarders:
        forwarder.start()
    try:
        for n in range(10):
            for line in (a, b):
                line.writer.commit([_fruit(line.lot_id, n)], [_event(line.lot_id, n=n)]).result(10)
        for forwarder in forwarders:
            forwarder.close(drain_timeout_s=20)
            assert forwarder.depth() == 0
        central_fruit = _rows(central, fruit)
        assert len(central_fruit) == 20 and len({r["uid"] for r in central_fruit}) == 20
        assert sorted(r["line_id"] for r in central_fruit) == ["line-a"] * 10 + ["line-b"] * 10
        assert len({r["lot_id"] for r in central_fruit}) == 1  # one lot, graded on both lines
        for line_id, line in (("line-a", a), ("line-b", b)):
            local = [r["uid"] for r in _rows(line.engine, fruit)]
            assert [r["uid"] for r in central_fruit if r["line_id"] == line_id] == local
        with central.connect() as conn:
            assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 20
    finally:
        for forwarder in forwarders:
            forwarder.close()
        central.dispose()


def test_registry_refuses_a_reference_to_a_table_registered_later() -> None:
    with pytest.raises(ValueError, match="must be registered first"):
        ForwardRegistry([ForwardedTable(fruit, key=("uid",), references={"lot_id": ("lots", "code")})])
    with pytest.raises(ValueError, match="no column"):
        ForwardedTable(fruit, key=("serial",))
    assert FORWARDED.names()[:5] == ["recipe_versions", "lots", "cartons", "events", "fruit"]


def test_the_outbox_must_be_sqlite(postgres_url: str) -> None:
    engine = create_store_engine(postgres_url)
    try:
        with pytest.raises(Exception, match="local SQLite"):
            install_outbox(engine)
    finally:
        engine.dispose()


def test_a_store_that_becomes_an_outbox_forwards_what_it_held(tmp_path: Path, sqlite_url: str) -> None:
    local = create_store_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(local)
    lot = open_lot(local, code="OLD", grower="", variety="", product="apple", recipe="apple", line="l9")
    writer = RecordWriter(local, line_id="l9")
    writer.start()
    earlier = [_fruit(lot.id, cup) for cup in range(5)]
    writer.commit(earlier).result(10)
    install_outbox(local)
    install_outbox(local)  # idempotent: queued once
    later = [_fruit(lot.id, cup) for cup in range(5, 8)]
    writer.commit(later).result(10)
    writer.close(10)
    central = create_store_engine(sqlite_url)
    try:
        forwarder = Forwarder(local, central)
        _drain(forwarder)
        forwarder.close()
        assert [r["uid"] for r in _rows(central, fruit)] == [r.uid for r in earlier + later]
    finally:
        central.dispose()
        local.dispose()


def test_a_row_the_central_database_refuses_is_quarantined_there_and_blocks_nothing(
    postgres_url: str, make_line: Any
) -> None:
    """SQLite stores an event kind longer than its column; PostgreSQL refuses it."""
    central = create_store_engine(postgres_url)
    line = make_line("l1")
    forwarder = Forwarder(line.engine, central)
    try:
        too_long = _event(line.lot_id, kind="k" * 50)
        fine = [_event(line.lot_id, n=n) for n in range(4)]
        line.writer.commit([_fruit(line.lot_id, 1)], [fine[0], fine[1], too_long, fine[2], fine[3]]).result(10)
        _drain(forwarder)
        assert [e["uid"] for e in _rows(central, events)] == [e.uid for e in fine]
        assert len(_rows(central, fruit)) == 1
        (q,) = _rows(central, quarantine)
        assert q["uid"] == too_long.uid and q["table_name"] == "events" and "refused" in q["reason"]
        assert q["line_id"] == "l1" and '"kind": "' + "k" * 50 in q["payload"]
        assert forwarder.health().state != "down"
        # sent again: still once
        with line.engine.begin() as conn:
            ids = conn.execute(select(events.c.id)).scalars().all()
            conn.execute(insert(outbox_changes), [{"table_name": "events", "row_id": i, "queued_at_s": 0.0} for i in ids])
        _drain(forwarder)
        assert len(_rows(central, quarantine)) == 1 and len(_rows(central, events)) == 4
    finally:
        forwarder.close()
        central.dispose()


def test_a_row_of_another_line_is_never_overwritten(database_url: str, make_line: Any) -> None:
    central = create_store_engine(database_url)
    a, b = make_line("line-a"), make_line("line-b")
    forwarders = [Forwarder(a.engine, central), Forwarder(b.engine, central)]
    try:
        record = _fruit(a.lot_id, 1)
        a.writer.commit([record]).result(10)
        _drain(forwarders[0])
        b.writer.commit([dataclasses.replace(record, lot_id=b.lot_id, outlet=4, cup_index=99)]).result(10)
        _drain(forwarders[1])
        (row,) = _rows(central, fruit)
        assert (row["line_id"], row["outlet"], row["cup_index"]) == ("line-a", 2, 1)
    finally:
        for forwarder in forwarders:
            forwarder.close()
        central.dispose()


def test_trace_codes_and_certificates_are_forwarded_translated_and_once(database_url: str, make_line: Any) -> None:
    from grading.lots import lots as lot_store
    from grading.lots.cartons import carry_cartons, open_cartons
    from grading.lots.lots import LotDetails
    from grading.lots.receiving import (
        IncomingCertificate,
        record_certificate,
        set_platform_trace_code,
    )
    from grading.schema import center_certificates, incoming_certificates
    from grading.trace.certificates import issue_center_certificate
    from tests.line_fakes import outlets

    central = create_store_engine(database_url)
    migrate(central)
    open_lot(central, code="OTHER", grower="", variety="", product="apple", recipe="apple", line="x")
    line = make_line("l1")
    forwarder = Forwarder(line.engine, central, batch_size=3)
    at = datetime(2026, 12, 2, 8, tzinfo=UTC)
    try:
        [carton] = open_cartons(line.engine, line.lot_id, [outlets()[0]], at=at)
        second, _ = lot_store.start_lot(line.engine, LotDetails("L-2", "李四", platform_trace_code="53-二"), line="l1",
                                        recipe_name="apple", recipe_hash=None, at=at, by="t", switch=True)
        carry_cartons(line.engine, [carton.id], second.id)
        record_certificate(line.engine, line.lot_id, IncomingCertificate(issuer="张三", quantity="1 t"), at=at, by="t")
        with line.engine.connect() as conn:
            uid = conn.execute(select(cartons.c.uid).where(cartons.c.id == carton.id)).scalar_one()
        issued = issue_center_certificate(line.engine, line_id="l1", subject_kind="carton", subject_uid=uid,
                                          lot_ids=[line.lot_id, second.id], quantity="5 kg", at=at, by="t", issuer="中心")
        _drain(forwarder)
        set_platform_trace_code(line.engine, line.lot_id, "53-一")  # issued after receiving: an update
        _drain(forwarder)

        central_lots = {r["code"]: r for r in _rows(central, lots)}
        assert central_lots["L-1"]["platform_trace_code"] == "53-一" and central_lots["L-2"]["platform_trace_code"] == "53-二"
        (central_carton,) = _rows(central, cartons)
        assert central_carton["carried_to_lot_id"] == central_lots["L-2"]["id"] != second.id
        (received,) = _rows(central, incoming_certificates)
        assert received["lot_id"] == central_lots["L-1"]["id"] and received["issuer"] == "张三"
        (center,) = _rows(central, center_certificates)
        assert center["number"] == issued.number == "l1.Z1" and center["lot_codes"] == ["L-1", "L-2"]

        with line.engine.begin() as conn:  # a replay of everything changes nothing
            for table in (lots, cartons, incoming_certificates, center_certificates):
                ids = conn.execute(select(table.c.id)).scalars().all()
                conn.execute(insert(outbox_changes), [{"table_name": table.name, "row_id": i, "queued_at_s": 0.0} for i in ids])
        _drain(forwarder)
        assert len(_rows(central, incoming_certificates)) == 1 and len(_rows(central, center_certificates)) == 1
        assert len(_rows(central, cartons)) == 1 and len(_rows(central, lots)) == 3
    finally:
        central.dispose()


def test_pallets_and_their_cartons_are_forwarded_with_removals_and_shipping(database_url: str, make_line: Any) -> None:
    """A carton moved from one pallet to another, a shipped pallet: the central rows refer to the
    central pallet and carton ids, keep the removal, and a replay changes nothing."""
    from grading.trace.pallets import add_carton, create_pallet, remove_carton, ship_pallet
    from grading.trace.serials import LineSerials
    from tests.unit.trace.test_pallets import TRACE, coded_cartons

    central = create_store_engine(database_url)
    migrate(central)
    open_lot(central, code="OTHER", grower="", variety="", product="apple", recipe="apple", line="x")
    line = make_line("l1")
    forwarder = Forwarder(line.engine, central, batch_size=3)  # small batches: order across batches
    try:
        serials = LineSerials(line.engine, "l1", 1)
        c1, c2 = coded_cartons(line.engine, line.lot_id, 2, serials)
        at = datetime(2026, 12, 2, 12, tzinfo=UTC)
        p1 = create_pallet(line.engine, TRACE, serials, line="l1", at=at, by="op")
        p2 = create_pallet(line.engine, TRACE, serials, line="l1", at=at, by="op")
        add_carton(line.engine, p1.id, carton_id=c1.id, at=at, by="op")
        add_carton(line.engine, p1.id, carton_id=c2.id, at=at, by="op")
        _drain(forwarder)
        remove_carton(line.engine, p1.id, c2.id, at=at, by="op")  # off and on in one batch
        add_carton(line.engine, p2.id, carton_id=c2.id, at=at, by="op")
        ship_pallet(line.engine, p1.id, at=at, by="op", destination="昆明")
        _drain(forwarder)

        central_pallets = {r["uid"]: r for r in _rows(central, pallets)}
        assert set(central_pallets) == {p1.uid, p2.uid}
        assert central_pallets[p1.uid]["shipped_by"] == "op" and central_pallets[p1.uid]["destination"] == "昆明"
        sscc_of = {r["id"]: r["sscc"] for r in central_pallets.values()}
        serial_of = {r["id"]: r["serial"] for r in _rows(central, cartons)}
        forwarded = [(sscc_of[r["pallet_id"]], serial_of[r["carton_id"]], r["removed_by"]) for r in _rows(central, pallet_cartons)]
        assert forwarded == [(p1.sscc, c1.serial, None), (p1.sscc, c2.serial, "op"), (p2.sscc, c2.serial, None)]

        before = _rows(central, pallet_cartons), _rows(central, pallets)
        with line.engine.begin() as conn:  # a replay of everything
            for table in (lots, cartons, pallets, pallet_cartons):
                ids = conn.execute(select(table.c.id)).scalars().all()
                conn.execute(insert(outbox_changes), [{"table_name": table.name, "row_id": i, "queued_at_s": 0.0} for i in ids])
        _drain(forwarder)
        assert (_rows(central, pallet_cartons), _rows(central, pallets)) == before
        assert _rows(central, quarantine) == []
    finally:
        forwarder.close()
        central.dispose()
