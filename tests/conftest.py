"""Shared fixtures: database URLs for both backends, a guard against leaked threads, waiting on
conditions with deadlines, and `gradeline run` as a subprocess."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves worker threads of ours running (writer, vision pool, serial readers)."""
    before = set(threading.enumerate())
    yield
    leaked = [
        t for t in threading.enumerate()
        if t not in before and t.is_alive() and t.name.startswith(("record-writer", "vision", "gradeline"))
    ]
    for t in leaked:
        t.join(timeout=5)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"threads left running: {still}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/gradeline.db"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"gradeline_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


async def _until(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    """Wait on a condition with a deadline (never a fixed settling sleep)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def until() -> Callable[[Callable[[], object], float, str], Awaitable[None]]:
    return _until


def launch_gradeline(config: Path, cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """``gradeline run --config CONFIG --world --port 0`` as a subprocess (the config's line, its
    real drivers against the simulated world in a child process); the process and its base URL.

    Its stderr goes to ``CWD/gradeline-run.stderr`` and its stdout, once the address is read, to
    a thread that reads it to the end: a pipe nobody reads fills (64 KiB) and then blocks the
    line's next log line, its shutdown included."""
    errors = cwd / STDERR_FILE
    with errors.open("a", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "run", "--config", str(config), "--world", "--port", "0",
             "--log-level", "warning"],
            stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # its own process group: stop_gradeline can end the world with it
        )
    _STDERR_OF[proc.pid] = errors
    assert proc.stdout is not None
    said = []
    for text in proc.stdout:  # it says that it starts the simulated world first
        said.append(text)
        if (match := re.search(r"serving (http://\S+)/", text)) is not None:
            threading.Thread(target=deque, args=(proc.stdout, 0), name="gradeline stdout", daemon=True).start()
            return proc, match.group(1)
    proc.kill()
    proc.wait()
    raise AssertionError(f"gradeline run printed no address: {said!r} {errors.read_text(encoding='utf-8')[-2000:]}")


STDERR_FILE = "gradeline-run.stderr"
_STDERR_OF: dict[int, Path] = {}  # pid -> its stderr file, for stop_gradeline's report


def stop_gradeline(proc: subprocess.Popen[str], timeout_s: float = 30.0) -> int:
    """SIGINT, as an operator's Ctrl-C, and its exit code. If it has not stopped within
    ``timeout_s``, its whole process group (the simulated world too) is killed, so nothing
    outlives the test, and the test fails."""
    errors = _STDERR_OF.pop(proc.pid, None)
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)  # its threads' stacks, to its stderr file: where it hangs
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        stacks = errors.read_text(encoding="utf-8", errors="replace")[-12000:] if errors is not None else ""
        raise AssertionError(f"gradeline run did not stop within {timeout_s:.0f} s of SIGINT:\n{stacks}") from None


def gradeline_cli(*args: str, cwd: Path, stdin: str | None = None) -> str:
    """Run one ``gradeline`` command to completion; its stdout (it must exit 0)."""
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120,
    )
    assert result.returncode == 0, f"gradeline {' '.join(args)}: {result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture
def start_gradeline(tmp_path: Path) -> Iterator[Callable[[str], tuple[subprocess.Popen[str], str]]]:
    """Start ``gradeline run --port 0`` with a config; returns the process and its base URL."""
    procs: list[subprocess.Popen[str]] = []

    def start(config_toml: str) -> tuple[subprocess.Popen[str], str]:
        config = tmp_path / "line.toml"
        config.write_text(config_toml, encoding="utf-8")
        proc, url = launch_gradeline(config, tmp_path)
        procs.append(proc)
        return proc, url

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def lightness_model():  # type: ignore[no-untyped-def]
    """A taught quality model whose grade is the skin's mean L* / 10 (grades 1-10): its
    score of a fruit of known colour is known, so tests can check the line applies it."""
    from vision.quality import FEATURE_NAMES, QualityModel

    n = len(FEATURE_NAMES)
    weights = [0.0] * n
    weights[FEATURE_NAMES.index("lab_l_mean")] = 0.1
    return QualityModel(FEATURE_NAMES, (0.0,) * n, (1.0,) * n, tuple(weights), 0.0, 1.0, 10.0, 1.0, 2)
