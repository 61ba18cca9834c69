"""Pallets on SQLite and PostgreSQL: SSCCs from the durable counter, cartons put on by id or by a
scanned code in every form, taken off (history kept), one pallet per carton at a time, shipping
(refused when empty, nothing changes after it), the lots of a pallet, and the EPCIS events the
store gives for it (valid against GS1's schema, canonical hashes, found by the query filters)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from epcis_event_hash_generator import hash_generator, json_to_py
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from grading.lots.cartons import Carton, finish_carton, open_cartons
from grading.lots.lots import close_lot
from grading.recipe import load_recipe
from grading.schema import pallet_cartons
from grading.store import create_store_engine, migrate, open_lot
from grading.trace.carton_codes import CartonCoder
from grading.trace.codes import TraceConfig
from grading.trace.epcis import (
    EventQuery,
    carton_epc,
    document,
    pallet_epc,
    query_events,
    validation_errors,
)
from grading.trace.linters import has_valid_check_digit
from grading.trace.pallets import (
    PalletCertifier,
    PalletConflict,
    PalletInputError,
    PalletNotFound,
    add_carton,
    create_pallet,
    get_pallet,
    list_pallets,
    loose_cartons,
    pallet_label_of,
    pallet_lots,
    remove_carton,
    ship_pallet,
)
from grading.trace.serials import LineSerials
from grading.trace.store_events import StoreEventSource
from tests.line_fakes import outlets
from tests.unit.trace.test_epcis import schema  # noqa: F401 (fixture)

TRACE = TraceConfig.model_validate({
    "company_prefix": "6901234",
    "packing_center_gln": "6901234000016",
    "digital_link_base": "https://trace.example.cn",
    "sscc_extension_digit": 3,
    "gtins": [{"product": "apple", "quality_class": "extra", "size_class": "*", "gtin": "16901234567899"}],
})
T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def coded_cartons(engine: Engine, lot_id: int, count: int, serials: LineSerials, *, start: datetime = T0) -> list[Carton]:
    """``count`` closed, coded cartons of outlet 1 (weights from a carton scale, no fruit rows)."""
    recipe = load_recipe("apple")
    coder = CartonCoder(engine, TRACE, serials, product="apple", timezone=UTC)
    out = []
    for n in range(count):
        at = start + timedelta(minutes=10 * n)
        [carton] = open_cartons(engine, lot_id, [outlets()[0]], at=at)
        done = finish_carton(engine, carton.id, closed_at=at + timedelta(minutes=5), closed_by="t",
                             class_order=recipe.quality_class_ids(), scale_weight_g=10_000.0 + n)
        out.append(coder.code(done))
    return out


def test_pallets_are_built_taken_apart_and_shipped(database_url: str, schema: dict[str, Any]) -> None:  # noqa: F811
    engine = create_store_engine(database_url)
    try:
        migrate(engine)
        serials = LineSerials(engine, "line-1", 1)
        lot_a = open_lot(engine, code="YN-A", grower="g", variety="", product="apple", recipe="apple", line="line-1")
        a1, a2 = coded_cartons(engine, lot_a.id, 2, serials)
        close_lot(engine, lot_a.id, at=T0 + timedelta(hours=1), by="t")  # one open lot per line
        lot_b = open_lot(engine, code="YN-B", grower="g", variety="", product="apple", recipe="apple", line="line-1")
        (b1,) = coded_cartons(engine, lot_b.id, 1, serials, start=T0 + timedelta(hours=1))
        [uncoded] = open_cartons(engine, lot_b.id, [outlets()[0]], at=T0 + timedelta(hours=2))

        p1 = create_pallet(engine, TRACE, serials, line="line-1", at=T0 + timedelta(hours=3), by="op")
        p2 = create_pallet(engine, TRACE, serials, line="line-1", at=T0 + timedelta(hours=3), by="op")
        # extension 3, prefix 6901234, the line digit 1 then the counter in 9 digits, check digit
        assert p1.sscc[:17] == "36901234100000001" and p2.sscc[:17] == "36901234100000002"
        assert has_valid_check_digit(p1.sscc) and has_valid_check_digit(p2.sscc) and p1.sscc != p2.sscc
        assert p1.cartons == () and p1.shipped_at is None

        at = T0 + timedelta(hours=4)
        # by id, by the element string as a scanner reports it, and by the Digital Link URI
        add_carton(engine, p1.id, carton_id=a1.id, at=at, by="op")
        add_carton(engine, p1.id, code="]C1" + str(a2.element_string), at=at + timedelta(seconds=1), by="op")
        pallet = add_carton(engine, p1.id, code=str(b1.digital_link), at=at + timedelta(seconds=2), by="op")
        assert [c.carton_id for c in pallet.cartons] == [a1.id, a2.id, b1.id]
        assert pallet.net_weight_g == 10_000 + 10_001 + 10_000 and pallet.lots == ("YN-A", "YN-B") == tuple(pallet_lots(engine, p1.id))

        with pytest.raises(PalletConflict, match="this pallet"):
            add_carton(engine, p1.id, carton_id=a1.id, at=at, by="op")
        with pytest.raises(PalletConflict, match=p1.sscc):
            add_carton(engine, p2.id, carton_id=a1.id, at=at, by="op")
        with pytest.raises(PalletInputError, match="not closed and coded"):
            add_carton(engine, p2.id, carton_id=uncoded.id, at=at, by="op")
        with pytest.raises(PalletInputError, match="not a readable GS1 code"):
            add_carton(engine, p2.id, code="01169012345678", at=at, by="op")
        with pytest.raises(PalletInputError, match="serial"):
            add_carton(engine, p2.id, code="(00)" + p1.sscc, at=at, by="op")
        with pytest.raises(PalletNotFound):
            add_carton(engine, p2.id, code="(01)16901234567899(21)line-1.99", at=at, by="op")
        with pytest.raises(PalletNotFound):
            add_carton(engine, 999, carton_id=a1.id, at=at, by="op")
        with pytest.raises(PalletConflict, match="empty"):
            ship_pallet(engine, p2.id, at=at, by="op")

        # b1 off p1 and onto p2: the first membership stays, with its removal
        off = remove_carton(engine, p1.id, b1.id, at=at + timedelta(minutes=1), by="op2")
        assert [c.carton_id for c in off.cartons] == [a1.id, a2.id] and pallet_lots(engine, p1.id) == ["YN-A"]
        with pytest.raises(PalletNotFound):
            remove_carton(engine, p1.id, b1.id, at=at, by="op")
        add_carton(engine, p2.id, carton_id=b1.id, at=at + timedelta(minutes=2), by="op")
        with engine.connect() as conn:
            history = conn.execute(
                select(pallet_cartons.c.pallet_id, pallet_cartons.c.removed_by).where(pallet_cartons.c.carton_id == b1.id)
                .order_by(pallet_cartons.c.id)
            ).all()
        assert [tuple(h) for h in history] == [(p1.id, "op2"), (p2.id, None)]
        with pytest.raises(IntegrityError), engine.begin() as conn:  # the database holds the rule too
            conn.execute(insert(pallet_cartons).values(uid="x", pallet_id=p1.id, carton_id=b1.id, added_at=at, added_by="t"))
        assert loose_cartons(engine, line="line-1") == []

        shipped = ship_pallet(engine, p1.id, at=at + timedelta(hours=1), by="op", destination="昆明")
        assert shipped.shipped_by == "op" and shipped.destination == "昆明" and shipped.shipped_at is not None
        with pytest.raises(PalletConflict, match="shipped"):
            add_carton(engine, p1.id, carton_id=uncoded.id, at=at, by="op")
        with pytest.raises(PalletConflict, match="shipped"):
            remove_carton(engine, p1.id, a1.id, at=at, by="op")
        with pytest.raises(PalletConflict, match="shipped"):
            ship_pallet(engine, p1.id, at=at, by="op")
        assert [p.id for p in list_pallets(engine, line="line-1")] == [p2.id, p1.id]
        assert [p.id for p in list_pallets(engine, shipped=False)] == [p2.id]
        assert [p.id for p in list_pallets(engine, after_id=p2.id)] == [p1.id]
        assert get_pallet(engine, p1.id) == shipped and get_pallet(engine, 999) is None
        label = pallet_label_of(shipped, TRACE.model_copy(update={"product_names": {"apple": "苹果"}}), load_recipe("apple"))
        assert label.contents == ("苹果 特级 混装 × 2 箱",) and label.lots == ("YN-A",) and label.carton_count == 2
        assert label.net_weight_g == 20_001 and label.shipped_at == shipped.shipped_at and label.destination == "昆明"

        # EPCIS: 4 ADD (packing), 1 DELETE (unpacking), 1 shipping
        events = StoreEventSource(engine, TRACE).events()
        aggregations = [e for e in events if e["type"] == "AggregationEvent"]
        assert sorted((e["action"], e["bizStep"], e["parentID"]) for e in aggregations) == sorted([
            ("ADD", "packing", pallet_epc(p1.sscc)), ("ADD", "packing", pallet_epc(p1.sscc)),
            ("ADD", "packing", pallet_epc(p1.sscc)), ("DELETE", "unpacking", pallet_epc(p1.sscc)),
            ("ADD", "packing", pallet_epc(p2.sscc)),
        ])
        doc = document(events, at)
        assert validation_errors(doc, schema) == []
        without_ids = [{k: v for k, v in e.items() if k != "eventID"} for e in events]
        parsed = json_to_py.event_list_from_epcis_document_str(json.dumps(document(without_ids, at), default=str))
        assert [e["eventID"] for e in events] == hash_generator.epcis_hashes_from_events(parsed)

        b1_epc = carton_epc(str(b1.gtin), str(b1.serial))
        found = query_events(events, EventQuery(match_epc=(b1_epc,), eq_biz_step=("packing", "unpacking"))).events
        assert [(e["action"], e["parentID"]) for e in found] == [
            ("ADD", pallet_epc(p1.sscc)), ("DELETE", pallet_epc(p1.sscc)), ("ADD", pallet_epc(p2.sscc)),
        ]
        ships = query_events(events, EventQuery(eq_biz_step=("shipping",))).events
        assert [(e["epcList"], e["disposition"]) for e in ships] == [([pallet_epc(p1.sscc)], "in_transit")]
        assert query_events(events, EventQuery(match_epc=(pallet_epc(p1.sscc),))).events == ships

        # p2 (YN-B) and a carton of YN-C: it ships only with the center's own 合格证, issued with the shipping
        close_lot(engine, lot_b.id, at=T0 + timedelta(hours=6), by="t")
        lot_c = open_lot(engine, code="YN-C", grower="h", variety="", product="apple", recipe="apple", line="line-1")
        (c1,) = coded_cartons(engine, lot_c.id, 1, serials, start=T0 + timedelta(hours=6))
        add_carton(engine, p2.id, carton_id=c1.id, at=T0 + timedelta(hours=7), by="op")
        later = T0 + timedelta(hours=8)
        for refusing in (None, PalletCertifier(line_id="line-1", issuer="")):
            with pytest.raises(PalletConflict, match="packing_center"):
                ship_pallet(engine, p2.id, at=later, by="op", certifier=refusing)
        assert get_pallet(engine, p2.id).shipped_at is None  # type: ignore[union-attr]
        certifier = PalletCertifier(line_id="line-1", issuer="华宁包装中心", product_name="苹果", origin="华宁县")
        mixed = ship_pallet(engine, p2.id, at=later, by="op", certifier=certifier)
        cert = mixed.certificate
        assert cert is not None and mixed.shipped_at is not None and mixed.lots == ("YN-B", "YN-C")
        assert (cert.number, cert.subject_kind, cert.subject_uid, cert.lot_codes) == ("line-1.Z1", "pallet", mixed.uid, ("YN-B", "YN-C"))
        assert cert.issuer == "华宁包装中心" and cert.quantity == "2 箱 / 20.000 kg" and cert.origin == "华宁县"
        assert get_pallet(engine, p2.id) == mixed and shipped.certificate is None  # one lot: none needed
        assert pallet_label_of(mixed, TRACE, load_recipe("apple")).certificate_number == "line-1.Z1"
    finally:
        engine.dispose()
