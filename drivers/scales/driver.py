"""The ``Scale`` driver for serial weighing indicators: connection, reconnect, freshness, health.

Layers: ``transport.py`` moves bytes; the protocol modules (``toledo``, ``xk3190``, ``mtsics``)
turn frames into readings; this module owns one port per scale, the thread that touches it,
reconnecting with backoff, and the health the runtime and metrics read.

Threading: every pyserial call runs in a single-thread executor owned by the scale, so a port
is only ever touched by one thread and the event loop never blocks. Results come back to the
loop, and only the loop mutates the driver's state.

Two kinds of indicator:

* ``ContinuousScale`` (Toledo, XK3190): the indicator streams frames. A reader task keeps the
  latest VALID frame with its receive time; ``read_weight()`` returns it if it is fresher than
  ``timeout_s`` and raises otherwise. The reader reconnects with backoff when the port drops.
* ``MtSicsScale``: ``read_weight()`` sends ``SI`` and parses the answer; zero/tare commands.
  A dropped port is reopened on a later call, no sooner than the backoff allows.

Faults are logged once when they start and once when they clear, never on every poll.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from drivers.interfaces import (
    CorruptFrame,
    DeviceDisconnected,
    DeviceError,
    DeviceTimeout,
    WeightReading,
)
from drivers.scales import mtsics
from drivers.scales.errors import ScaleCommandUnsupported, ScaleRangeError
from drivers.scales.frames import FrameResult, IndicatorReading, StreamFramer
from drivers.scales.transport import ByteTransport

log = logging.getLogger(__name__)

Clock = Callable[[], float]
TransportOpener = Callable[[], ByteTransport]
_T = TypeVar("_T")

READ_CHUNK_BYTES = 4096


@dataclass(frozen=True, slots=True)
class ScaleHealth:
    """What the runtime and /metrics see of one scale.

    ``state`` is ``up`` after a valid weight and ``stale`` from the first failure (no valid
    frame within ``timeout_s``, port down, corrupt reply) until the next valid weight.
    ``error_count`` counts every failed read, rejected frame and failed reconnect;
    ``valid_count`` every valid weight received.
    """

    state: Literal["up", "stale"]
    connected: bool
    last_good_t_s: float | None
    error_count: int
    corrupt_frame_count: int
    last_error: str | None
    valid_count: int


class _HealthTracker:
    def __init__(self, device: str) -> None:
        self._device = device
        self._up = False
        self._faulted = False
        self._fault_started_t_s: float | None = None
        self.last_good_t_s: float | None = None
        self.valid_count = 0
        self.error_count = 0
        self.corrupt_frame_count = 0
        self.last_error: str | None = None

    @property
    def up(self) -> bool:
        return self._up

    def good(self, t_s: float) -> None:
        if self._faulted:
            log.info(
                "scale %s: fault cleared after %d errors, valid weight again",
                self._device,
                self.error_count,
            )
        self._up, self._faulted = True, False
        self.last_good_t_s = t_s
        self.valid_count += 1

    def fault(self, exc: DeviceError) -> None:
        self.error_count += 1
        self.last_error = str(exc)
        if not self._faulted:
            log.warning("scale %s: fault: %s", self._device, exc)
        self._up, self._faulted = False, True

    def error(self, exc: DeviceError) -> None:
        """A failure that does not make the scale stale (a corrupt frame inside a live stream,
        a valid "over range" answer)."""
        self.error_count += 1
        self.last_error = str(exc)
        if isinstance(exc, CorruptFrame):
            self.corrupt_frame_count += 1
        log.debug("scale %s: %s", self._device, exc)

    def snapshot(self, connected: bool) -> ScaleHealth:
        return ScaleHealth(
            state="up" if self._up else "stale",
            connected=connected,
            last_good_t_s=self.last_good_t_s,
            error_count=self.error_count,
            corrupt_frame_count=self.corrupt_frame_count,
            last_error=self.last_error,
            valid_count=self.valid_count,
        )


class _Port:
    """One serial port: its transport, the one thread that touches it, and reconnect backoff."""

    def __init__(
        self,
        device: str,
        open_transport: TransportOpener,
        *,
        clock: Clock,
        reconnect_initial_s: float,
        reconnect_max_s: float,
    ) -> None:
        self._device = device
        self._open_transport = open_transport
        self._clock = clock
        self._initial_s = reconnect_initial_s
        self._max_s = reconnect_max_s
        self.retry_delay_s = reconnect_initial_s
        self._next_attempt_t_s = float("-inf")
        self._executor: ThreadPoolExecutor | None = None
        self._connecting: asyncio.Future[ByteTransport] | None = None
        self.transport: ByteTransport | None = None

    def start(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"scale-{self._device}")

    async def call(self, fn: Callable[..., _T], *args: object) -> _T:
        if self._executor is None:
            raise DeviceDisconnected(self._device, "scale is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def connect(self, *, respect_backoff: bool, wait_s: float | None = None) -> ByteTransport:
        """The open transport, connecting first if needed.

        One attempt at a time runs on the port thread. A caller waits for it at most ``wait_s``
        (None = until it ends) and then gets ``DeviceTimeout`` while the attempt carries on:
        a gateway that does not answer can hold a TCP connect for seconds, and a poll must
        not hang that long. Later callers during the attempt fail fast.
        """
        if self.transport is not None:
            return self.transport
        attempt = self._connecting
        if attempt is None:
            now = self._clock()
            if respect_backoff and now < self._next_attempt_t_s:
                raise DeviceDisconnected(
                    self._device,
                    f"port down, next reconnect in {self._next_attempt_t_s - now:.2f} s",
                )
            if self._executor is None:
                raise DeviceDisconnected(self._device, "scale is not open")
            attempt = asyncio.get_running_loop().run_in_executor(
                self._executor, self._open_transport
            )
            attempt.add_done_callback(self._connect_done)
            self._connecting = attempt
        elif wait_s is not None:
            raise DeviceDisconnected(self._device, "reconnect in progress")
        try:
            async with asyncio.timeout(wait_s):
                return await asyncio.shield(attempt)
        except TimeoutError:
            raise DeviceTimeout(self._device, f"connect still running after {wait_s} s") from None

    def _connect_done(self, attempt: asyncio.Future[ByteTransport]) -> None:
        self._connecting = None
        if attempt.cancelled():
            return
        exc = attempt.exception()  # also marks it retrieved when no caller waits any more
        if exc is None:
            self.transport = attempt.result()
            self.retry_delay_s = self._initial_s
            self._next_attempt_t_s = float("-inf")
        elif isinstance(exc, DeviceDisconnected):
            self._next_attempt_t_s = self._clock() + self.retry_delay_s
            self.retry_delay_s = min(self.retry_delay_s * 2, self._max_s)

    async def drop(self) -> None:
        transport, self.transport = self.transport, None
        if transport is not None and self._executor is not None:
            # Not awaited: pyserial's socket:// close() sleeps 0.3 s "for quick reconnects", and
            # the error that made us drop the port should reach the caller now. The next
            # connect queues behind it on the same thread, so ordering is kept.
            self._executor.submit(transport.close)

    async def shutdown(self) -> None:
        await self.drop()
        executor, self._executor = self._executor, None
        if executor is not None:
            # Joined off the loop: a queued close or connect may still be running.
            await asyncio.to_thread(executor.shutdown, True)
        # A connect that finished during the join left a transport behind: close it too.
        await asyncio.sleep(0)
        if self.transport is not None:
            transport, self.transport = self.transport, None
            await asyncio.to_thread(transport.close)


class SerialScale(abc.ABC):
    """Common part of the serial indicator drivers. Construction does no I/O; ``open()`` does."""

    def __init__(
        self,
        name: str,
        open_transport: TransportOpener,
        *,
        timeout_s: float,
        clock: Clock = time.monotonic,
        reconnect_initial_s: float = 0.1,
        reconnect_max_s: float = 2.0,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.name = name
        self._timeout_s = timeout_s
        self._clock = clock
        self._health = _HealthTracker(name)
        self._port = _Port(
            name,
            open_transport,
            clock=clock,
            reconnect_initial_s=reconnect_initial_s,
            reconnect_max_s=reconnect_max_s,
        )
        self._opened = False

    @property
    def health(self) -> ScaleHealth:
        return self._health.snapshot(connected=self._port.transport is not None)

    async def open(self) -> None:
        """Start the port's thread and try to connect once.

        A device that is absent now is not an error here: the fault is logged and counted and
        the driver keeps reconnecting. A malformed URL raises ValueError.
        """
        if self._opened:
            return
        self._port.start()
        self._opened = True
        try:
            await self._port.connect(respect_backoff=False, wait_s=max(1.0, self._timeout_s))
        except (DeviceDisconnected, DeviceTimeout) as exc:
            self._health.fault(exc)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._opened = False
        await self._port.shutdown()

    def _require_open(self) -> None:
        if not self._opened:
            raise DeviceDisconnected(self.name, "scale is not open")

    @abc.abstractmethod
    async def read_weight(self) -> WeightReading:
        """The weight on the load cell now. Raises a DeviceError subclass, never returns garbage."""

    async def zero(self) -> None:
        raise ScaleCommandUnsupported(self.name, "this indicator protocol has no zero command")

    async def tare(self) -> float:
        raise ScaleCommandUnsupported(self.name, "this indicator protocol has no tare command")

    async def clear_tare(self) -> None:
        raise ScaleCommandUnsupported(self.name, "this indicator protocol has no tare command")


class MotionDetector:
    """Stability for formats without a motion flag: the last ``frames`` weights are equal."""

    def __init__(self, frames: int, band_g: float = 0.0) -> None:
        if frames < 1:
            raise ValueError("frames must be at least 1")
        self._recent: deque[float] = deque(maxlen=frames)
        self._band_g = band_g

    def update(self, weight_g: float) -> bool:
        self._recent.append(weight_g)
        full = len(self._recent) == self._recent.maxlen
        # A small epsilon so equal displayed values that went through float scaling compare equal.
        return full and max(self._recent) - min(self._recent) <= self._band_g + 1e-9

    def reset(self) -> None:
        self._recent.clear()


@dataclass(frozen=True, slots=True)
class _Latest:
    t_s: float
    value: WeightReading | ScaleRangeError


class ContinuousScale(SerialScale):
    """An indicator that streams frames on its own (Toledo continuous, XK3190-A9 ``tF=0``)."""

    def __init__(
        self,
        name: str,
        open_transport: TransportOpener,
        new_framer: Callable[[], StreamFramer],
        *,
        timeout_s: float,
        clock: Clock = time.monotonic,
        stable_frames: int = 3,
        reconnect_initial_s: float = 0.1,
        reconnect_max_s: float = 2.0,
    ) -> None:
        super().__init__(
            name,
            open_transport,
            timeout_s=timeout_s,
            clock=clock,
            reconnect_initial_s=reconnect_initial_s,
            reconnect_max_s=reconnect_max_s,
        )
        self._new_framer = new_framer
        self._motion = MotionDetector(stable_frames)
        self._latest: _Latest | None = None
        self._reader: asyncio.Task[None] | None = None
        self._opened_t_s = float("-inf")

    async def open(self) -> None:
        if self._opened:
            return
        await super().open()
        # The first frame is due one frame period after the connection is up, not after the
        # call began: an rfc2217 open alone negotiates for a few hundred milliseconds.
        self._opened_t_s = self._clock()
        self._reader = asyncio.create_task(self._read_stream(), name=f"scale-reader-{self.name}")
        self._reader.add_done_callback(self._reader_ended)

    def _reader_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("scale %s: reader stopped", self.name, exc_info=task.exception())

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            # A reader that died of an error has already been logged; closing must not raise it.
            await asyncio.gather(reader, return_exceptions=True)
        await super().close()

    async def read_weight(self) -> WeightReading:
        self._require_open()
        reader = self._reader
        if reader is not None and reader.done() and not reader.cancelled() and reader.exception():
            # A bug or a bad URL killed the reader: say so instead of timing out forever.
            raise DeviceDisconnected(
                self.name, f"reader stopped: {reader.exception()!r}"
            ) from reader.exception()
        latest = self._latest
        now = self._clock()
        if latest is None or now - latest.t_s > self._timeout_s:
            age = (
                "no valid frame yet"
                if latest is None
                else f"last valid frame {now - latest.t_s:.2f} s ago"
            )
            exc: DeviceError
            if latest is None and now - self._opened_t_s <= self._timeout_s:
                # Just opened: the first frame is not due yet, so this is not a fault.
                exc = DeviceTimeout(self.name, "no frame yet since open")
                self._health.error(exc)
                raise exc
            if self._port.transport is None:
                exc = DeviceDisconnected(self.name, f"port down; {age}")
            else:
                exc = DeviceTimeout(self.name, f"{age} (timeout {self._timeout_s} s)")
            self._health.fault(exc)
            raise exc
        if isinstance(latest.value, ScaleRangeError):
            error = ScaleRangeError(
                self.name, latest.value.direction, "indicator reports over/under range"
            )
            self._health.error(error)
            raise error from latest.value
        return latest.value

    async def _read_stream(self) -> None:
        framer = self._new_framer()
        while True:
            transport = self._port.transport
            if transport is None:
                try:
                    transport = await self._port.connect(respect_backoff=False)
                except DeviceDisconnected as exc:
                    self._health.fault(exc)
                    await asyncio.sleep(self._port.retry_delay_s)
                    continue
                # A new connection starts mid-stream: forget partial frames and motion history.
                framer = self._new_framer()
                self._motion.reset()
            try:
                data = await self._port.call(transport.read, READ_CHUNK_BYTES)
            except DeviceDisconnected as exc:
                self._health.fault(exc)
                await self._port.drop()
                continue
            now = self._clock()
            for result in framer.feed(data):
                self._accept(result, now)
            latest = self._latest
            if self._health.up and (latest is None or now - latest.t_s > self._timeout_s):
                self._health.fault(
                    DeviceTimeout(self.name, f"no valid frame for {self._timeout_s} s")
                )

    def _accept(self, result: FrameResult, now: float) -> None:
        outcome = result.outcome
        if isinstance(outcome, IndicatorReading):
            stable = (
                self._motion.update(outcome.weight_g) if outcome.stable is None else outcome.stable
            )
            self._latest = _Latest(
                now, WeightReading(weight_g=outcome.weight_g, stable=stable, t_s=now)
            )
            self._health.good(now)
        elif isinstance(outcome, ScaleRangeError):
            self._motion.reset()
            self._latest = _Latest(now, outcome)
            self._health.error(outcome)
        else:
            self._health.error(outcome)


def _exchange(transport: ByteTransport, request: bytes, timeout_s: float, device: str) -> bytes:
    """Send one command and return its reply line (runs on the port's thread)."""
    # A reply that arrived after an earlier command timed out would otherwise be taken as
    # the answer to this one.
    transport.discard_input()
    transport.write(request)
    deadline = time.monotonic() + timeout_s
    received = bytearray()
    while (end := received.find(b"\n")) < 0:
        if len(received) > mtsics.MAX_LINE_BYTES:
            raise CorruptFrame(
                device, f"no line end within {mtsics.MAX_LINE_BYTES} bytes: {bytes(received)!r}"
            )
        if time.monotonic() >= deadline:
            raise DeviceTimeout(device, f"no reply to {request!r} within {timeout_s} s")
        received += transport.read(READ_CHUNK_BYTES)
    return bytes(received[: end + 1])


class MtSicsScale(SerialScale):
    """A Mettler Toledo MT-SICS balance or indicator, polled with ``SI``."""

    def __init__(self, name: str, open_transport: TransportOpener, **options: Any) -> None:
        super().__init__(name, open_transport, **options)
        self._lock = asyncio.Lock()  # one command in flight per port

    async def read_weight(self) -> WeightReading:
        line = await self._command(mtsics.SEND_WEIGHT_IMMEDIATELY)
        now = self._clock()
        try:
            reading = mtsics.parse_weight_reply(line, self.name)
        except CorruptFrame as exc:
            self._health.fault(exc)
            raise
        except DeviceError as exc:  # a valid answer without a weight: busy, overload, ES/ET/EL
            self._health.error(exc)
            raise
        self._health.good(now)
        return WeightReading(weight_g=reading.weight_g, stable=bool(reading.stable), t_s=now)

    async def zero(self) -> None:
        """Zero the balance (``Z``: waits for a stable weight on the device side)."""
        mtsics.parse_zero_reply(await self._command(mtsics.ZERO), self.name)

    async def tare(self) -> float:
        """Tare with the current stable weight (``T``); returns the stored tare in grams."""
        return mtsics.parse_tare_reply(await self._command(mtsics.TARE), self.name)

    async def clear_tare(self) -> None:
        mtsics.parse_clear_tare_reply(await self._command(mtsics.CLEAR_TARE), self.name)

    async def _command(self, request: bytes) -> bytes:
        self._require_open()
        async with self._lock:
            try:
                transport = await self._port.connect(respect_backoff=True, wait_s=self._timeout_s)
                try:
                    return await self._port.call(
                        _exchange, transport, request, self._timeout_s, self.name
                    )
                except DeviceDisconnected:
                    await self._port.drop()
                    raise
            except (DeviceDisconnected, DeviceTimeout, CorruptFrame) as exc:
                self._health.fault(exc)
                raise
