"""`gradeline run` as a subprocess: serves the API, sorts simulated fruit, shuts down cleanly.

Checks the foundation's promise end to end: fruit flow within seconds, and after SIGINT the
``fruit`` table holds exactly as many rows as the API reported (nothing lost, nothing doubled).
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import STDERR_FILE, gradeline_cli

pytestmark = pytest.mark.slow


def _wait_for(predicate, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Running:
    def __init__(self, proc: subprocess.Popen[str], base_url: str, token: str) -> None:
        self.proc = proc
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, timeout=5, headers={"Authorization": f"Bearer {token}"})

    def line(self) -> dict:  # type: ignore[type-arg]
        response = self.client.get("/api/v1/line")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def demo(tmp_path: Path, start_gradeline) -> Iterator[tuple[Running, Path]]:  # type: ignore[no-untyped-def]
    db = tmp_path / "line.db"
    config = tmp_path / "line.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{db}"\n', encoding="utf-8")
    # an operator token, as a line's own MES bridge would hold: reads and start/stop
    token = gradeline_cli("token", "create", "--role", "operator", "--name", "demo-test", "--config", str(config), cwd=tmp_path)
    proc, url = start_gradeline(config.read_text(encoding="utf-8"))
    running = Running(proc, url, token.strip())
    try:
        yield running, db
    finally:
        running.client.close()


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from fruit").fetchone()[0])


def test_demo_sorts_fruit_and_sigint_loses_nothing(demo: tuple[Running, Path]) -> None:
    run, db = demo
    health = _wait_for(lambda: _try_json(run, "/api/v1/health"), 30, "health")
    assert health["status"] in {"ok", "starting"}
    first = _wait_for(lambda: (s := run.line())["fruit_total"] > 0 and s, 30, "first fruit")
    later = _wait_for(lambda: (s := run.line())["fruit_total"] > first["fruit_total"] and s, 30, "more fruit")
    assert later["state"] == "running"
    assert later["lot"] == "DEMO-LOT-1"
    assert sum(later["quality_classes"].values()) == later["fruit_total"]
    assert sum(later["size_classes"].values()) == later["fruit_total"]
    assert sum(later["outlets"].values()) == later["fruit_total"]

    metrics = run.client.get("/metrics")
    assert metrics.status_code == 200
    assert "gradeline_fruits_total" in metrics.text

    stopped = run.client.post("/api/v1/line/stop").json()
    assert stopped["state"] == "stopped"
    settled = run.line()["fruit_total"]
    assert settled == stopped["fruit_total"]

    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(timeout=30) == 0
    assert _rows(db) == settled


def test_sigint_while_running_writes_every_graded_fruit(demo: tuple[Running, Path]) -> None:
    run, db = demo
    _wait_for(lambda: _try_json(run, "/api/v1/line", "fruit_total"), 30, "fruit")
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(timeout=30) == 0
    stderr = (db.parent / STDERR_FILE).read_text(encoding="utf-8")
    match = re.search(r"line stopped: fruit_total=(\d+) fruit_rows_written=(\d+)", stderr)
    assert match, stderr[-2000:]
    assert _rows(db) == int(match.group(1)) == int(match.group(2)) > 0


def _try_json(run: Running, path: str, key: str | None = None):  # type: ignore[no-untyped-def]
    try:
        response = run.client.get(path)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    body = response.json()
    return body if key is None else body.get(key)
