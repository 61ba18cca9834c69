"""The ``Scale`` driver for serial weighing indicators: the reader thread, the modes, health.

Layers: ``transport.py`` moves bytes; the protocol modules (``toledo``, ``xk3190``, ``mtsics``)
turn frames into readings; this module owns one port per scale and the one thread that touches
it: reading and stamping, reconnecting with backoff, MT-SICS requests and zero/tare commands,
and the health the runtime and metrics read. It does not decide which cup a reading belongs
to: the runtime matches readings to cups by their stamps and the encoder.

Threading: each scale runs one reader thread, ``gradeline-scale-<name>``, from ``open()`` to
``close()``. Only that thread calls the transport. It stamps every reading with ``clock()``
right after the read that delivered its frame's last byte, so nothing on the event loop sits
between the bytes arriving and the stamp. The thread hands results over through a lock:

* ``take_readings()`` drains a bounded buffer of every valid reading (oldest first);
* ``read_weight()`` returns the newest one if it is fresh (a convenience for the CLI tools);
* ``is_up()`` and ``health`` read the state the thread keeps;
* ``zero()``/``tare()``/``clear_tare()`` queue a command for the thread and await its reply.

Indicators:

* ``ContinuousScale`` (Toledo continuous, XK3190-A9 ``tF=0``): the indicator streams frames.
* ``MtSicsScale``: ``mode="stream"`` sends ``SIR`` after every connect and reads the repeated
  ``S S``/``S D`` lines; ``mode="poll"`` sends ``SI`` every ``poll_interval_s``, one request in
  flight, and stamps each reply on arrival.

Health is ``drivers.health.FaultState``: a fault (connect failed, port dropped, no valid reading
within ``timeout_s``) is logged once when it starts and once when it clears. A rejected frame
or a reply without a weight (``S I``, ``S +``, ``S -``) is counted, never returned as a reading,
and does not by itself make the scale down: staleness does, if no valid reading follows.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from drivers.health import Backoff, FaultState, HealthSnapshot
from drivers.interfaces import (
    CorruptFrame,
    DeviceDisconnected,
    DeviceError,
    DeviceTimeout,
    WeightReading,
)
from drivers.scales import mtsics
from drivers.scales.errors import ScaleCommandUnsupported, ScaleNotReady, ScaleRangeError
from drivers.scales.frames import IndicatorReading, StreamFramer
from drivers.scales.transport import ByteTransport

log = logging.getLogger(__name__)

Clock = Callable[[], float]
TransportOpener = Callable[[], ByteTransport]
MtSicsMode = Literal["stream", "poll"]

READ_CHUNK_BYTES = 4096
# A poll reply later than this after its request is marked backlogged (see WeightReading).
POLL_REPLY_TRUSTED_S = 0.025
# The longest real-time wait of the reader thread between looks at a stop request, a queued
# command or the clock (which a test may move by hand).
_WAIT_SLICE_S = 0.02
# close() waits this long for the thread: a socket:// close sleeps 0.3 s in pyserial, and a
# connect to an unreachable gateway may hold for pyserial's 5 s connect timeout.
_JOIN_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ScaleHealth(HealthSnapshot):
    """The shared device health plus what /metrics and the API show of a scale.

    ``state`` is ``unknown`` until the first valid reading, ``up`` after one, and ``down`` from
    a fault (connect failed, port dropped, no valid reading within ``timeout_s``) until the
    next valid reading. ``errors`` counts every failure: fault, failed reconnect, rejected
    frame, reply without a weight. Of those, ``corrupt_frame_count`` counts frames that failed
    framing, checksum or structure, and ``range_error_count`` overload/underload reports.
    ``dropped_readings`` counts readings pushed out of a full buffer nobody took.
    """

    connected: bool
    last_good_t_s: float | None
    valid_count: int
    corrupt_frame_count: int
    range_error_count: int
    dropped_readings: int


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


class SerialScale(abc.ABC):
    """Common part of the serial indicator drivers: the reader thread and what it shares.

    Construction does no I/O; ``open()`` starts the thread. Subclasses implement ``_serve``,
    which runs in the thread for one connection and reports through ``_accept``/``_reject``.
    """

    def __init__(
        self,
        name: str,
        open_transport: TransportOpener,
        *,
        timeout_s: float,
        clock: Clock = time.monotonic,
        reconnect_initial_s: float = 0.1,
        reconnect_max_s: float = 2.0,
        buffer_size: int = 2000,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self.name = name
        self._open_transport = open_transport
        self._timeout_s = timeout_s
        self._clock = clock
        # Touched by the reader thread only.
        self._backoff = Backoff(reconnect_initial_s, reconnect_max_s, clock=clock)
        # Everything below is shared between the thread and the callers: under _lock.
        self._lock = threading.Lock()
        self._faults = FaultState(name, clock=clock, logger=log)
        self._buffer: deque[WeightReading] = deque(maxlen=buffer_size)
        self._latest: WeightReading | None = None
        # The newest valid answer without a weight (over range, busy), if newer than _latest.
        self._refusal: tuple[float, DeviceError] | None = None
        self._connected = False
        self._connected_t_s = float("-inf")
        # read_weight() returns nothing stamped at or before this (the reply to a zero or tare).
        self._not_before_t_s = float("-inf")
        self._valid_count = 0
        self._corrupt_frame_count = 0
        self._range_error_count = 0
        self._dropped_readings = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._first_attempt = threading.Event()
        self._crash: BaseException | None = None
        self._opened_t_s = float("-inf")

    # -- the caller's side -------------------------------------------------------------------
    @property
    def health(self) -> ScaleHealth:
        with self._lock:
            base = self._faults.snapshot()
            return ScaleHealth(
                device=base.device,
                state=base.state,
                since_s=base.since_s,
                faults=base.faults,
                errors=base.errors,
                last_error=base.last_error,
                connected=self._connected,
                last_good_t_s=None if self._latest is None else self._latest.t_s,
                valid_count=self._valid_count,
                corrupt_frame_count=self._corrupt_frame_count,
                range_error_count=self._range_error_count,
                dropped_readings=self._dropped_readings,
            )

    async def open(self) -> None:
        """Start the reader thread and wait (at most ``max(1 s, timeout_s)``) for its first connect.

        A device that is absent now is not an error here: the fault is logged and counted and
        the thread keeps reconnecting. A malformed URL raises ValueError.
        """
        if self._thread is not None:
            return
        self._stop.clear()
        self._first_attempt.clear()
        self._crash = None
        self._opened_t_s = self._clock()
        self._thread = threading.Thread(
            target=self._run, name=f"gradeline-scale-{self.name}", daemon=True
        )
        self._thread.start()
        await asyncio.to_thread(self._first_attempt.wait, max(1.0, self._timeout_s))
        crash = self._crash
        if crash is not None:
            await self.close()
            raise crash

    async def close(self) -> None:
        """Stop the reader thread, close the port, and wait for both."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        await asyncio.to_thread(thread.join, _JOIN_TIMEOUT_S)
        if thread.is_alive():
            log.warning(
                "scale %s: reader thread still running %s s after close", self.name, _JOIN_TIMEOUT_S
            )
        self._session_ended(DeviceDisconnected(self.name, "scale closed"))
        with self._lock:
            self._connected = False

    def take_readings(self) -> list[WeightReading]:
        """Every valid reading received since the last call, oldest first. Never blocks."""
        with self._lock:
            readings = list(self._buffer)
            self._buffer.clear()
        return readings

    def is_up(self) -> bool:
        """Connected, and a valid reading arrived within ``timeout_s``."""
        with self._lock:
            connected, latest = self._connected, self._latest
        return (
            connected
            and self._crash is None
            and latest is not None
            and self._clock() - latest.t_s <= self._timeout_s
        )

    async def read_weight(self) -> WeightReading:
        """The newest valid reading, if it is at most ``timeout_s`` old; never waits.

        Raises ``DeviceTimeout`` when there is none that fresh (``DeviceDisconnected`` when the
        port is down), and the indicator's own ``ScaleRangeError``/``ScaleNotReady`` when its
        newest answer was over/under range or busy. For the CLI tools: the runtime uses
        ``take_readings()``. A zero or tare hides the readings received before its reply.
        """
        self._require_open()
        crash = self._crash
        if crash is not None:
            # A bug or a bad URL killed the reader: say so instead of timing out forever.
            raise DeviceDisconnected(self.name, f"reader stopped: {crash!r}") from crash
        now = self._clock()
        with self._lock:
            latest, refusal, connected = self._latest, self._refusal, self._connected
            not_before_t_s = self._not_before_t_s
        if refusal is not None and now - refusal[0] <= self._timeout_s:
            raise refusal[1].with_traceback(None)
        if latest is not None and latest.t_s <= not_before_t_s:
            latest = None
        if latest is not None and now - latest.t_s <= self._timeout_s:
            return latest
        if latest is None:
            age = "no reading yet" if now - self._opened_t_s <= self._timeout_s else "no reading"
        else:
            age = f"last reading {now - latest.t_s:.2f} s ago"
        if not connected:
            raise DeviceDisconnected(self.name, f"port down; {age}")
        raise DeviceTimeout(self.name, f"{age} (timeout {self._timeout_s} s)")

    async def zero(self) -> None:
        raise ScaleCommandUnsupported(self.name, "this indicator protocol has no zero command")

    async def tare(self) -> float:
        raise ScaleCommandUnsupported(self.name, "this indicator protocol has no tare command")

    async def clear_tare(self) -> None:
        raise ScaleCommandUnsupported(self.name, "this indicator protocol has no tare command")

    def _require_open(self) -> None:
        if self._thread is None:
            raise DeviceDisconnected(self.name, "scale is not open")

    # -- the reader thread -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                transport = self._connect()
                if transport is None:
                    continue
                try:
                    self._serve(transport)
                except (DeviceDisconnected, DeviceTimeout) as exc:
                    # DeviceTimeout here is a write that did not complete: the link is stuck.
                    self._backoff.failed()
                    with self._lock:
                        self._faults.fault(exc)
                finally:
                    with self._lock:
                        self._connected = False
                    self._session_ended(DeviceDisconnected(self.name, "port dropped"))
                    transport.close()
        except BaseException as exc:  # a bug or a bad URL: not a device fault, and not retried
            self._crash = exc
            log.error("scale %s: reader stopped", self.name, exc_info=exc)
            with self._lock:
                self._connected = False
                self._faults.fault(f"reader stopped: {exc!r}")
        finally:
            self._first_attempt.set()
            self._session_ended(DeviceDisconnected(self.name, "reader stopped"))

    def _connect(self) -> ByteTransport | None:
        """One connect attempt if the backoff allows it, else a short wait. None if not connected."""
        if not self._backoff.ready():
            self._session_ended(DeviceDisconnected(self.name, "port down"))
            self._stop.wait(min(self._backoff.wait_s(), _WAIT_SLICE_S))
            return None
        try:
            transport = self._open_transport()
        except DeviceDisconnected as exc:
            self._backoff.failed()
            with self._lock:
                self._faults.fault(exc)
            self._first_attempt.set()
            return None
        with self._lock:
            self._connected = True
            self._connected_t_s = self._clock()
        self._first_attempt.set()
        return transport

    @abc.abstractmethod
    def _serve(self, transport: ByteTransport) -> None:
        """Read one connection until ``_stop`` is set; raise DeviceDisconnected when it drops."""

    def _session_ended(self, reason: DeviceError) -> None:
        """No connection now: fail whatever waits for one (MT-SICS commands)."""
        return None

    def _wait(self, seconds: float) -> None:
        """Sleep in the thread, woken early by a queued command or close()."""
        if self._wake.wait(max(0.0, min(seconds, _WAIT_SLICE_S))):
            self._wake.clear()

    def _accept(self, weight_g: float, stable: bool, t_s: float, backlogged: bool = False) -> None:
        reading = WeightReading(weight_g=weight_g, stable=stable, t_s=t_s, backlogged=backlogged)
        self._backoff.succeeded()
        with self._lock:
            if len(self._buffer) == self._buffer.maxlen:
                self._dropped_readings += 1
            self._buffer.append(reading)
            self._latest = reading
            self._refusal = None
            self._valid_count += 1
            self._faults.ok()

    def _reject(self, error: DeviceError, t_s: float) -> None:
        with self._lock:
            if isinstance(error, CorruptFrame):
                self._corrupt_frame_count += 1
            elif isinstance(error, ScaleRangeError):
                self._range_error_count += 1
            if isinstance(error, ScaleRangeError | ScaleNotReady):
                self._refusal = (t_s, error)
            self._faults.error(error)

    def _check_fresh(self, now: float) -> None:
        """Fault once when a connected indicator sent no valid reading for ``timeout_s``."""
        with self._lock:
            if not self._connected or self._faults.faulted:
                return
            latest_t_s = float("-inf") if self._latest is None else self._latest.t_s
            # A new connection gets its own timeout_s for the first reading.
            if now - max(latest_t_s, self._connected_t_s) <= self._timeout_s:
                return
            why = f" (the indicator says: {self._refusal[1]})" if self._refusal else ""
            self._faults.fault(
                DeviceTimeout(self.name, f"no valid reading for {self._timeout_s} s{why}")
            )


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
        buffer_size: int = 2000,
    ) -> None:
        super().__init__(
            name,
            open_transport,
            timeout_s=timeout_s,
            clock=clock,
            reconnect_initial_s=reconnect_initial_s,
            reconnect_max_s=reconnect_max_s,
            buffer_size=buffer_size,
        )
        self._new_framer = new_framer
        self._motion = MotionDetector(stable_frames)

    def _serve(self, transport: ByteTransport) -> None:
        # A new connection starts mid-stream: no partial frame or motion history carries over.
        framer = self._new_framer()
        self._motion.reset()
        while not self._stop.is_set():
            data = transport.read(READ_CHUNK_BYTES)
            # Every frame completed by this read had its last byte arrive in it: stamp now,
            # before parsing, so parsing time does not shift the stamp either.
            now = self._clock()
            results = framer.feed(data)
            # Several frames in one read: the thread was behind. The last arrived within a
            # frame period of the read; the others at earlier moments the stamp does not know.
            last = len(results) - 1
            for i, result in enumerate(results):
                backlogged = i < last
                outcome = result.outcome
                if isinstance(outcome, IndicatorReading):
                    stable = (
                        self._motion.update(outcome.weight_g)
                        if outcome.stable is None
                        else outcome.stable
                    )
                    self._accept(outcome.weight_g, stable, now, backlogged)
                else:
                    if isinstance(outcome, ScaleRangeError):
                        self._motion.reset()
                    self._reject(outcome, now)
            self._check_fresh(now)


