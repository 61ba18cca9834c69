"""Byte-level fault injection between a Modbus master and a simulated device.

``TcpFaultProxy`` sits on a loopback port in front of a Modbus TCP (or RTU-over-TCP) server;
``RtuPtyBridge`` joins two pseudo-terminal pairs so a Modbus RTU server and client each open a
real tty device, with this module forwarding bytes between them. Both pass requests through
untouched and apply one ``FaultPlan`` to the device's replies: drop them, delay them, replace
them with garbage, flip a CRC bit, truncate them, or (TCP) cut the connection.

Application-level faults (Modbus exception responses, a silent unit) belong to the simulator
itself, see ``ColdroomServer``; killing a device is stopping its server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import tty
from dataclasses import dataclass, field
from typing import Literal

FaultMode = Literal["pass", "drop", "delay", "garbage", "bad_crc", "truncate", "disconnect"]


@dataclass
class FaultPlan:
    """What happens to the device's replies. Mutable: tests switch modes mid-run."""

    mode: FaultMode = "pass"
    delay_s: float = 0.0
    seed: int = 0
    replies: int = 0
    altered: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def set(self, mode: FaultMode, delay_s: float = 0.0) -> None:
        self.mode = mode
        self.delay_s = delay_s

    def transform(self, reply: bytes) -> bytes | None:
        """The bytes to forward for one chunk of reply; None means swallow it."""
        self.replies += 1
        mode = self.mode
        if mode in ("pass", "delay"):
            return reply
        self.altered += 1
        if mode in ("drop", "disconnect"):
            return None
        if mode == "garbage":
            return bytes(self._rng.randrange(256) for _ in range(max(1, len(reply))))
        if mode == "bad_crc":
            # The last byte of an RTU reply is the CRC's high byte.
            return reply[:-1] + bytes([reply[-1] ^ (1 << self._rng.randrange(8))])
        if mode == "truncate":
            return reply[: max(1, len(reply) // 2)]
        raise ValueError(f"unknown fault mode {mode!r}")


class TcpFaultProxy:
    """A loopback TCP proxy applying a ``FaultPlan`` to upstream replies."""

    def __init__(
        self, upstream_host: str, upstream_port: int, plan: FaultPlan | None = None
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.plan = plan or FaultPlan()
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._handle, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def disconnect_all(self) -> None:
        """Cut every open connection now (the master sees a reset / EOF)."""
        for w in list(self._writers):
            w.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        self._writers.add(client_w)
        up_w: asyncio.StreamWriter | None = None
        try:
            if self.plan.mode == "disconnect":
                return
            try:
                up_r, up_w = await asyncio.open_connection(*self.upstream)
            except OSError:
                return
            self._writers.add(up_w)
            await asyncio.gather(
                self._pump(client_r, up_w, reply=False), self._pump(up_r, client_w, reply=True)
            )
        finally:
            for w in (client_w, up_w):
                if w is not None:
                    self._writers.discard(w)
                    w.close()
            if task is not None:
                self._conns.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, reply: bool
    ) -> None:
        try:
            while data := await reader.read(4096):
                if self.plan.mode == "disconnect":
                    return
                if reply:
                    if self.plan.mode == "delay" and self.plan.delay_s > 0:
                        await asyncio.sleep(self.plan.delay_s)
                    out = self.plan.transform(data)
                    if out is None:
                        continue
                    data = out
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            return
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.disconnect_all()
        for task in list(self._conns):
            task.cancel()
        for task in list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None


class RtuPtyBridge:
    """Two pty pairs joined by an asyncio forwarder: a serial line without hardware or socat.

    The device (Modbus RTU server) opens ``device_path``; the master opens ``master_path``.
    Bytes from the master go to the device untouched; the device's replies go through the plan.
    ptys carry no baud timing, so inter-character silences do not delimit frames: the RTU
    framers on both ends must find frames by length and CRC, as they do behind USB adapters.
    """

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self.plan = plan or FaultPlan()
        self._dev_master, self._dev_slave = os.openpty()
        self._mst_master, self._mst_slave = os.openpty()
        for fd in (self._dev_slave, self._mst_slave):
            tty.setraw(fd)  # no echo, no line discipline, no CR/LF translation
        for fd in (self._dev_master, self._mst_master):
            os.set_blocking(fd, False)
        self.device_path = os.ttyname(self._dev_slave)
        self.master_path = os.ttyname(self._mst_slave)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.bytes_to_device = 0
        self.bytes_to_master = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._mst_master, self._forward_request)
        self._loop.add_reader(self._dev_master, self._forward_reply)

    @staticmethod
    def _read(fd: int) -> bytes:
        try:
            return os.read(fd, 4096)
        except (BlockingIOError, OSError):
            # EIO when the far side has no opener: nothing to forward.
            return b""

    @staticmethod
    def _write(fd: int, data: bytes) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(fd, data)

    def _forward_request(self) -> None:
        data = self._read(self._mst_master)
        if data:
            self.bytes_to_device += len(data)
            self._write(self._dev_master, data)

    def _forward_reply(self) -> None:
        data = self._read(self._dev_master)
        if not data:
            return
        if self.plan.mode == "delay" and self.plan.delay_s > 0 and self._loop is not None:
            task = self._loop.create_task(self._delayed(data, self.plan.delay_s))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return
        self._send_reply(data)

    async def _delayed(self, data: bytes, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self._send_reply(data)

    def _send_reply(self, data: bytes) -> None:
        out = self.plan.transform(data)
        if out:
            self.bytes_to_master += len(out)
            self._write(self._mst_master, out)

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._mst_master)
            self._loop.remove_reader(self._dev_master)
            self._loop = None
        for task in list(self._pending):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for fd in (self._dev_master, self._dev_slave, self._mst_master, self._mst_slave):
            with contextlib.suppress(OSError):
                os.close(fd)
