"""The line as a separate process beside the simulated world, and the score against its truth.

Used by ``gradeline bench line`` and ``gradeline bench crash``. Owns:

* ``LineProcess``: ``gradeline run --config FILE`` as a subprocess: start, wait until ready,
  start and stop intake through the API, SIGTERM or SIGKILL, and its CPU (with its vision
  workers) from ``/proc``;
* ``BackgroundLoad``: processes that keep cores busy, as a browser or anything else on the
  line's PC would;
* ``Truth``: the world's truth log (cups, drops, frames, PLC ring writes), read from disk;
* ``stored_rows``: the line's fruit rows, read from its database.

The scoring itself lives with each benchmark; nothing here trusts what the line reports about
itself, except where a figure says so.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SERVING = re.compile(rb"serving (http://\S+?)/?\s*$", re.MULTILINE)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class LineProcessError(RuntimeError):
    pass


class LineProcess:
    """One ``gradeline run`` process; its log goes to ``log_path``."""

    def __init__(self, config_path: Path, log_path: Path, *, token: str | None = None) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.token = token
        self.process: subprocess.Popen[bytes] | None = None
        self.base_url = ""

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout_s: float = 120.0) -> None:
        """Start it with intake stopped and wait until its API says the line is ready."""
        command = [sys.executable, "-m", "api.cli", "run", "--config", str(self.config_path), "--port", "0", "--stopped"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        received = b""
        os.set_blocking(self.process.stdout.fileno(), False)
        while (match := _SERVING.search(received)) is None:
            if self.process.poll() is not None:
                raise LineProcessError(f"gradeline run exited ({self.process.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise LineProcessError(f"gradeline run did not say where it serves within {timeout_s} s")
            with contextlib.suppress(BlockingIOError):
                received += os.read(self.process.stdout.fileno(), 4096)
            time.sleep(0.02)
        self.base_url = match.group(1).decode()
        # Keep draining its stdout (uvicorn's access log goes there): a pipe nobody reads fills
        # after about 64 KB, and the line's event loop then blocks on the write.
        os.set_blocking(self.process.stdout.fileno(), True)
        threading.Thread(
            target=_drain, args=(self.process.stdout, self.log_path, received), name="line-stdout", daemon=True
        ).start()
        while True:
            with contextlib.suppress(OSError, LineProcessError):
                if self.get("/api/v1/health").get("line") in ("stopped", "running"):
                    return
            if self.process.poll() is not None:
                raise LineProcessError(f"gradeline run exited ({self.process.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise LineProcessError(f"the line was not ready within {timeout_s} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def terminate(self, timeout_s: float = 60.0) -> int:
        """SIGTERM: stop intake, write every record, exit."""
        process = self._require()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_stdout()
        return int(process.returncode)

    def kill(self) -> None:
        """SIGKILL, as a power cut or the OOM killer would (its vision workers die with it)."""
        process = self._require()
        children = _descendants(process.pid)
        process.kill()
        process.wait()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._close_stdout()

    def log_tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        return ""

    def _require(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise LineProcessError("not started")
        return self.process

    def _close_stdout(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    # ---------------------------------------------------------------- API

    def request(self, method: str, path: str, timeout_s: float = 30.0) -> dict[str, Any]:
        request = urllib.request.Request(self.base_url + path, method=method)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                body: dict[str, Any] = json.loads(response.read())
                return body
        except urllib.error.HTTPError as exc:
            raise LineProcessError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from exc

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)

    def start_intake(self) -> dict[str, Any]:
        return self.request("POST", "/api/v1/line/start")

    def stop_intake(self) -> dict[str, Any]:
        return self.request("POST", "/api/v1/line/stop", timeout_s=120.0)

    # ---------------------------------------------------------------- CPU

    def cpu_seconds(self) -> float:
        """User + system CPU of the line process and every live descendant (vision workers)."""
        process = self._require()
        return sum(_cpu_seconds(pid) for pid in [process.pid, *_descendants(process.pid)])


def _drain(stream: Any, log_path: Path, already: bytes) -> None:
    """Copy a process's stdout into its log file until the pipe closes."""
    with log_path.open("ab") as log, contextlib.suppress(OSError, ValueError):
        log.write(already)
        while chunk := stream.read1(65536):
            log.write(chunk)
            log.flush()