@dataclass(slots=True)
class _Command:
    """A zero/tare command queued for the reader thread, and the future its reply goes to."""

    name: bytes  # b"Z": its reply starts with b"Z "
    request: bytes  # b"Z\r\n"
    timeout_s: float
    reply: concurrent.futures.Future[bytes]


# The replies to the commands this driver sends besides SI/SIR (zero, tare, clear tare).
_COMMAND_REPLY_PREFIXES = (b"Z ", b"T ", b"TAC ")


class MtSicsScale(SerialScale):
    """A Mettler Toledo MT-SICS balance or indicator, streamed (``SIR``) or polled (``SI``).

    Zero and tare work in both modes. In stream mode the command is sent into the running
    stream and its reply is picked out by its prefix (``Z ``, ``T ``, ``TAC ``): MT-SICS keeps
    ``SIR`` running through other commands (only ``S``, ``SI``, ``SR`` and ``@`` cancel it),
    and pausing the stream with ``@`` would also clear the tare. ``SIR`` is sent again after
    each command's reply anyway, for models that stop streaming on any command; on the others
    it only restarts the stream. In poll mode the command goes between two polls.
    """

    def __init__(
        self,
        name: str,
        open_transport: TransportOpener,
        *,
        timeout_s: float,
        mode: MtSicsMode = "stream",
        poll_interval_s: float = 0.01,
        command_timeout_s: float = 5.0,
        clock: Clock = time.monotonic,
        reconnect_initial_s: float = 0.1,
        reconnect_max_s: float = 2.0,
        buffer_size: int = 2000,
    ) -> None:
        if mode not in ("stream", "poll"):
            raise ValueError(f"MT-SICS mode must be 'stream' or 'poll', not {mode!r}")
        if poll_interval_s <= 0 or command_timeout_s <= 0:
            raise ValueError("poll_interval_s and command_timeout_s must be positive")
        super().__init__(
            name,
            open_transport,
            timeout_s=timeout_s,
            clock=clock,
            reconnect_initial_s=reconnect_initial_s,
            reconnect_max_s=reconnect_max_s,
            buffer_size=buffer_size,
        )
        self.mode: MtSicsMode = mode
        self._poll_interval_s = poll_interval_s
        self._command_timeout_s = command_timeout_s
        self._commands: queue.SimpleQueue[_Command] = queue.SimpleQueue()

    # -- commands, from the caller ------------------------------------------------------------
    async def zero(self) -> None:
        """Zero the balance (``Z``: the balance waits for a stable weight first)."""
        mtsics.parse_zero_reply(await self._command(b"Z", mtsics.ZERO), self.name)

    async def tare(self) -> float:
        """Tare with the current stable weight (``T``); returns the stored tare in grams."""
        return mtsics.parse_tare_reply(await self._command(b"T", mtsics.TARE), self.name)

    async def clear_tare(self) -> None:
        mtsics.parse_clear_tare_reply(await self._command(b"TAC", mtsics.CLEAR_TARE), self.name)

    async def _command(self, name: bytes, request: bytes) -> bytes:
        """Queue a command for the reader thread; its reply line, CR LF included."""
        self._require_open()
        if self._crash is not None:
            raise DeviceDisconnected(self.name, f"reader stopped: {self._crash!r}")
        with self._lock:
            connected = self._connected
        if not connected:
            raise DeviceDisconnected(self.name, "port down")
        reply: concurrent.futures.Future[bytes] = concurrent.futures.Future()
        self._commands.put(_Command(name, request, self._command_timeout_s, reply))
        self._wake.set()
        try:
            # The thread enforces the command's deadline; this one only covers a thread that
            # ended between the check above and the queueing.
            async with asyncio.timeout(self._command_timeout_s + 1.0):
                return await asyncio.wrap_future(reply)
        except TimeoutError:
            raise DeviceTimeout(self.name, f"no reply to {request!r}") from None

    # -- the reader thread ----------------------------------------------------------------------
    def _session_ended(self, reason: DeviceError) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            if command.reply.set_running_or_notify_cancel():
                command.reply.set_exception(reason)

    def _next_command(self) -> _Command | None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return None
            # False when the caller gave up (cancelled) before the thread got to it.
            if command.reply.set_running_or_notify_cancel():
                return command

    def _serve(self, transport: ByteTransport) -> None:
        lines = mtsics.LineFramer(self.name)
        if self.mode == "stream":
            self._serve_stream(transport, lines)
        else:
            self._serve_poll(transport, lines)

    def _serve_stream(self, transport: ByteTransport, lines: mtsics.LineFramer) -> None:
        # Lines queued before this connection (a gateway's buffer) belong to no request of ours.
        transport.discard_input()
        transport.write(mtsics.SEND_WEIGHT_AND_REPEAT)
        armed_t_s = heard_t_s = self._clock()
        while not self._stop.is_set():
            command = self._next_command()
            if command is not None:
                self._run_command(transport, lines, command)
                if self._stop.is_set():
                    return
                transport.write(mtsics.SEND_WEIGHT_AND_REPEAT)
                armed_t_s = self._clock()
                continue
            data = transport.read(READ_CHUNK_BYTES)
            now = self._clock()  # the stamp of every line this read completed
            items = lines.feed(data)
            for i, item in enumerate(items):
                heard_t_s = now
                # the thread was behind: all but the last line arrived earlier (WeightReading)
                self._take_line(item, now, i < len(items) - 1)
            if now - max(heard_t_s, armed_t_s) > self._timeout_s:
                # Silent, yet connected: a balance restarted behind a gateway that kept the
                # TCP connection has forgotten SIR. Ask again, once per timeout_s.
                transport.write(mtsics.SEND_WEIGHT_AND_REPEAT)
                armed_t_s = now
            self._check_fresh(now)

    def _serve_poll(self, transport: ByteTransport, lines: mtsics.LineFramer) -> None:
        next_poll_t_s = self._clock()
        while not self._stop.is_set():
            command = self._next_command()
            if command is not None:
                self._run_command(transport, lines, command)
                continue
            now = self._clock()
            if now < next_poll_t_s:
                self._check_fresh(now)
                self._wait(next_poll_t_s - now)
                continue
            # Paced from the send: a reply slower than the interval delays the next SI (one
            # request in flight), it never makes two go out at once.
            next_poll_t_s = now + self._poll_interval_s
            self._poll_once(transport, lines)
            self._check_fresh(self._clock())

    def _poll_once(self, transport: ByteTransport, lines: mtsics.LineFramer) -> None:
        # A reply that came after an earlier SI timed out must not be taken for this one's.
        transport.discard_input()
        lines.reset()
        sent_t_s = self._clock()
        transport.write(mtsics.SEND_WEIGHT_IMMEDIATELY)
        deadline = time.monotonic() + self._timeout_s
        while not self._stop.is_set():
            data = transport.read(READ_CHUNK_BYTES)
            now = self._clock()
            items = lines.feed(data)
            # The balance weighed somewhere between the request and this stamp: a slow reply
            # (a stalled thread, a busy gateway) leaves its moment too uncertain to weigh a cup.
            backlogged = now - sent_t_s > POLL_REPLY_TRUSTED_S
            for item in items:
                self._take_line(item, now, backlogged)
            if items:  # one request in flight: whatever line came is its answer
                return
            if time.monotonic() >= deadline:
                self._reject(
                    DeviceTimeout(self.name, f"no reply to SI within {self._timeout_s} s"), now
                )
                return

    def _run_command(
        self, transport: ByteTransport, lines: mtsics.LineFramer, command: _Command
    ) -> None:
        """Send one command and hand its reply to the caller; stream lines keep flowing meanwhile."""
        try:
            if self.mode == "poll":
                transport.discard_input()  # late SI replies are not this command's answer
                lines.reset()
            transport.write(command.request)
            deadline = time.monotonic() + command.timeout_s
            while True:
                if self._stop.is_set():
                    command.reply.set_exception(DeviceDisconnected(self.name, "scale closed"))
                    return
                data = transport.read(READ_CHUNK_BYTES)
                now = self._clock()
                reply: bytes | None = None
                for item in lines.feed(data):
                    if (
                        reply is None
                        and isinstance(item, bytes)
                        and mtsics.is_reply_to(item, command.name)
                    ):
                        reply = item
                    else:
                        self._take_line(item, now)
                self._check_fresh(now)
                if reply is not None:
                    with self._lock:
                        self._not_before_t_s = now
                    command.reply.set_result(reply)
                    return
                if time.monotonic() >= deadline:
                    command.reply.set_exception(
                        DeviceTimeout(
                            self.name,
                            f"no reply to {command.request!r} within {command.timeout_s} s",
                        )
                    )
                    return
        except BaseException as exc:
            if not command.reply.done():
                command.reply.set_exception(
                    exc
                    if isinstance(exc, DeviceError)
                    else DeviceDisconnected(self.name, repr(exc))
                )
            raise

    def _take_line(self, item: bytes | CorruptFrame, t_s: float, backlogged: bool = False) -> None:
        """One line outside a command's reply: a weight, a status without weight, or an error."""
        if isinstance(item, CorruptFrame):
            self._reject(item, t_s)
            return
        if item.startswith(_COMMAND_REPLY_PREFIXES):
            # The reply to a command that had already timed out: valid, but nobody waits for it.
            self._reject(DeviceError(self.name, f"MT-SICS late reply: {item!r}"), t_s)
            return
        if not (mtsics.is_weight_line(item) or mtsics.is_command_error(item)):
            self._reject(CorruptFrame(self.name, f"not an MT-SICS weight line: {item!r}"), t_s)
            return
        try:
            reading = mtsics.parse_weight_reply(item, self.name)
        except DeviceError as exc:  # corrupt, S I / S + / S -, ES / ET / EL
            self._reject(exc, t_s)
            return
        self._accept(reading.weight_g, bool(reading.stable), t_s, backlogged)
