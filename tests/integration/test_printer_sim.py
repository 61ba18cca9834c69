"""The real raw-TCP printer driver against ``gradeline sim printer`` in its own process."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drivers.printer import PrinterError, RawTcpPrinter
from grading.trace.labels import render
from tests.unit.trace.label_fixtures import carton_label

REPO = Path(__file__).resolve().parents[2]


def test_jobs_reach_the_simulator_whole(tmp_path: Path) -> None:
    out = tmp_path / "jobs"
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "sim", "printer", "--port", "0", "--out", str(out)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        match = re.search(r"listening on ([\d.]+):(\d+)", proc.stdout.readline())
        assert match is not None
        printer = RawTcpPrinter(match[1], int(match[2]))
        jobs = [render(carton_label(serial=n)).zpl.encode() for n in (1, 2, 3)]

        async def send() -> None:
            for job in jobs:
                await printer.print_job(job)

        asyncio.run(send())
        deadline = time.monotonic() + 30
        while len(list(out.glob("job-*.zpl"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p.read_bytes() for p in sorted(out.glob("job-*.zpl"))] == jobs
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_unreachable_printer_names_itself() -> None:
    printer = RawTcpPrinter("127.0.0.1", 9, timeout_s=5)  # discard port: nothing listens
    with pytest.raises(PrinterError, match="127.0.0.1:9"):
        asyncio.run(printer.print_job(b"^XA^XZ"))
