"""Measure the demo line from the outside, as an operator would: start `gradeline run --port 0`
in an empty directory, poll GET /api/v1/line until fruit flow, watch 10 s, POST
/api/v1/line/stop, send SIGINT, then count the rows in the SQLite file it wrote.

Usage: .venv/bin/python scripts/measure_demo.py [path/to/gradeline]
Prints one JSON line: first_fruit_s (from process start), fruit_per_s, late_total,
fruit_total (as the stop call reported it), exit_s, exit_code, rows.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def main() -> int:
    gradeline = sys.argv[1] if len(sys.argv) > 1 else str(Path(sys.executable).with_name("gradeline"))
    workdir = Path(tempfile.mkdtemp(prefix="gradeline-demo-"))
    started = time.monotonic()
    proc = subprocess.Popen(
        [gradeline, "run", "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=workdir,
    )
    assert proc.stdout is not None
    match = re.search(r"serving (http://\S+)/", proc.stdout.readline())
    if match is None:
        proc.kill()
        print("gradeline run printed no address", file=sys.stderr)
        return 1
    url = match.group(1)

    def line() -> dict[str, object]:
        with urllib.request.urlopen(url + "/api/v1/line", timeout=5) as answer:
            return json.load(answer)

    first_fruit_s = flow_from = None
    total_then = 0
    while time.monotonic() - started < 60:
        try:
            total = int(line().get("fruit_total", 0))  # type: ignore[call-overload]
        except OSError:
            total = 0
        if total > 0 and first_fruit_s is None:
            first_fruit_s, flow_from, total_then = time.monotonic() - started, time.monotonic(), total
        if flow_from is not None and time.monotonic() - flow_from > 10:
            break
        time.sleep(0.1)
    if flow_from is None:
        proc.kill()
        print("no fruit within 60 s", file=sys.stderr)
        return 1
    now = line()
    rate = (int(now["fruit_total"]) - total_then) / (time.monotonic() - flow_from)  # type: ignore[call-overload]
    stop = urllib.request.Request(url + "/api/v1/line/stop", method="POST")
    with urllib.request.urlopen(stop, timeout=30) as answer:
        stopped = json.load(answer)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code = proc.wait(30)
    exit_s = time.monotonic() - signalled
    (database,) = (workdir / "var").glob("*.db")
    with sqlite3.connect(database) as db:
        rows = db.execute("select count(*) from fruit").fetchone()[0]
    print(json.dumps({
        "first_fruit_s": round(first_fruit_s, 2), "fruit_per_s": round(rate, 1), "late_total": now.get("late_total"),
        "fruit_total": stopped.get("fruit_total"), "exit_s": round(exit_s, 2), "exit_code": code, "rows": rows,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
