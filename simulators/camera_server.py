"""An encoder-triggered camera served as MJPEG over HTTP, for the real ``OpenCvCamera``.

Owns two things:

* ``MjpegStreamServer``: ``GET /stream.mjpg`` answers ``multipart/x-mixed-replace`` with one
  ``image/jpeg`` part (with ``Content-Length``) per frame, as IP cameras and ``mjpg-streamer``
  do, which OpenCV's FFmpeg backend reads. Many clients may connect. A client that does not
  keep up never holds the others or the world back: once it has more than a few frames
  waiting, further frames are dropped for it (and reported to the caller to log).
* ``TriggeredCamera``: exposes frame ``m`` when the PLC model's belt reaches trigger ``m``
  (position ``m * pitch``, the PLC's camera trigger), and sends it a fixed latency after the
  exposure (readout and transfer). A stopped belt triggers nothing, so nothing is sent.
  ``TriggerSchedule`` is its clock-free part: which trigger is next and when it exposes.

Which picture a trigger shows is the caller's business (``frame_for_trigger``); this module
knows nothing about fruit or rendering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulators.plc import PlcModel

log = logging.getLogger(__name__)

STREAM_PATH = "/stream.mjpg"
BOUNDARY = "gradelineframe"
_MAX_REQUEST_BYTES = 8192


def mjpeg_part(jpeg: bytes) -> bytes:
    """One part of the multipart stream, ready to write."""
    head = (
        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    ).encode("ascii")
    return head + jpeg + b"\r\n"


@dataclass
class _Client:
    id: int
    peer: str
    writer: asyncio.StreamWriter
    sent: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class BroadcastResult:
    sent_to: list[int]
    dropped_for: list[int]


class MjpegStreamServer:
    """Serves one multipart MJPEG stream to any number of HTTP clients."""

    def __init__(
        self,
        *,
        backlog_frames: int = 2,
        part_bytes_hint: int = 64 * 1024,
        on_client_event: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if backlog_frames < 1:
            raise ValueError("backlog_frames must be >= 1")
        self.backlog_frames = backlog_frames
        self._on_client_event = on_client_event
        self._clock = clock
        self._clients: dict[int, _Client] = {}
        self._next_id = 1
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._frame_bytes = part_bytes_hint  # largest part expected; sizes the socket buffers
        self.port = 0

    @property
    def client_count(self) -> int:
        return len(self._clients)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._on_connect, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def url(self, host: str) -> str:
        return f"http://{host}:{self.port}{STREAM_PATH}"

    def _event(self, **fields: Any) -> None:
        if self._on_client_event is not None:
            self._on_client_event({"t_s": self._clock(), **fields})

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        try:
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.close()
            return
        request = head[:_MAX_REQUEST_BYTES].split(b"\r\n", 1)[0].split()
        if (
            len(request) < 2
            or request[0] != b"GET"
            or request[1].split(b"?")[0] != STREAM_PATH.encode()
        ):
            writer.write(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Bound the kernel's share of a slow client's backlog too: without this, loopback
            # autotuning buffers megabytes (tens of frames) before anything counts as dropped.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * self._frame_bytes)
        writer.write(
            b"HTTP/1.1 200 OK\r\n"
            b"Content-Type: multipart/x-mixed-replace; boundary=" + BOUNDARY.encode() + b"\r\n"
            b"Cache-Control: no-cache, no-store\r\nPragma: no-cache\r\nConnection: close\r\n\r\n"
        )
        client = _Client(self._next_id, peer, writer)
        self._next_id += 1
        self._clients[client.id] = client
        self._event(client=client.id, event="connected", peer=peer)
        try:
            while await reader.read(4096):
                pass  # a client has nothing to say; reading only tells us when it leaves
        except OSError:
            pass
        finally:
            self._clients.pop(client.id, None)
            self._event(
                client=client.id, event="disconnected", sent=client.sent, dropped=client.dropped
            )
            writer.close()

    def broadcast(self, part: bytes) -> BroadcastResult:
        """Queue one part for every client; a client already ``backlog_frames`` behind loses it."""
        self._frame_bytes = max(self._frame_bytes, len(part))
        limit = self.backlog_frames * len(part)
        sent: list[int] = []
        dropped: list[int] = []
        for client in list(self._clients.values()):
            transport = client.writer.transport
            if transport.is_closing():
                continue
            if transport.get_write_buffer_size() + len(part) > limit:
                client.dropped += 1
                dropped.append(client.id)
                continue
            client.writer.write(part)
            client.sent += 1
            sent.append(client.id)
        return BroadcastResult(sent, dropped)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for client in list(self._clients.values()):
            client.writer.close()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        if server is not None:
            await server.wait_closed()


@dataclass(frozen=True, slots=True)
class Trigger:
    number: int  # trigger m, counted from power-up (m >= 1), as PLC registers 16-17
    position_cups: float  # m * pitch
    exposure_t_s: float


@dataclass
class TriggerSchedule:
    """The PLC model's camera triggers in order, each with its exact exposure time."""

    model: PlcModel
    next_number: int = field(init=False)

    def __post_init__(self) -> None:
        if self.model.camera_trigger_pitch_cups is None:
            raise ValueError("the PLC model has no camera trigger pitch")
        # The camera serves the triggers from now on, not those fired before it was ready.
        self.next_number = self.model.triggers_fired_at(self.model.position_cups()) + 1

    @property
    def pitch_cups(self) -> float:
        pitch = self.model.camera_trigger_pitch_cups
        assert pitch is not None
        return pitch

    def position_of(self, number: int) -> float:
        return number * self.pitch_cups

    def next_exposure_t_s(self) -> float | None:
        """When the next trigger fires at the belt's current speed; None while it never will."""
        return self.model.time_at_position(self.position_of(self.next_number))

    def take(self, by_t_s: float) -> list[Trigger]:
        """Every trigger exposed at or before ``by_t_s`` not taken yet, oldest first."""
        out: list[Trigger] = []
        reached = self.model.triggers_fired_at(self.model.position_cups())
        while self.next_number <= reached:
            position = self.position_of(self.next_number)
            t_s = self.model.time_at_position(position)
            if t_s is None:
                # Fired before the model's oldest kept segment: its time is no longer known.
                t_s = by_t_s
            if t_s > by_t_s:
                break
            out.append(Trigger(self.next_number, position, t_s))
            self.next_number += 1
        return out


