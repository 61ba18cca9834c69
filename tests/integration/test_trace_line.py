"""Traceability on `gradeline run` (the demo line against the simulated world, real composition
root) with a ``[trace]`` table: a carton closed over the API carries its code, its Digital Link
URI opens its consumer view on the line's own resolver, its label prints on `gradeline sim
printer` (its own process), and the EPCIS query answers its commissioning event."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import gradeline_cli, launch_gradeline, stop_gradeline

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

TRACE = """
[trace]
company_prefix = "6901234"
packing_center_gln = "6901234000016"
digital_link_base = "https://trace.example.cn"
printer_host = "127.0.0.1"
printer_port = {port}
intake_gtins = {{ apple = "06901234000016" }}
[[trace.gtins]]
product = "apple"
quality_class = "extra"
size_class = "*"
gtin = "16901234567899"
[[trace.gtins]]
product = "apple"
quality_class = "class_i"
size_class = "*"
gtin = "16901234567882"
[[trace.gtins]]
product = "apple"
quality_class = "class_ii"
size_class = "*"
gtin = "16901234567875"
"""


def test_a_closed_carton_is_coded_resolved_printed_and_commissioned(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    printer = subprocess.Popen([sys.executable, "-m", "api.cli", "sim", "printer", "--port", "0", "--out", str(jobs)],
                               stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert printer.stdout is not None
        match = re.search(r"listening on ([\d.]+):(\d+)", printer.stdout.readline())
        assert match is not None
        config = tmp_path / "line.toml"
        config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/line.db"\n' + TRACE.format(port=match[2]),
                          encoding="utf-8")
        token = gradeline_cli("token", "create", "--role", "operator", "--name", "packer", "--config", str(config),
                              cwd=tmp_path).strip()
        proc, url = launch_gradeline(config, tmp_path)
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
                started = client.post("/api/v1/line/start")
                assert started.status_code in (200, 409), started.text
                deadline = time.monotonic() + 120
                while True:
                    outlet = client.get("/api/v1/outlets").json()["items"][0]
                    if outlet["carton"] and outlet["carton"]["fruit_count"] >= 3:
                        break
                    assert time.monotonic() < deadline, "no fruit reached outlet 1's carton"
                    time.sleep(0.2)
                closed = client.post("/api/v1/outlets/1/carton/close")
                assert closed.status_code == 200, closed.text
                carton = closed.json()
                assert carton["gtin"] == "16901234567899" and carton["serial"].startswith("line-1.")
                link = urlsplit(carton["digital_link"])
                view = client.get(f"{link.path}?{link.query}", headers={"Accept": "application/json"})
                assert view.status_code == 200, view.text
                assert view.json()["serial"] == carton["serial"] and view.json()["lot_summary"]["fruit_graded"] > 0
                printed = client.post(f"/api/v1/cartons/{carton['id']}/label/print")
                assert printed.status_code == 200, printed.text
                zpl = client.get(f"/api/v1/cartons/{carton['id']}/label", params={"format": "zpl"}).content
                while not list(jobs.glob("job-*.zpl")):
                    assert time.monotonic() < deadline + 30, "the printer got no job"
                    time.sleep(0.05)
                assert [p.read_bytes() for p in jobs.glob("job-*.zpl")] == [zpl]
                events = client.get("/api/v1/epcis/events", params={"EQ_bizStep": "commissioning"}).json()
                epcs = [e for ev in events["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
                        for e in ev.get("epcList", [])]
                assert f"https://id.gs1.org/01/16901234567899/21/{carton['serial']}" in epcs
        finally:
            assert stop_gradeline(proc, 60.0) == 0
    finally:
        printer.terminate()
        printer.wait(timeout=30)
