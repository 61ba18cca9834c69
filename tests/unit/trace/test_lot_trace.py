"""A lot's trace view (GET /api/v1/lots/{id}/trace) on a running line (fake devices) coded with
the demo's own ``[trace]``: grower, lot, pack-out, the closed cartons with their demo codes (GS1
prefix 952, check digits valid), and the cold-room stay with its temperatures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import biip
from starlette.testclient import TestClient

from api.app import create_app
from api.cli.run import demo_link_base
from api.config import demo_trace, load_config
from grading.access import Role
from grading.coldchain.history import ColdchainStore, MinuteRow, minute_of
from grading.trace.carton_codes import missing_gtins
from tests.line_fakes import Fused
from tests.unit.api.conftest import REMOTE_CLIENT, line_factory
from tests.unit.api.test_lots_api import _feed, _until


def test_the_demo_trace_codes_every_demo_carton_kind_with_demo_keys() -> None:
    demo = load_config(None)
    assert demo.trace is not None and demo.trace.company_prefix.startswith("952")  # GS1's prefix for examples
    assert missing_gtins(demo.trace, "apple", demo.outlets) == []
    assert all(g.gtin[1:].startswith(demo.trace.company_prefix) for g in demo.trace.gtins)
    assert demo.trace.printer_host is None  # the simulated world brings the demo's printer
    # the QR links to the demo's own server, where a browser on this PC finds it
    for host, port, base in (("127.0.0.1", 9000, "http://127.0.0.1:9000"), ("0.0.0.0", 8080, "http://127.0.0.1:8080"),
                             ("::", 8080, "http://[::1]:8080"), ("192.168.1.5", 80, "http://192.168.1.5:80")):
        linked = demo_link_base(demo, host, port).trace
        assert linked is not None and linked.digital_link_base == base


def test_a_lots_trace_runs_from_grower_to_cartons_and_cold_rooms(tmp_path: Path) -> None:
    script: dict[int, list[Fused]] = {}
    app = create_app(line_factory(tmp_path, script=script, trace=demo_trace()), live_interval_s=0.05, live_recheck_s=0.1)
    with TestClient(app, client=REMOTE_CLIENT) as client:
        access = app.state.auth.access
        op = {"Authorization": f"Bearer {access.create_token('op', Role.operator, 't')[0]}"}
        reader = {"Authorization": f"Bearer {access.create_token('int', Role.integrator, 't')[0]}"}
        handle = app.state.line
        client.post("/api/v1/line/start", headers=op).raise_for_status()
        _feed(client, handle, script, 6)
        _until(lambda: client.get("/api/v1/lots/current", headers=reader).json()["counts"]["fruit_total"] == 6)
        lot = client.get("/api/v1/lots/current", headers=reader).json()
        now = datetime.now(UTC)
        ColdchainStore(handle.engine, lambda: now - timedelta(minutes=5)).move(lot["id"], "冷库1", user="op")
        minutes = [minute_of(now - timedelta(minutes=m)) for m in range(4, 0, -1)]
        ColdchainStore(handle.engine).write(
            [MinuteRow("冷库1", "temperature", at, 2.0 + i, 2.0 + i, 2.0 + i, 1) for i, at in enumerate(minutes)]
        )
        carton = client.post("/api/v1/outlets/1/carton/close", headers=op).json()

        got = client.get(f"/api/v1/lots/{lot['id']}/trace", headers=reader)
        assert got.status_code == 200, got.text
        trace = got.json()
        assert trace["grower"] == {"name": "李四", "grower_id": "", "public_name": "李*"}  # staff see the full name
        assert trace["lot"]["code"] == lot["code"] == "LOT-9" and trace["lot"]["closed_at"] is None
        assert trace["packout"]["fruit"] == 6 and sum(c["fruit"] for c in trace["packout"]["quality_classes"]) == 6
        assert trace["cartons_total"] == 1 and trace["packout"]["cartons_closed"] == 1
        [traced] = trace["cartons"]
        assert traced["id"] == carton["id"] and traced["serial"] == carton["serial"]
        assert carton["fruit_count"]  # a carton with fruit is coded with the demo's keys
        assert traced["digital_link"].startswith("http://127.0.0.1:8080/01/19521234000010/10/LOT-9/21/")
        link = biip.parse(traced["digital_link"]).gs1_digital_link_uri
        assert link is not None
        gtin = link.as_gs1_message().element_strings.get(ai="01")
        assert gtin is not None and gtin.value == "19521234000010" and gtin.gtin is not None  # check digit valid
        [stay] = trace["cold_stays"]
        assert stay["room"] == "冷库1" and stay["left_at"] is None
        assert (stay["temperature_min_c"], stay["temperature_max_c"]) == (2.0, 5.0)

        assert trace["pallets"] == [] and trace["incoming_certificates"] == [] == trace["center_certificates"]

        # on a pallet, shipped: the trace runs on to its SSCC (one lot: no center certificate)
        pallet = client.post("/api/v1/pallets", headers=op).json()
        client.post(f"/api/v1/pallets/{pallet['id']}/cartons", headers=op, json={"carton_id": carton["id"]}).raise_for_status()
        client.post(f"/api/v1/pallets/{pallet['id']}/ship", headers=op, json={"destination": "昆明"}).raise_for_status()
        [on] = client.get(f"/api/v1/lots/{lot['id']}/trace", headers=reader).json()["pallets"]
        assert (on["sscc"], on["cartons_of_lot"], on["carton_count"], on["lots"]) == (pallet["sscc"], 1, 1, ["LOT-9"])
        assert on["shipped_at"] is not None and on["destination"] == "昆明" and on["certificate_number"] is None

        assert client.get("/api/v1/lots/999/trace", headers=reader).status_code == 404
