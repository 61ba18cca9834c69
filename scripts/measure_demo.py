"""Measure the demo line from the outside, as an operator would.

Starts `gradeline run --port 0` (no config: the demo, the line's real drivers against the
simulated world in its own process) in an empty directory, polls GET /api/v1/line until fruit
flow, takes the counters 5 s after the first fruit and again ``--seconds`` later, then POSTs
/api/v1/line/stop, sends SIGINT and counts the rows in the SQLite file it wrote.

Usage: .venv/bin/python scripts/measure_demo.py [--seconds 60] [--gradeline PATH]
Prints one JSON line: first_fruit_s (from process start), fruit_per_s, and over the measured
window fruit, late_decisions and weights_missing (from the API's counters); then fruit_total
as the stop call reported it, exit_s, exit_code and rows.
"""

from __future__ import annotations

import argparse
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
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--gradeline", default=str(Path(sys.executable).with_name("gradeline")))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gradeline-demo-"))
    # the API wants a token; the demo's database is var/gradeline.db under the working directory
    token = subprocess.run(
        [args.gradeline, "token", "create", "--role", "operator", "--name", "measure-demo"],
        capture_output=True, text=True, cwd=workdir, check=True,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    started = time.monotonic()
    proc = subprocess.Popen(
        [args.gradeline, "run", "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=workdir,
    )
    assert proc.stdout is not None
    match = None
    for text in proc.stdout:  # the demo says that it starts the simulated world first
        if (match := re.search(r"serving (http://\S+)/", text)) is not None:
            break
    if match is None:
        proc.kill()
        print("gradeline run printed no address", file=sys.stderr)
        return 1
    url = match.group(1)

    def line() -> dict[str, Any]:
        with urllib.request.urlopen(urllib.request.Request(url + "/api/v1/line", headers=headers), timeout=5) as answer:
            state: dict[str, Any] = json.load(answer)
            return state

    first_fruit_s = None
    while time.monotonic() - started < 300:
        try:
            if int(line().get("fruit_total", 0)) > 0:
                first_fruit_s = time.monotonic() - started
                break
        except OSError:
            pass
        time.sleep(0.1)
    if first_fruit_s is None:
        proc.kill()
        print("no fruit within 300 s", file=sys.stderr)
        return 1
    time.sleep(5.0)  # the first cups were weighed before the line was up
    before, t0 = line(), time.monotonic()
    time.sleep(args.seconds)
    after, t1 = line(), time.monotonic()
    stop = urllib.request.Request(url + "/api/v1/line/stop", method="POST", headers=headers)
    with urllib.request.urlopen(stop, timeout=30) as answer:
        stopped = json.load(answer)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code = proc.wait(60)
    exit_s = time.monotonic() - signalled
    (database,) = (workdir / "var").glob("*.db")
    with sqlite3.connect(database) as db:
        rows = db.execute("select count(*) from fruit").fetchone()[0]

    def delta(key: str) -> int:
        return int(after[key]) - int(before[key])

    print(json.dumps({
        "first_fruit_s": round(first_fruit_s, 2),
        "seconds": round(t1 - t0, 1),
        "fruit": delta("fruit_total"),
        "fruit_per_s": round(delta("fruit_total") / (t1 - t0), 1),
        "late_decisions": delta("late_total"),
        "weights_missing": delta("weights_missing_total"),
        "weigh_failures": {k: after["weigh_failures"][k] - before["weigh_failures"][k] for k in after["weigh_failures"]},
        "fruit_total": stopped.get("fruit_total"),
        "exit_s": round(exit_s, 2),
        "exit_code": code,
        "rows": rows,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
