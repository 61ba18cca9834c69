"""The shipped Prometheus files, checked by Debian's promtool (an independent parser): the alert
rules' own unit tests pass, the scrape example is valid, the exposition gradeline serves is
accepted by ``promtool check metrics``, and the Grafana dashboard only queries metrics gradeline
exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from api.metrics import AlarmCollector, ColdroomCollector, LineCollector
from drivers.interfaces import SensorReading
from grading.alarms import AlarmEngine
from grading.coldchain.config import RoomSettings
from grading.coldchain.monitor import ColdchainMonitor
from tests.line_fakes import FakeCamera, FakePlc, FakeScale, make_runtime

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed")


def _promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=60)


def test_alert_rules_pass_their_promtool_tests() -> None:
    result = _promtool("test", "rules", "alerts.test.yml", cwd=DEPLOY / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_scrape_example_and_rules_are_valid() -> None:
    result = _promtool("check", "config", "prometheus.yml", cwd=DEPLOY / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr


def _exposition(tmp_path: Path) -> str:
    t = [100.0]
    clock = lambda: t[0]  # noqa: E731
    wall = lambda: datetime(2026, 12, 2, tzinfo=UTC) + timedelta(seconds=t[0])  # noqa: E731
    engine = AlarmEngine(clock=clock, wall_clock=wall)
    monitor = ColdchainMonitor([RoomSettings(name="room-1"), RoomSettings(name="room-2")], engine, clock=clock, wall_clock=wall)
    monitor.on_reading("room-1", SensorReading(2.0, 0.9, 100.0))
    monitor.on_reading("room-2", SensorReading(6.0, 0.8, 100.0))
    monitor.tick()
    health = SimpleNamespace(last_ok_t=100.0, failures=2, is_up=lambda now: True)
    poller = SimpleNamespace(health={"room-1": health, "room-2": health})
    plc = FakePlc(8.0)
    runtime = make_runtime(writer=SimpleNamespace(health=lambda: SimpleNamespace(
        pending_rows=0, oldest_pending_age_s=0.0, retries_total=0), rows_written=0), lot=SimpleNamespace(code="LOT-1"),
        plc=plc, camera=FakeCamera(), scales=[FakeScale(plc, 0)], line_name="line-1")
    runtime.counters.by_quality_size[("extra", "75-80")] = 3
    registry = CollectorRegistry()
    registry.register(LineCollector(runtime, poller, clock))  # type: ignore[arg-type]
    registry.register(ColdroomCollector(poller, monitor, clock))  # type: ignore[arg-type]
    registry.register(AlarmCollector(engine))
    return generate_latest(registry).decode()


def test_promtool_accepts_the_exposition(tmp_path: Path) -> None:
    text = _exposition(tmp_path)
    for name in ('gradeline_coldroom_temperature_celsius{room="room-2"} 6.0', 'gradeline_device_up{device="room-1"} 1.0',
                 'gradeline_fruits_total{line="line-1",quality="extra",size="75-80"} 3.0',
                 'gradeline_alarm_active{alarm="room-2.temperature_high",priority="high"} 0.0',
                 "gradeline_sensor_last_read_timestamp_seconds{device=\"room-1\"}", "gradeline_decision_latency_seconds_bucket"):
        assert name in text
    result = _promtool("check", "metrics", stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_only_exported_metrics(tmp_path: Path) -> None:
    text = _exposition(tmp_path)
    exported = set(re.findall(r"^(gradeline_[a-z_]+)", text, re.MULTILINE))
    dashboard = json.loads((DEPLOY / "grafana" / "gradeline.json").read_text(encoding="utf-8"))
    queried = {
        name for panel in dashboard["panels"] for target in panel.get("targets", [])
        for name in re.findall(r"gradeline_[a-z_]+", target["expr"])
    }
    assert queried and queried <= exported, queried - exported
    rules = (DEPLOY / "prometheus" / "alerts.yml").read_text(encoding="utf-8")
    assert set(re.findall(r"gradeline_[a-z_]+", rules)) <= exported
