"""Where the browser tests put their screenshots, said at the end of the run."""

from __future__ import annotations

import os
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
