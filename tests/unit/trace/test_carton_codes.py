"""Closed cartons get their GS1 identity: on a running line (fake devices) with a ``[trace]``
table, cartons closed through the API carry a GTIN, a serial from the durable counter, the
pack date and net weight; their element strings and Digital Link URIs, read back by an
independent parser (biip), name the same GTIN, lot and serial; no serial is given twice."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import biip
import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from api.app import create_app
from grading.access import Role
from grading.coldchain.history import ColdchainStore, MinuteRow, minute_of
from grading.lots.cartons import finish_carton, get_carton, open_cartons
from grading.recipe import load_recipe
from grading.schema import lots
from grading.store import create_store_engine, migrate, open_lot
from grading.trace.carton_codes import CartonCoder, code_interrupted
from grading.trace.codes import TraceConfig
from grading.trace.epcis import carton_epc, lot_class, validation_errors
from grading.trace.serials import LineSerials, peek
from grading.trace.store_lookup import StoreTraceLookup
from tests.line_fakes import Fused, outlets
from tests.unit.api.conftest import REMOTE_CLIENT, line_factory
from tests.unit.api.test_lots_api import _feed, _until
from tests.unit.trace.test_epcis import SCHEMA_PATH

REPO = Path(__file__).resolve().parents[3]
TRACE = TraceConfig.model_validate({
    "company_prefix": "6901234",
    "packing_center_gln": "6901234000016",
    "digital_link_base": "https://trace.example.cn",
    "gtins": [
        {"product": "apple", "quality_class": "extra", "size_class": "*", "gtin": "16901234567899"},
        {"product": "apple", "quality_class": "class_i", "size_class": "*", "gtin": "16901234567882"},
    ],
})


def test_closed_cartons_carry_codes_that_parse_back(tmp_path: Path) -> None:
    script: dict[int, list[Fused]] = {}
    app = create_app(line_factory(tmp_path, script=script, trace=TRACE), live_interval_s=0.05, live_recheck_s=0.1)
    with TestClient(app, client=REMOTE_CLIENT) as client:
        access = app.state.auth.access
        op = {"Authorization": f"Bearer {access.create_token('op', Role.operator, 't')[0]}"}
        reader = {"Authorization": f"Bearer {access.create_token('int', Role.integrator, 't')[0]}"}
        handle = app.state.line
        client.post("/api/v1/line/start", headers=op).raise_for_status()
        last, total, closed = -1, 0, []
        for _round in range(4):
            last = _feed(client, handle, script, 3, last)
            total += 3
            _until(lambda t=total: client.get("/api/v1/lots/current", headers=reader).json()["counts"]["fruit_total"] == t)
            done = client.post("/api/v1/outlets/1/carton/close", headers=op)
            assert done.status_code == 200, done.text
            closed.append(done.json())
        lot_code = client.get("/api/v1/lots/current", headers=reader).json()["code"]
        for bad in ("批次1", "A B", "X" * 21):  # AI (10): CSET 82, at most 20 characters
            refused = client.post("/api/v1/lots", headers=op, json={"code": bad, "grower": "g"})
            assert refused.status_code == 409 and "AI (10)" in refused.json()["detail"], refused.text
        coded = [c for c in closed if c["fruit_count"]]
        assert len(coded) >= 3, closed  # most rounds put fruit into outlet 1's carton
        for carton in closed:
            detail = client.get(f"/api/v1/cartons/{carton['id']}", headers=reader).json()
            if not carton["fruit_count"]:
                assert detail["serial"] is None  # an empty carton is not coded
                continue
            assert detail["gtin"] == "16901234567899" and detail["serial"].startswith("line-1.")
            assert detail["hri"].startswith("(01)16901234567899(3103)")
            raw = biip.parse(detail["element_string"])
            assert raw.gs1_message is not None and raw.gs1_message_error is None
            message = raw.gs1_message
            assert message.element_strings.get(ai="01").value == detail["gtin"]
            assert message.element_strings.get(ai="10").value == lot_code
            assert message.element_strings.get(ai="21").value == detail["serial"]
            assert message.element_strings.get(ai="01").gtin is not None  # biip checked the check digit
            grams = round(detail["net_weight_g"])
            assert message.element_strings.get(ai="3103").value == f"{grams:06d}"
            link = biip.parse(detail["digital_link"])
            assert link.gs1_digital_link_uri is not None, link.gs1_digital_link_uri_error
            dl = link.gs1_digital_link_uri.as_gs1_message()
            assert dl.element_strings.get(ai="01").value == detail["gtin"]
            assert dl.element_strings.get(ai="10").value == lot_code
            assert dl.element_strings.get(ai="21").value == detail["serial"]
        serials = [client.get(f"/api/v1/cartons/{c['id']}", headers=reader).json()["serial"] for c in coded]
        assert len(set(serials)) == len(serials)
        # each serial was taken from the committed counter: it is past every one given
        assert peek(handle.engine, "carton:line-1") == 1 + len(serials)


def _zbar(path: Path) -> list[str]:
    out = subprocess.run(["zbarimg", "-q", "--raw", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_a_cartons_label_previews_and_prints_on_the_simulated_printer(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "sim", "printer", "--port", "0", "--out", str(jobs)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        match = re.search(r"listening on ([\d.]+):(\d+)", proc.stdout.readline())
        assert match is not None
        trace = TraceConfig.model_validate(TRACE.model_dump() | {"printer_host": match[1], "printer_port": int(match[2])})
        script: dict[int, list[Fused]] = {}
        app = create_app(line_factory(tmp_path, script=script, trace=trace), live_interval_s=0.05, live_recheck_s=0.1)
        with TestClient(app, client=REMOTE_CLIENT) as client:
            access = app.state.auth.access
            op = {"Authorization": f"Bearer {access.create_token('op', Role.operator, 't')[0]}"}
            reader = {"Authorization": f"Bearer {access.create_token('int', Role.integrator, 't')[0]}"}
            sup = {"Authorization": f"Bearer {access.create_token('sup', Role.supervisor, 't')[0]}"}
            handle = app.state.line
            client.post("/api/v1/line/start", headers=op).raise_for_status()
            _feed(client, handle, script, 8)
            _until(lambda: client.get("/api/v1/lots/current", headers=reader).json()["counts"]["fruit_total"] == 8)
            carton = client.post("/api/v1/outlets/1/carton/close", headers=op).json()
            assert carton["fruit_count"], carton
            detail = client.get(f"/api/v1/cartons/{carton['id']}", headers=reader).json()
            uri = detail["digital_link"]

            png = client.get(f"/api/v1/cartons/{carton['id']}/label", headers=reader)
            assert png.status_code == 200 and png.headers["content-type"] == "image/png"
            (tmp_path / "label.png").write_bytes(png.content)
            assert _zbar(tmp_path / "label.png") == [uri]
            pdf = client.get(f"/api/v1/cartons/{carton['id']}/label?format=pdf", headers=reader)
            assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
            zpl = client.get(f"/api/v1/cartons/{carton['id']}/label?format=zpl", headers=reader)
            assert zpl.text.startswith("^XA") and f"^FDMA,{uri}" in zpl.text
            said = client.get(f"/api/v1/cartons/{carton['id']}/label?format=json", headers=reader).json()
            assert said["digital_link"] == uri and said["hri"] == detail["hri"] and said["quality_class"] == "特级"
            assert said["grower"] == "李*"  # masked (the default privacy)
            assert client.get(f"/api/v1/cartons/{carton['id'] + 1}/label", headers=reader).status_code == 404  # open
            assert client.get(f"/api/v1/cartons/{carton['id']}/label?format=gif", headers=reader).status_code == 422

            assert client.post(f"/api/v1/cartons/{carton['id']}/label/print", headers=reader).status_code == 403
            for _copy in range(2):  # a print and a reprint
                printed = client.post(f"/api/v1/cartons/{carton['id']}/label/print", headers=op)
                assert printed.status_code == 200, printed.text
                assert printed.json()["serial"] == detail["serial"]
            deadline = time.monotonic() + 30
            while len(list(jobs.glob("job-*.zpl"))) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [p.read_bytes() for p in sorted(jobs.glob("job-*.zpl"))] == [zpl.content, zpl.content]
            entries = client.get("/api/v1/audit", headers=sup).json()["items"]
            prints = [e for e in entries if e["action"] == "carton.label.print"]
            assert len(prints) == 2 and all(e["actor"] == "op" and e["target"] == str(carton["id"]) for e in prints)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_resolver_serves_a_closed_cartons_page_from_the_store(tmp_path: Path) -> None:
    script: dict[int, list[Fused]] = {}
    app = create_app(line_factory(tmp_path, script=script, trace=TRACE), live_interval_s=0.05, live_recheck_s=0.1)
    with TestClient(app, client=REMOTE_CLIENT) as client:
        access = app.state.auth.access
        op = {"Authorization": f"Bearer {access.create_token('op', Role.operator, 't')[0]}"}
        reader = {"Authorization": f"Bearer {access.create_token('int', Role.integrator, 't')[0]}"}
        handle = app.state.line
        client.post("/api/v1/line/start", headers=op).raise_for_status()
        _feed(client, handle, script, 8)
        _until(lambda: client.get("/api/v1/lots/current", headers=reader).json()["counts"]["fruit_total"] == 8)
        lot = client.get("/api/v1/lots/current", headers=reader).json()
        # the lot went into cold room 冷库1 ten minutes ago; the room logged a reading each minute
        now = datetime.now(UTC)
        ColdchainStore(handle.engine, lambda: now - timedelta(minutes=10)).move(lot["id"], "冷库1", user="op")
        minutes = [minute_of(now - timedelta(minutes=m)) for m in range(9, 0, -1)]
        ColdchainStore(handle.engine).write(
            [MinuteRow("冷库1", "temperature", at, 3.0 + i / 10, 3.0 + i / 10, 3.0 + i / 10, 1) for i, at in enumerate(minutes)]
        )
        carton = client.post("/api/v1/outlets/1/carton/close", headers=op).json()
        detail = client.get(f"/api/v1/cartons/{carton['id']}", headers=reader).json()
        path = urlsplit(detail["digital_link"])
        at = f"{path.path}?{path.query}"

        page = client.get(at)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert detail["serial"] in page.text and "<svg" in page.text and "特级" in page.text
        view = client.get(at, headers={"Accept": "application/json"}).json()
        assert (view["gtin"], view["lot"], view["serial"]) == (detail["gtin"], lot["code"], detail["serial"])
        assert view["net_weight_g"] == round(detail["net_weight_g"]) and view["fruit_count"] == carton["fruit_count"]
        assert view["quality_class"] == "特级" and view["grower"] == "李*"  # masked: the default privacy
        assert view["pack_date"] == detail["pack_date"]
        packout = client.get(f"/api/v1/lots/{lot['id']}/packout", headers=reader).json()
        assert view["lot_summary"]["fruit_graded"] == packout["fruit"] == 8
        assert sum(c["fruit"] for c in view["lot_summary"]["classes"]) == 8
        [series] = view["temperatures"]
        assert series["room"] == "冷库1"
        assert [p["temperature_c"] for p in series["points"]] == [round(3.0 + i / 10, 2) for i in range(9)]

        lot_page = client.get(f"/01/{detail['gtin']}/10/{lot['code']}", headers={"Accept": "application/json"}).json()
        assert lot_page["lot"] == lot["code"] and lot_page["serial"] is None and lot_page["temperatures"]
        assert client.get(f"/01/{detail['gtin']}", headers={"Accept": "application/json"}).json()["product"] == "apple"
        for unknown in (
            f"/01/{detail['gtin']}/10/{lot['code']}/21/line-1.999",  # a serial never given
            f"/01/{detail['gtin']}/10/OTHER/21/{detail['serial']}",  # the serial with another lot
            f"/01/16901234567875/10/{lot['code']}/21/{detail['serial']}",  # another (valid) GTIN
        ):
            assert client.get(unknown).status_code == 404, unknown
            assert client.get(unknown, headers={"Accept": "application/json"}).status_code == 404, unknown


def test_coding_and_lookup_on_sqlite_and_postgresql(database_url: str) -> None:
    """The coder and the store lookup on both databases: a carton closed with a scale reading
    (no fruit rows) is coded once, looked up by its code, and a second code call changes nothing."""
    engine = create_store_engine(database_url)
    try:
        migrate(engine)
        lot = open_lot(engine, code="YN-1", grower="张三丰", variety="", product="apple", recipe="apple", line="line-1")
        recipe = load_recipe("apple")
        [carton] = open_cartons(engine, lot.id, [outlets()[0]], at=datetime(2026, 12, 2, 16, 30, tzinfo=UTC))
        done = finish_carton(engine, carton.id, closed_at=datetime(2026, 12, 2, 16, 40, tzinfo=UTC), closed_by="t",
                             class_order=recipe.quality_class_ids(), scale_weight_g=10_012.4)
        coder = CartonCoder(engine, TRACE, LineSerials(engine, "line-1", 1), product="apple",
                            timezone=timezone(timedelta(hours=8)))
        coded = coder.code(done)
        assert coded.serial == "line-1.1" and coded.pack_date == date(2026, 12, 3)  # 00:40 in Beijing
        assert coded.element_string == "0116901234567899310301001213261203" + "10YN-1\x1d21line-1.1"
        assert coder.code(coded) == coded and get_carton(engine, carton.id) == coded
        view = StoreTraceLookup(engine, TRACE, recipe).view("16901234567899", "YN-1", "line-1.1")
        assert view is not None and view.net_weight_g == 10_012 and view.grower == "张**"
        assert view.lot_summary is not None and view.lot_summary.fruit_graded == 0 and view.temperatures == []
        assert StoreTraceLookup(engine, TRACE, recipe).view("16901234567899", "YN-1", "line-1.2") is None
    finally:
        engine.dispose()


def _event_list(body: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = body["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return events


def test_the_epcis_route_serves_the_stores_events_valid_against_the_schema(tmp_path: Path) -> None:
    trace = TraceConfig.model_validate(TRACE.model_dump() | {"intake_gtins": {"apple": "06901234000016"}})
    script: dict[int, list[Fused]] = {}
    app = create_app(line_factory(tmp_path, script=script, trace=trace), live_interval_s=0.05, live_recheck_s=0.1)
    with TestClient(app, client=REMOTE_CLIENT) as client:
        access = app.state.auth.access
        op = {"Authorization": f"Bearer {access.create_token('op', Role.operator, 't')[0]}"}
        reader = {"Authorization": f"Bearer {access.create_token('int', Role.integrator, 't')[0]}"}
        handle = app.state.line
        client.post("/api/v1/line/start", headers=op).raise_for_status()
        lot = client.get("/api/v1/lots/current", headers=reader).json()
        now = datetime.now(UTC)
        # in cold room 冷库1 for the last 40 minutes, a reading each minute, one minute out of band
        ColdchainStore(handle.engine, lambda: now - timedelta(minutes=40)).move(lot["id"], "冷库1", user="op")
        minutes = [minute_of(now - timedelta(minutes=m)) for m in range(40, 0, -1)]
        ColdchainStore(handle.engine).write([
            MinuteRow("冷库1", "temperature", at, 3.0, 4.0, 3.5, 1, out_of_band_s=30.0 if i == 5 else 0.0)
            for i, at in enumerate(minutes)
        ])
        last, total, closed = -1, 0, []
        for _round in range(3):
            last = _feed(client, handle, script, 3, last)
            total += 3
            _until(lambda t=total: client.get("/api/v1/lots/current", headers=reader).json()["counts"]["fruit_total"] == t)
            closed.append(client.post("/api/v1/outlets/1/carton/close", headers=op).json())
        client.post(f"/api/v1/lots/{lot['id']}/close", headers=op).raise_for_status()
        serials = [client.get(f"/api/v1/cartons/{c['id']}", headers=reader).json()["serial"] for c in closed]
        epcs = sorted(carton_epc("16901234567899", s) for s in serials if s)
        assert epcs

        answer = client.get("/api/v1/epcis/events", headers=reader, params={"perPage": 1000})
        assert answer.status_code == 200, answer.text
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        assert validation_errors(answer.json(), schema) == []
        events = _event_list(answer.json())
        commissioned = [e for e in events if e.get("bizStep") == "commissioning" and e["type"] == "ObjectEvent"]
        assert sorted(e["epcList"][0] for e in commissioned) == epcs
        [transformation] = [e for e in events if e["type"] == "TransformationEvent"]
        assert sorted(transformation["outputEPCList"]) == epcs
        [intake] = transformation["inputQuantityList"]
        assert intake["epcClass"] == lot_class("06901234000016", lot["code"]) and intake["uom"] == "KGM"
        sensors = [e for e in events if e.get("bizStep") == "sensor_reporting"]
        readings = [r for e in sensors for el in e["sensorElementList"] for r in el["sensorReport"]]
        assert len(sensors) in (3, 4)  # 40 minutes in 15-minute intervals (aligned to the clock)
        assert sum(1 for r in readings if r.get("exception") == "ALARM_CONDITION") == 1
        assert all(r["minValue"] == 3.0 and r["maxValue"] == 4.0 and r["meanValue"] == 3.5 for r in readings)
        assert len({e["eventID"] for e in events}) == len(events)

        only_sensors = client.get("/api/v1/epcis/events", headers=reader, params={"EQ_bizStep": "sensor_reporting"})
        assert len(_event_list(only_sensors.json())) == len(sensors)
        one = client.get("/api/v1/epcis/events", headers=reader, params={"MATCH_epc": epcs[0]})
        assert [e["type"] for e in _event_list(one.json())] == ["ObjectEvent"]
        again = client.get("/api/v1/epcis/events", headers=reader, params={"perPage": 1000})
        assert [e["eventID"] for e in _event_list(again.json())] == [e["eventID"] for e in events]  # stable hashes


def test_a_line_whose_outlets_pack_a_kind_without_a_gtin_is_refused(tmp_path: Path) -> None:
    from api.compose import _carton_coder, label_printer
    from api.config import parse_config

    config = parse_config({"database": {"url": f"sqlite:///{tmp_path}/line.db"},
                           "trace": TRACE.model_dump() | {"gtins": TRACE.model_dump()["gtins"][:1]}})
    recipe = load_recipe(config.recipe)
    engine = create_store_engine(config.database.url)
    try:
        with pytest.raises(ValueError, match=r"trace\.gtins: no GTIN for outlet \d+: product='apple' quality_class='class_i'"):
            _carton_coder(config, recipe, engine, LineSerials(engine, "line-1", 1))
        assert label_printer(config) is None  # no printer_host: no printing
        chinese_lot = parse_config({"database": {"url": f"sqlite:///{tmp_path}/line.db"}, "lot": {"code": "批次1"},
                                    "trace": TRACE.model_dump() | {"gtins": [*TRACE.model_dump()["gtins"], {
                                        "product": "apple", "quality_class": "class_ii", "size_class": "*",
                                        "gtin": "16901234567875"}]}})
        with pytest.raises(ValueError, match=r"lot\.code: .*AI \(10\)"):
            _carton_coder(chinese_lot, recipe, engine, LineSerials(engine, "line-1", 1))
    finally:
        engine.dispose()


def test_cartons_a_stop_left_uncoded_are_coded_at_the_next_start(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    try:
        migrate(engine)
        recipe = load_recipe("apple")
        old = open_lot(engine, code="OLD", grower="", variety="", product="apple", recipe="apple", line="line-1")
        with engine.begin() as conn:  # OLD was closed long ago; its carton predates [trace]
            conn.execute(update(lots).where(lots.c.id == old.id).values(ended_at=datetime(2026, 1, 1, tzinfo=UTC)))
        lot = open_lot(engine, code="NOW", grower="", variety="", product="apple", recipe="apple", line="line-1")
        done = []
        for lot_id in (old.id, lot.id, lot.id):
            [carton] = open_cartons(engine, lot_id, [outlets()[0]], at=datetime(2026, 12, 2, 8, tzinfo=UTC))
            done.append(finish_carton(engine, carton.id, closed_at=datetime(2026, 12, 2, 9, tzinfo=UTC), closed_by="t",
                                      class_order=recipe.quality_class_ids(), scale_weight_g=5000.0))
        with engine.begin() as conn:  # NOW was closed too: the stop came between its cartons' totals and codes
            conn.execute(update(lots).where(lots.c.id == lot.id).values(ended_at=datetime(2026, 12, 2, 9, tzinfo=UTC)))
        coder = CartonCoder(engine, TRACE, LineSerials(engine, "line-1", 1), product="apple", timezone=UTC)
        coded = code_interrupted(engine, coder, "line-1")
        assert [c.id for c in coded] == [done[1].id, done[2].id]
        assert [c.serial for c in coded] == ["line-1.1", "line-1.2"]
        assert get_carton(engine, done[0].id).serial is None  # type: ignore[union-attr]
        assert code_interrupted(engine, coder, "line-1") == []  # nothing twice
    finally:
        engine.dispose()
