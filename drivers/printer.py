"""Label printers over raw TCP (port 9100, "JetDirect"): a ZPL job is the bytes of one connection.

Owns the ``LabelPrinter`` interface and its real implementation. A job is sent on a fresh
connection, written whole and the connection closed, which is how ZPL printers take raw jobs;
a printer that cannot be reached or stops reading raises ``PrinterError`` naming it. Not owned:
what the job says (``grading.trace.labels``) and the audit of reprints (``api/``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol


class PrinterError(Exception):
    """A job did not reach the printer; says which printer and why."""


class LabelPrinter(Protocol):
    async def print_job(self, job: bytes) -> None:
        """Send one job; returns once the printer has taken every byte."""
        ...


class RawTcpPrinter:
    """A ZPL printer at ``host:port`` (9100 by default)."""

    def __init__(self, host: str, port: int = 9100, *, timeout_s: float = 10.0, close_wait_s: float = 2.0) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.close_wait_s = close_wait_s

    def __repr__(self) -> str:
        return f"RawTcpPrinter({self.host}:{self.port})"

    async def print_job(self, job: bytes) -> None:
        where = f"printer {self.host}:{self.port}"
        try:
            async with asyncio.timeout(self.timeout_s):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                try:
                    writer.write(job)
                    await writer.drain()
                    writer.write_eof()
                    # a printer that closes its side once it has the job tells us it took it;
                    # one that keeps the connection open is given a moment, then closed
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(reader.read(), self.close_wait_s)
                finally:
                    writer.close()
                    await writer.wait_closed()
        except TimeoutError as exc:
            raise PrinterError(f"{where}: no answer within {self.timeout_s} s ({len(job)} bytes)") from exc
        except OSError as exc:
            raise PrinterError(f"{where}: {exc.strerror or exc}") from exc
