"""A real Prometheus server (Debian's package) scrapes `gradeline run` against the simulated
world on loopback: within 30 s it holds a temperature series for every simulated room, the
shipped alert rules load, and promtool accepts the /metrics exposition the line serves."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

pytestmark = pytest.mark.slow

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ROOMS = {"room-1", "room-2", "room-3", "room-4"}  # the world's four rooms (simulation.world.coldrooms)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_prometheus_scrapes_every_room_and_loads_the_rules(tmp_path: Path, start_gradeline) -> None:  # type: ignore[no-untyped-def]
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    assert prometheus and promtool, "Debian's prometheus package is needed: make test installs it"
    _, url = start_gradeline(f'[database]\nurl = "sqlite:///{tmp_path}/line.db"\n')
    metrics = httpx.get(url + "/metrics", timeout=10).text  # loopback: no token
    checked = subprocess.run([promtool, "check", "metrics"], input=metrics, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    target = urlparse(url).netloc
    shutil.copy(DEPLOY / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [alerts.yml]\n"
        f"scrape_configs:\n  - job_name: gradeline\n    static_configs: [{{targets: ['{target}']}}]\n",
        encoding="utf-8",
    )
    port = _free_port()
    server = subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 30
        rooms: set[str] = set()
        while time.monotonic() < deadline and rooms != ROOMS:
            time.sleep(0.5)
            try:
                answer = httpx.get(f"{api}/query", params={"query": "gradeline_coldroom_temperature_celsius"}, timeout=5).json()
            except httpx.HTTPError:
                continue  # still starting
            rooms = {r["metric"]["room"] for r in answer.get("data", {}).get("result", [])}
        assert rooms == ROOMS, f"series for {sorted(rooms)} only; log: {(tmp_path / 'prometheus.log').read_text()[-2000:]}"
        groups = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
        names = {rule["name"] for group in groups for rule in group["rules"]}
        assert {"ColdroomTemperatureHigh", "ColdroomSensorStale", "LineStoppedWithLotOpen", "RecordWriterFallingBehind"} <= names
        assert all(rule["health"] != "err" for group in groups for rule in group["rules"])
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
