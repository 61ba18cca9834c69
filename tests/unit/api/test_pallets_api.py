"""The pallet routes on a line with ``[trace]`` (fake devices): create, put cartons on by id and by
scanned code, take one off, ship (empty refused), the SSCC label in three formats and printed,
each mutation in the audit log; problem+json for 404/409/422; 409 on a line without ``[trace]``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import zxingcpp
from PIL import Image
from starlette.testclient import TestClient

from api.app import create_app
from grading.access import Role
from grading.trace.epcis import pallet_epc, validation_errors
from tests.unit.api.conftest import REMOTE_CLIENT, Api, line_factory
from tests.unit.trace.test_epcis import schema  # noqa: F401 (fixture)
from tests.unit.trace.test_pallets import TRACE


class _Printer:
    host, port = "printer.test", 9100

    def __init__(self) -> None:
        self.jobs: list[bytes] = []

    async def print_job(self, job: bytes) -> None:
        self.jobs.append(job)


def test_a_pallet_is_built_shipped_labelled_and_audited(tmp_path: Path, schema: dict[str, Any]) -> None:  # noqa: F811
    app = create_app(line_factory(tmp_path, trace=TRACE), live_interval_s=0.05, live_recheck_s=0.1)
    with TestClient(app, client=REMOTE_CLIENT) as client:
        access = app.state.auth.access
        op = {"Authorization": f"Bearer {access.create_token('op', Role.operator, 't')[0]}"}
        reader = {"Authorization": f"Bearer {access.create_token('int', Role.integrator, 't')[0]}"}
        sup = {"Authorization": f"Bearer {access.create_token('sup', Role.supervisor, 't')[0]}"}
        printer = _Printer()
        app.state.line.printer = printer
        closed = []
        for grams in (10_000, 10_500):  # a carton scale's reading: coded without fruit rows
            done = client.post("/api/v1/outlets/1/carton/close", headers=op, json={"scale_weight_g": grams})
            assert done.status_code == 200, done.text
            closed.append(client.get(f"/api/v1/cartons/{done.json()['id']}", headers=reader).json())
        assert all(c["serial"] for c in closed), closed
        loose = client.get("/api/v1/pallets/loose-cartons", headers=reader).json()["items"]
        assert [c["carton_id"] for c in loose] == [closed[1]["id"], closed[0]["id"]]

        assert client.post("/api/v1/pallets", headers=reader).status_code == 403
        made = client.post("/api/v1/pallets", headers=op, json={})
        assert made.status_code == 200, made.text
        pallet = made.json()
        assert pallet["sscc"].startswith("369012341") and pallet["hri"] == f"(00){pallet['sscc']}"
        pid = pallet["id"]

        def problem(response: Any, status: int) -> dict[str, Any]:
            assert response.status_code == status, response.text
            assert response.headers["content-type"] == "application/problem+json"
            body: dict[str, Any] = response.json()
            return body

        problem(client.post(f"/api/v1/pallets/{pid}/ship", headers=op), 409)  # empty
        on = client.post(f"/api/v1/pallets/{pid}/cartons", headers=op, json={"carton_id": closed[0]["id"]})
        assert on.status_code == 200, on.text
        scanned = "]d2" + closed[1]["element_string"]  # as a DataMatrix scanner types it
        on = client.post(f"/api/v1/pallets/{pid}/cartons", headers=op, json={"code": scanned})
        assert on.status_code == 200 and on.json()["carton_count"] == 2 and on.json()["net_weight_g"] == 20_500
        assert on.json()["lots"] == ["LOT-9"]
        problem(client.post(f"/api/v1/pallets/{pid}/cartons", headers=op, json={"carton_id": closed[0]["id"]}), 409)
        problem(client.post(f"/api/v1/pallets/{pid}/cartons", headers=op, json={"code": "nonsense"}), 422)
        problem(client.post(f"/api/v1/pallets/{pid}/cartons", headers=op, json={}), 422)
        problem(client.post("/api/v1/pallets/999/cartons", headers=op, json={"carton_id": closed[0]["id"]}), 404)
        off = client.delete(f"/api/v1/pallets/{pid}/cartons/{closed[0]['id']}", headers=op)
        assert off.status_code == 200 and [c["carton_id"] for c in off.json()["cartons"]] == [closed[1]["id"]]
        problem(client.delete(f"/api/v1/pallets/{pid}/cartons/{closed[0]['id']}", headers=op), 404)

        png = client.get(f"/api/v1/pallets/{pid}/label", headers=reader)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        (bars,) = [b for b in zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)).convert("L"))
                   if "128" in str(b.format)]
        assert bars.bytes.decode("ascii") == "00" + pallet["sscc"]
        pdf = client.get(f"/api/v1/pallets/{pid}/label?format=pdf", headers=reader)
        assert pdf.content.startswith(b"%PDF")
        zpl = client.get(f"/api/v1/pallets/{pid}/label?format=zpl", headers=reader)
        assert f">;>800{pallet['sscc']}" in zpl.text
        printed = client.post(f"/api/v1/pallets/{pid}/label/print", headers=op)
        assert printed.status_code == 200 and printer.jobs == [zpl.content]

        shipped = client.post(f"/api/v1/pallets/{pid}/ship", headers=op, json={"destination": "昆明"})
        assert shipped.status_code == 200 and shipped.json()["shipped_by"] == "token:op"
        assert shipped.json()["destination"] == "昆明"
        problem(client.post(f"/api/v1/pallets/{pid}/cartons", headers=op, json={"carton_id": closed[0]["id"]}), 409)
        problem(client.get("/api/v1/pallets/999", headers=reader), 404)
        listed = client.get("/api/v1/pallets?shipped=true", headers=reader).json()
        assert [p["id"] for p in listed["items"]] == [pid] and listed["next_cursor"] is None
        assert client.get("/api/v1/pallets?shipped=false", headers=reader).json()["items"] == []

        for step, expected in (("packing", 2), ("unpacking", 1), ("shipping", 1)):
            answer = client.get(f"/api/v1/epcis/events?EQ_bizStep={step}", headers=reader)
            assert answer.status_code == 200, answer.text
            assert validation_errors(answer.json(), schema) == []
            found = answer.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            assert len(found) == expected and all(pallet_epc(pallet["sscc"]) in (e.get("parentID"), *e.get("epcList", []))
                                                  for e in found), found

        entries = client.get("/api/v1/audit", headers=sup, params={"limit": 100}).json()["items"]
        actions = [(e["action"], e["outcome"]) for e in entries if e["action"].startswith("pallet.")]
        assert sorted(set(actions)) == sorted({
            ("pallet.create", "ok"), ("pallet.ship", "refused"), ("pallet.carton.add", "ok"),
            ("pallet.carton.add", "refused"), ("pallet.carton.remove", "ok"), ("pallet.carton.remove", "refused"),
            ("pallet.label.print", "ok"), ("pallet.ship", "ok"),
        })


def test_a_line_without_trace_builds_no_pallets(api: Api) -> None:
    refused = api.client.post("/api/v1/pallets", headers=api.bearer(Role.operator))
    assert refused.status_code == 409 and "[trace]" in refused.json()["detail"]
    assert api.client.get("/api/v1/pallets", headers=api.bearer(Role.integrator)).status_code == 409