class TriggeredCamera:
    """Sends the frame of each PLC camera trigger, ``latency_s`` after its exposure.

    ``on_frame`` receives one dict per trigger for the truth log: the trigger, its position,
    exposure and send times, and the clients it was sent to or dropped for. When the world
    falls far behind (its process starved), at most ``max_burst`` overdue frames are sent and
    older ones are logged as lost, as a camera's small frame buffer would overflow.
    """

    def __init__(
        self,
        model: PlcModel,
        server: MjpegStreamServer,
        frame_for_trigger: Callable[[int], tuple[int, bytes]],
        *,
        latency_s: float,
        on_frame: Callable[[dict[str, Any]], None],
        clock: Callable[[], float] = time.monotonic,
        max_burst: int = 8,
        idle_poll_s: float = 0.02,
        max_sleep_s: float = 0.1,
    ) -> None:
        self.schedule = TriggerSchedule(model)
        self._server = server
        self._frame_for_trigger = frame_for_trigger
        self.latency_s = latency_s
        self._on_frame = on_frame
        self._clock = clock
        self._max_burst = max_burst
        self._idle_poll_s = idle_poll_s
        self._max_sleep_s = max_sleep_s
        self.frames_sent = 0
        self.frames_lost = 0

    async def run(self) -> None:
        while True:
            due_t_s = self.schedule.next_exposure_t_s()
            if due_t_s is None:
                self.send_due()  # anything reached whose time is no longer known
                await asyncio.sleep(self._idle_poll_s)  # belt stopped: no trigger, no frame
                continue
            wait_s = due_t_s + self.latency_s - self._clock()
            if wait_s > 0:
                # Capped so a speed change while waiting is noticed.
                await asyncio.sleep(min(wait_s, self._max_sleep_s))
                continue
            self.send_due()

    def send_due(self) -> None:
        """Send every frame whose exposure plus latency has come (one step of ``run``)."""
        now = self._clock()
        due = self.schedule.take(now - self.latency_s)
        lost, due = due[: max(0, len(due) - self._max_burst)], due[-self._max_burst :]
        for trigger in lost:
            self.frames_lost += 1
            self._on_frame(self._record(trigger, None, None, lost="overrun"))
        for trigger in due:
            frame, part = self._frame_for_trigger(trigger.number)
            result = self._server.broadcast(part)
            self.frames_sent += 1
            self._on_frame(self._record(trigger, frame, result))

    def _record(
        self,
        trigger: Trigger,
        frame: int | None,
        result: BroadcastResult | None,
        lost: str | None = None,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "trigger": trigger.number,
            "position_cups": round(trigger.position_cups, 6),
            "cycle_frame": frame,
            "exposure_t_s": trigger.exposure_t_s,
            "sent_t_s": None if result is None else self._clock(),
        }
        if result is not None:
            record["clients"] = result.sent_to
            record["dropped_for"] = result.dropped_for
        if lost is not None:
            record["lost"] = lost
        return record