def bench_token(database_url: str, role_name: str = "admin", name: str = "bench") -> str:
    """An API token for a benchmark, created in the line's database (migrated first if new)."""
    from grading.access import AccessStore, Role
    from grading.store import create_store_engine, migrate

    engine = create_store_engine(database_url)
    try:
        migrate(engine)
        store = AccessStore(engine)
        existing = {t.name for t in store.list_tokens()}
        suffix = 1
        while f"{name}-{suffix}" in existing:
            suffix += 1
        token, _ = store.create_token(f"{name}-{suffix}", Role(role_name), "benchmark")
        return token
    finally:
        engine.dispose()


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@contextlib.contextmanager
def background_load(cores: float) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Keep ``cores`` cores busy in other processes (a fraction is a duty cycle on one more)."""
    processes = []
    whole, part = int(cores), cores - int(cores)
    shares = [1.0] * whole + ([part] if part > 1e-6 else [])
    for share in shares:
        code = (
            "import time\n"
            f"share = {share!r}\n"
            "while True:\n"
            "    end = time.monotonic() + 0.01 * share\n"
            "    while time.monotonic() < end: pass\n"
            "    if share < 1: time.sleep(0.01 * (1 - share))\n"
        )
        processes.append(subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL))
    try:
        yield processes
    finally:
        for p in processes:
            p.kill()
            p.wait()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a JSON-lines file that may still be being written."""
    if not path.exists():
        return []
    records = []
    with path.open("rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                records.append(json.loads(line))
    return records


@dataclass(frozen=True)
class Truth:
    """What really happened, from the world's truth directory."""

    cups: dict[tuple[int, int], dict[str, Any]]  # (lane, cup on the counter's scale) -> truth
    drops: dict[tuple[int, int], dict[str, Any]]  # the cup's drop (outlet 0 = recirculated)
    exposures_s: dict[int, float]  # trigger number -> exposure time (time.monotonic)
    writes_s: dict[tuple[int, int], float]  # (lane, cup) -> when its decision reached the PLC

    @classmethod
    def read(cls, truth_dir: Path) -> Truth:
        cups = {(r["lane"], r["cup_index"]): r for r in read_jsonl(truth_dir / "cups.jsonl")}
        drops = {(r["lane"], r["cup_index"]): r for r in read_jsonl(truth_dir / "drops.jsonl")}
        exposures = {
            int(r["trigger"]): float(r["exposure_t_s"])
            for r in read_jsonl(truth_dir / "frames.jsonl")
            if r.get("event", "trigger") == "trigger" and "trigger" in r
        }
        writes: dict[tuple[int, int], float] = {}
        for r in read_jsonl(truth_dir / "writes.jsonl"):
            writes.setdefault((r["lane"], r["cup_index"]), float(r["t_s"]))  # the first write of a cup
        return cls(cups, drops, exposures, writes)


@dataclass(frozen=True)
class StoredFruit:
    lane: int
    cup_index: int
    outlet: int
    late: bool
    weight_g: float | None
    frame_position_cups: float | None
    decision_latency_ms: float | None


def stored_rows(database_url: str) -> list[StoredFruit]:
    from sqlalchemy import create_engine, select

    from grading.schema import fruit

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    fruit.c.lane, fruit.c.cup_index, fruit.c.outlet, fruit.c.late, fruit.c.weight_g,
                    fruit.c.frame_position_cups, fruit.c.decision_latency_ms,
                ).order_by(fruit.c.id)
            ).all()
    finally:
        engine.dispose()
    return [StoredFruit(*row) for row in rows]


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered))))
    return ordered[rank - 1]
