"""Certificates and exports in the store, on SQLite and PostgreSQL: a lot's 追溯码 (opaque, trimmed,
refused with control characters or too long), the grower's 合格证 recorded with the lot, the
packing center's own certificate for a carton of two lots (numbered from the durable counter,
once), the label and consumer view that show them, and the CSV and JSON exports read back."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from grading.grader import GradeResult
from grading.lots import lots as lot_store
from grading.lots.cartons import carry_cartons, finish_carton, open_cartons, resume_open_cartons
from grading.lots.lots import LotDetails
from grading.lots.receiving import (
    IncomingCertificate,
    ReceivingError,
    lot_certificates,
    record_certificate,
    set_platform_trace_code,
)
from grading.measurement import FruitMeasurement
from grading.recipe import load_recipe
from grading.records import FruitRecord
from grading.schema import center_certificates, fruit
from grading.store import create_store_engine, fruit_row, migrate
from grading.trace.carton_codes import CartonCoder, carton_label_of
from grading.trace.certificates import issue_center_certificate
from grading.trace.exports import export_chunks, parse_bound
from grading.trace.labels import render
from grading.trace.serials import LineSerials, peek
from grading.trace.store_lookup import StoreTraceLookup
from tests.line_fakes import outlets
from tests.unit.trace.test_carton_codes import TRACE

AT = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
ORDER = ["extra", "class_i", "class_ii"]


def _fruit(lot_id: int, carton_id: int, n: int, first_cup: int) -> list[dict[str, object]]:
    return [
        fruit_row(FruitRecord(
            uid=str(uuid.uuid4()), lot_id=lot_id, lane=0, cup_index=first_cup + i, graded_at=AT,
            measurement=FruitMeasurement(200.0, 80.0, 78.0, 50.0, {}, 0, 0.0), views=6,
            grade=GradeResult("extra", "75-80", ()), outlet=1, late=False, decision_latency_ms=10.0,
            carton_id=carton_id,
        ))
        for i in range(n)
    ]


def test_trace_codes_are_trimmed_and_refused_with_the_field_named(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    try:
        migrate(engine)
        for bad, why in (("A\tB", "control"), ("A\u200bB", "control"), ("9" * 129, "at most 128")):
            with pytest.raises(ReceivingError) as refused:
                lot_store.start_lot(engine, LotDetails("X", "g", platform_trace_code=bad), line="l", recipe_name="apple",
                                    recipe_hash=None, at=AT, by="t")
            assert refused.value.field == "platform_trace_code" and why in refused.value.message
        with pytest.raises(ReceivingError) as refused:
            lot_store.start_lot(engine, LotDetails("X", "g", certificates=(IncomingCertificate(issuer="  "),)),
                                line="l", recipe_name="apple", recipe_hash=None, at=AT, by="t")
        assert refused.value.field == "certificates[0].issuer"
        lot, _ = lot_store.start_lot(engine, LotDetails("X", "g", platform_trace_code="   "), line="l",
                                     recipe_name="apple", recipe_hash=None, at=AT, by="t")
        assert lot.platform_trace_code is None and lot_certificates(engine, lot.id) == []  # nothing half-written
    finally:
        engine.dispose()


def test_a_carton_of_two_lots_gets_the_centers_certificate_and_exports_read_back(database_url: str) -> None:
    engine = create_store_engine(database_url)
    try:
        migrate(engine)
        received = IncomingCertificate(issuer="张三", form="handwritten", product_name="苹果", quantity="1250 kg",
                                       origin="石屏县宝秀镇", issued_on=date(2026, 12, 1))
        a, _ = lot_store.start_lot(
            engine, LotDetails("YN-A", "张三", origin_village="宝秀镇", platform_trace_code="  53A-追溯/0001 ",
                               certificates=(received,)),
            line="line-1", recipe_name="apple", recipe_hash=None, at=AT, by="user:李娜",
        )
        assert a.platform_trace_code == "53A-追溯/0001"
        [mixed] = open_cartons(engine, a.id, [outlets()[0]], at=AT)
        b, _ = lot_store.start_lot(engine, LotDetails("YN-B", "李四", origin_village="坝心镇"), line="line-1",
                                   recipe_name="apple", recipe_hash=None, at=AT + timedelta(hours=1), by="t", switch=True)
        [single] = open_cartons(engine, b.id, [outlets()[1]], at=AT + timedelta(hours=1))
        carry_cartons(engine, [mixed.id], b.id)  # kept open across the switch: a restart resumes it with B's
        assert {c.id for c in resume_open_cartons(engine, b.id)} == {mixed.id, single.id}
        with engine.begin() as conn:
            conn.execute(insert(fruit), _fruit(a.id, mixed.id, 3, 0) + _fruit(b.id, mixed.id, 2, 10)
                         + _fruit(b.id, single.id, 4, 20))
        before, after = set_platform_trace_code(engine, b.id, "53B-0002")  # issued after receiving
        assert (before, after) == (None, "53B-0002")
        later = record_certificate(engine, b.id, IncomingCertificate(issuer="李四", number="HG-7"), at=AT, by="t")
        assert later.contact == "" and later.form == "paper"

        coder = CartonCoder(engine, TRACE, LineSerials(engine, "line-1", 1), product="apple", timezone=UTC)
        closed_at = AT + timedelta(hours=2)
        done = [coder.code(finish_carton(engine, c.id, closed_at=closed_at, closed_by="packer", class_order=ORDER))
                for c in (mixed, single)]
        assert coder.code(done[0]) == done[0]  # a second call issues nothing more
        with engine.connect() as conn:
            issued = conn.execute(select(center_certificates)).mappings().all()
        assert len(issued) == 1 and issued[0]["number"] == "line-1.Z1" and issued[0]["lot_codes"] == ["YN-A", "YN-B"]
        assert peek(engine, "certificate:line-1") == 2
        again = issue_center_certificate(engine, line_id="line-1", subject_kind="carton", subject_uid=issued[0]["subject_uid"],
                                         lot_ids=[a.id, b.id], quantity="", at=AT, by="t", issuer="x")
        assert again.number == "line-1.Z1" and peek(engine, "certificate:line-1") == 2

        recipe = load_recipe("apple")
        label = carton_label_of(engine, TRACE, recipe, done[0].id)
        assert label is not None and label.certificate.number == "line-1.Z1"
        assert label.certificate.lots == ("YN-A", "YN-B") and label.platform_trace_code == "53A-追溯/0001、53B-0002"
        assert label.grower is None and label.origin == "宝秀镇、坝心镇"
        render(label)  # the certificate block still fits on the label
        plain = carton_label_of(engine, TRACE, recipe, done[1].id)
        assert plain is not None and plain.certificate.number is None and plain.certificate.lots == ("YN-B",)
        view = StoreTraceLookup(engine, TRACE, recipe).view(done[0].gtin or "", "YN-A", done[0].serial)
        assert view is not None and view.platform_trace_code == "53A-追溯/0001、53B-0002"

        lots_csv = list(csv.DictReader(io.StringIO("".join(export_chunks(engine, "lots", "csv")))))
        assert [r["lot_code"] for r in lots_csv] == ["YN-A", "YN-B"]
        assert lots_csv[0]["platform_trace_code"] == "53A-追溯/0001" and lots_csv[0]["grower"] == "张三"
        assert lots_csv[0]["harvest_date"] == "" and lots_csv[0]["certificates_received"] == "1"
        assert lots_csv[0]["started_at"] == "2026-12-02T08:00:00+00:00"
        lots_json = json.loads("".join(export_chunks(engine, "lots", "json")))
        assert lots_json[1]["platform_trace_code"] == "53B-0002" and lots_json[0]["harvest_date"] is None
        assert lots_json[0]["ended_at"] == "2026-12-02T09:00:00+00:00"

        cartons_json = json.loads("".join(export_chunks(engine, "cartons", "json")))
        assert [c["lot_codes"] for c in cartons_json] == [["YN-A", "YN-B"], ["YN-B"]]
        assert cartons_json[0]["certificate_number"] == "line-1.Z1" and cartons_json[1]["certificate_number"] is None
        assert cartons_json[0]["serial"] == done[0].serial and cartons_json[0]["net_weight_g"] == 1000
        assert cartons_json[0]["gs1_hri"].startswith("(01)16901234567899") and cartons_json[0]["compliant"] is True
        cartons_csv = list(csv.DictReader(io.StringIO("".join(export_chunks(engine, "cartons", "csv")))))
        assert json.loads(cartons_csv[0]["lot_codes"]) == ["YN-A", "YN-B"] and cartons_csv[1]["certificate_number"] == ""
        assert cartons_csv[0]["compliant"] == "true" and cartons_csv[0]["size_class"] == ""

        certs = json.loads("".join(export_chunks(engine, "certificates", "json")))
        assert [(c["kind"], c["number"]) for c in certs] == [("incoming", None), ("incoming", "HG-7"), ("center", "line-1.Z1")]
        assert certs[0]["issuer"] == "张三" and certs[0]["form"] == "handwritten" and certs[0]["issued_on"] == "2026-12-01"
        assert certs[0]["contact"] is None and certs[2]["subject_kind"] == "carton" and certs[2]["lot_codes"] == ["YN-A", "YN-B"]
        certs_csv = list(csv.DictReader(io.StringIO("".join(export_chunks(engine, "certificates", "csv")))))
        assert certs_csv[0]["origin"] == "石屏县宝秀镇" and certs_csv[0]["contact"] == "" and certs_csv[0]["number"] == ""
        assert certs_csv[2]["issued_at"] == "2026-12-02T10:00:00+00:00"
        window = json.loads("".join(export_chunks(engine, "certificates", "json", since=parse_bound("2026-12-02T09:30+00:00", "since"))))
        assert [c["kind"] for c in window] == ["center"]
        assert json.loads("".join(export_chunks(engine, "lots", "json", until=parse_bound("2026-12-02", "until")))) == []
    finally:
        engine.dispose()


def test_the_cli_writes_the_same_export_as_the_library(sqlite_url: str, tmp_path: Path) -> None:
    from api.cli import main

    engine = create_store_engine(sqlite_url)
    try:
        migrate(engine)
        lot_store.start_lot(engine, LotDetails("YN-C", "王五", platform_trace_code="53C"), line="l", recipe_name="apple",
                            recipe_hash=None, at=AT, by="t")
        out = tmp_path / "lots.csv"
        assert main(["trace", "export", "lots", "--format", "csv", "--db", sqlite_url, "--out", str(out),
                     "--since", "2026-12-02", "--until", "2026-12-03T00:00+08:00"]) == 0
        assert out.read_bytes() == "".join(export_chunks(engine, "lots", "csv")).encode("utf-8")
        assert out.read_bytes().startswith(b"lot_code,line,grower,") and "王五".encode() in out.read_bytes()
        assert main(["trace", "export", "lots", "--format", "json", "--db", sqlite_url, "--since", "soon"]) == 2
    finally:
        engine.dispose()
