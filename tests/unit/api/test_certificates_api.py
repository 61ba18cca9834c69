"""Receiving, mixed-lot cartons and exports through the API, on a running line (fake devices)
with ``[trace]`` and ``[lots] carry_over_partial_cartons``: a lot started with its 追溯码 and
the grower's 合格证; a lot switch keeps outlet 1's partial carton open, so it closes with fruit
of both lots and carries the packing center's certificate on its label; the 追溯码 set later by
a supervisor (audit-logged, 422 naming the field for a bad one); exports streamed as CSV and JSON."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from starlette.testclient import TestClient

from api.app import create_app
from api.config import LotsSettings, load_config
from grading.access import Role
from tests.line_fakes import Fused
from tests.unit.api.conftest import REMOTE_CLIENT, line_factory
from tests.unit.api.test_lots_api import _feed, _until
from tests.unit.trace.test_carton_codes import TRACE


def test_a_partial_carton_carried_across_a_lot_switch_gets_the_centers_certificate(tmp_path: Path) -> None:
    config = load_config(None).model_copy(update={"lots": LotsSettings(carry_over_partial_cartons=True)})
    script: dict[int, list[Fused]] = {}
    app = create_app(line_factory(tmp_path, config=config, script=script, trace=TRACE),
                     live_interval_s=0.05, live_recheck_s=0.1)
    with TestClient(app, client=REMOTE_CLIENT) as client:
        access = app.state.auth.access
        op = {"Authorization": f"Bearer {access.create_token('op', Role.operator, 't')[0]}"}
        reader = {"Authorization": f"Bearer {access.create_token('int', Role.integrator, 't')[0]}"}
        sup = {"Authorization": f"Bearer {access.create_token('sup', Role.supervisor, 't')[0]}"}
        handle = app.state.line
        client.post("/api/v1/line/start", headers=op).raise_for_status()

        def outlet_1() -> dict[str, object]:
            return client.get("/api/v1/outlets", headers=reader).json()["items"][0]["carton"]  # type: ignore[no-any-return]

        last = _feed(client, handle, script, 4)
        _until(lambda: client.get("/api/v1/lots/current", headers=reader).json()["counts"]["fruit_total"] == 4)
        partial = outlet_1()
        assert partial["fruit_count"], partial  # the demo's first fruit are Extra, outlet 1's

        bad = client.post("/api/v1/lots", headers=op, json={"code": "L2", "grower": "王五", "platform_trace_code": "A\nB"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.platform_trace_code", bad.text
        started = client.post("/api/v1/lots", headers=op, json={
            "code": "L2", "grower": "王五", "platform_trace_code": " 5300-L2 ",
            "certificates": [{"issuer": "王五", "form": "electronic", "product_name": "苹果", "origin": "宝秀镇"}],
        })
        assert started.status_code == 200, started.text
        lot = started.json()["lot"]
        assert lot["platform_trace_code"] == "5300-L2" and partial["id"] not in started.json()["closed_cartons"]
        assert outlet_1()["id"] == partial["id"]  # kept open, topped up with L2's fruit
        _feed(client, handle, script, 4, last)
        _until(lambda: client.get("/api/v1/lots/current", headers=reader).json()["counts"]["fruit_total"] == 4)
        closed = client.post("/api/v1/outlets/1/carton/close", headers=op)
        assert closed.status_code == 200, closed.text
        label = client.get(f"/api/v1/cartons/{partial['id']}/label?format=json", headers=reader).json()
        assert label["certificate_lots"] == ["LOT-9", "L2"] and label["certificate_number"] == "line-1.Z1", label
        assert label["platform_trace_code"] == "5300-L2"

        path = f"/api/v1/lots/{lot['id']}/platform-trace-code"
        assert client.put(path, headers=op, json={"platform_trace_code": "X"}).status_code == 403
        refused = client.put(path, headers=sup, json={"platform_trace_code": "9" * 129})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.platform_trace_code"
        assert client.put(path, headers=sup, json={"platform_trace_code": "5300-L2-B"}).json()["platform_trace_code"] == "5300-L2-B"
        posted = client.post(f"/api/v1/lots/{lot['id']}/certificates", headers=op,
                             json={"issuer": "合作社", "number": "HG-9", "issued_on": "2026-12-01"})
        assert posted.status_code == 200 and posted.json()["received_by"] == "token:op", posted.text
        assert client.post(f"/api/v1/lots/{lot['id']}/certificates", headers=op, json={"issuer": "x", "form": "fax"}).status_code == 422
        listed = client.get(f"/api/v1/lots/{lot['id']}/certificates", headers=reader).json()
        listed = listed["items"]
        assert [c["issuer"] for c in listed] == ["王五", "合作社"] and listed[0]["contact"] == ""
        shown = client.get(f"/api/v1/lots/{lot['id']}", headers=reader).json()
        assert [c["number"] for c in shown["certificates"]] == ["", "HG-9"] and shown["platform_trace_code"] == "5300-L2-B"
        # the lot's trace view has its 追溯码, its growers' certificates and the center's for the mixed carton
        first = next(x for x in client.get("/api/v1/lots", headers=reader).json()["items"] if x["code"] == "LOT-9")
        for lot_id, incoming in ((lot["id"], ["王五", "合作社"]), (first["id"], [])):
            trace = client.get(f"/api/v1/lots/{lot_id}/trace", headers=reader).json()
            assert [c["issuer"] for c in trace["incoming_certificates"]] == incoming
            [center] = trace["center_certificates"]
            assert center["number"] == "line-1.Z1" and center["lot_codes"] == ["LOT-9", "L2"]
        assert trace["lot"]["platform_trace_code"] is None  # LOT-9 came without one

        exported = client.get("/api/v1/exports/certificates?format=csv", headers=reader)
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        assert not exported.content.startswith(b"\xef\xbb\xbf")  # no BOM
        rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8"))))
        assert [r["kind"] for r in rows] == ["incoming", "center", "incoming"] and rows[1]["number"] == "line-1.Z1"
        cartons = client.get("/api/v1/exports/cartons?format=json&since=2000-01-01", headers=reader).json()
        assert any(c["lot_codes"] == ["LOT-9", "L2"] for c in cartons)
        assert client.get("/api/v1/exports/lots?since=yesterday", headers=reader).status_code == 422
        assert client.get("/api/v1/exports/lots", headers=op).status_code == 200  # operator is above integrator
        actions = [e["action"] for e in client.get("/api/v1/audit?limit=50", headers=sup).json()["items"]]
        assert {"lot.trace_code", "lot.certificate", "lot.start"} <= set(actions)
