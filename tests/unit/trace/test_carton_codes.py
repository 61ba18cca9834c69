"""Closed cartons get their GS1 identity: on a running line (fake devices) with a ``[trace]``
table, cartons closed through the API carry a GTIN, a serial from the durable counter, the
pack date and net weight; their element strings and Digital Link URIs, read back by an
independent parser (biip), name the same GTIN, lot and serial; no serial is given twice."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import biip
from starlette.testclient import TestClient

from api.app import create_app
from grading.access import Role
from grading.trace.codes import TraceConfig
from grading.trace.serials import peek
from tests.line_fakes import Fused
from tests.unit.api.conftest import REMOTE_CLIENT, line_factory
from tests.unit.api.test_lots_api import _feed, _until

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
        trace = TRACE.model_copy(update={"printer_host": match[1], "printer_port": int(match[2])})
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
