"""Where the browser tests put their screenshots, said at the end of the run; and
``served_app``, which serves an app factory with uvicorn in its own process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
_taken: list[Path] = []


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """``$HMI_SCREENSHOTS`` or ``var/screenshots/`` (git-ignored) in the repository."""
    folder = Path(os.environ.get("HMI_SCREENSHOTS") or _REPO / "var" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    _taken.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for folder in _taken:
        shots = sorted(p.name for p in folder.glob("*.png"))
        terminalreporter.write_line(f"HMI screenshots ({len(shots)}) in {folder}: {', '.join(shots)}")


def served_app(factory: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve ``module:function`` (an app factory) on an ephemeral port of 127.0.0.1 in a uvicorn
    process of its own; yields its base URL and stops it afterwards. For a fixture to yield from."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1", "--port", "0",
         "--log-level", "info"],
        cwd=_REPO, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if (match := re.search(r"running on (http://[\d.:]+)", line)) is not None:
                # read the rest (an access log line per request): a full pipe would block uvicorn
                threading.Thread(target=deque, args=(proc.stderr, 0), daemon=True).start()
                yield match[1]
                break
        else:
            raise AssertionError("uvicorn printed no address")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
