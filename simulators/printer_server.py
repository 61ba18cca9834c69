"""A raw-TCP (port 9100) label printer: takes each connection's bytes as one job and keeps it.

Jobs are written to ``job-00001.zpl``, ``job-00002.zpl``, ... in the capture folder, each
fsynced and renamed into place before the connection is closed, so a client whose send
returned finds its job on disk. Runs in its own process (``gradeline sim printer``).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


class PrinterSimulator:
    def __init__(self, out_dir: Path, host: str = "127.0.0.1", port: int = 9100) -> None:
        self.out_dir = out_dir
        self.host = host
        self.port = port
        self.jobs = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.jobs = len(list(self.out_dir.glob("job-*.zpl")))
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            job = await reader.read()  # until the client's EOF
            if job:
                self.jobs += 1
                path = self.out_dir / f"job-{self.jobs:05d}.zpl"
                partial = path.with_suffix(".part")
                with open(partial, "wb") as f:
                    f.write(job)
                    f.flush()
                    os.fsync(f.fileno())
                partial.rename(path)
        finally:
            writer.close()

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
