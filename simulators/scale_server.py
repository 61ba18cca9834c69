"""Wire-level simulator of a serial weighing indicator, over TCP loopback or a pty pair.

Emits the exact bytes of the chosen protocol (PROTOCOLS.md §2) for a weight source:

* ``toledo``: 18-byte continuous frames, ``rate_hz`` per second;
* ``xk3190``: XK3190-A9 ``tF=0`` 12-byte continuous frames, ``rate_hz`` per second;
* ``mt-sics``: answers ``S SI SIR Z ZI T TI TAC @ I4`` command lines; anything else gets ``ES``.
  ``SIR`` (per connection) answers one weight line at once and then streams ``S S``/``S D``
  lines (``S +``/``S -`` out of range) ``rate_hz`` per second. As in MT-SICS, ``S``, ``SI``
  and ``@`` cancel the stream and ``SIR`` restarts it; other commands (``Z``, ``T``, ``TAC``,
  ``I4``, unknown ones) are answered between two stream lines and the stream goes on. ``@``
  also clears the tare, as the MT-SICS reset does.

The frame encoders here are written from the protocol description on their own, not shared
with ``drivers/``, so a driver test against this simulator checks two independent readings of
the same spec. ``FaultInjector`` (``simulators/faults.py``) sits between encoder and wire.

Transports: ``start_tcp(port)`` listens on 127.0.0.1 only (``port=0`` picks a free port);
``start_pty()`` opens a pty pair, keeps the master and returns the slave path for the driver.
``stop()`` is the device being switched off: the listener and every connection close.

With ``keep_send_log=True`` the simulator records every frame or line it puts on the wire in
``send_log`` (``SentFrame``: its clock time just before the write, the weight it encodes, the
clean bytes and the bytes after faults), so a test can check each reading a driver reports
against what was sent and when.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
import tty
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from simulators.faults import FaultInjector

_R = TypeVar("_R")
ProtocolName = Literal["mt-sics", "toledo", "xk3190"]
PROTOCOLS: tuple[ProtocolName, ...] = ("mt-sics", "toledo", "xk3190")
Unit = Literal["g", "kg", "lb"]
_GRAMS_PER = {"g": 1.0, "kg": 1000.0, "lb": 453.59237}

# -- weight sources -----------------------------------------------------------------------------


class WeightSource(Protocol):
    def sample(self, t_s: float) -> tuple[float, bool]:
        """Gross weight on the load cell in grams at ``t_s`` after start, and whether it is still."""
        ...


class SettableWeight:
    """A weight a test or operator sets by hand."""

    def __init__(self, weight_g: float = 0.0, stable: bool = True) -> None:
        self.weight_g = weight_g
        self.stable = stable

    def set(self, weight_g: float, stable: bool = True) -> None:
        self.weight_g = weight_g
        self.stable = stable

    def sample(self, t_s: float) -> tuple[float, bool]:
        return self.weight_g, self.stable


class FruitSequence:
    """Scripted fruit crossing the load cell, one per cup period.

    Each period: an empty stretch (load near zero, moving), the fruit landing (ramp, moving),
    then a settled plateau at the fruit's weight plus that cup's weighing error, drawn once per
    cup from N(0, noise_g) so the plateau reads constant as a stable indicator would.
    ``plateau_weight_g(k)`` is the exact ground truth for cup ``k``.
    """

    def __init__(
        self,
        fruit_weights_g: Sequence[float],
        *,
        cup_period_s: float = 0.5,
        empty_fraction: float = 0.2,
        settle_fraction: float = 0.3,
        noise_g: float = 0.4,
        seed: int = 0,
    ) -> None:
        if not fruit_weights_g:
            raise ValueError("need at least one fruit weight")
        if cup_period_s <= 0 or not 0 <= empty_fraction + settle_fraction < 1:
            raise ValueError("cup period must be positive and leave room for a plateau")
        self._weights = list(fruit_weights_g)
        self._period_s = cup_period_s
        self._empty = empty_fraction
        self._settle = settle_fraction
        self._noise_g = noise_g
        self._seed = seed

    def plateau_weight_g(self, cup: int) -> float:
        error = random.Random(self._seed * 1_000_003 + cup).gauss(0.0, self._noise_g)
        return self._weights[cup % len(self._weights)] + error

    def sample(self, t_s: float) -> tuple[float, bool]:
        cup, offset = divmod(max(t_s, 0.0), self._period_s)
        phase = offset / self._period_s
        if phase < self._empty:
            return 0.0, False
        if phase < self._empty + self._settle:
            landing = (phase - self._empty) / self._settle
            return self.plateau_weight_g(int(cup)) * landing, False
        return self.plateau_weight_g(int(cup)), True


@dataclass(frozen=True, slots=True)
class SentFrame:
    """One frame or line as the simulator sent it."""

    t_s: float  # the simulator's clock (absolute, not since start) just before the write
    weight_g: float | None  # the weight it encodes before display rounding; None: no weight
    stable: bool
    frame: bytes  # the clean encoding
    wire: bytes  # what went out after fault injection

    @property
    def intact(self) -> bool:
        """Whether the clean frame reached the wire whole (garbage may precede it)."""
        return self.wire.endswith(self.frame)


# -- encoders (independent of drivers/) ------------------------------------------------------


def _display_counts(weight_g: float, unit: str, decimals: int) -> int:
    return round(abs(weight_g) / _GRAMS_PER[unit] * 10**decimals)


def toledo_frame(
    weight_g: float,
    *,
    stable: bool = True,
    unit: Literal["kg", "lb"] = "kg",
    decimals: int = 3,
    tare_g: float = 0.0,
    net: bool = False,
) -> bytes:
    """One Toledo continuous frame. ``decimals`` -2..5 (-2 = two implied zeros)."""
    if not -2 <= decimals <= 5:
        raise ValueError("Toledo decimals must be in -2..5")
    weight_counts = _display_counts(weight_g, unit, decimals)
    tare_counts = _display_counts(tare_g, unit, decimals)
    over_range = weight_counts > 999_999
    status_a = 0b0010_0000 | (0b01 << 3) | (decimals + 2)  # always-1 bit, count by 1, decimal code
    status_b = 0b0010_0000  # bit 5 set, as in the PROTOCOLS.md worked example
    status_b |= 0x01 if net else 0
    status_b |= 0x02 if weight_g < 0 and weight_counts else 0
    status_b |= 0x04 if over_range else 0
    status_b |= 0x00 if stable else 0x08
    status_b |= 0x10 if unit == "kg" else 0
    status_c = 0b0010_0000
    body = bytes((0x02, status_a, status_b, status_c))
    body += b"%06d%06d\r" % (min(weight_counts, 999_999), min(tare_counts, 999_999))
    return body + bytes(((128 - sum(body) % 128) % 128,))


def toledo_spoil_check(frame: bytes) -> bytes:
    return frame[:-1] + bytes(((frame[-1] + 1) & 0x7F,))


def xk3190_frame(weight_g: float, *, unit: Literal["kg", "g"] = "kg", decimals: int = 3) -> bytes:
    """One XK3190-A9 ``tF=0`` frame; the display saturates at 999999 counts."""
    if not 0 <= decimals <= 4:
        raise ValueError("XK3190 decimals must be in 0..4")
    counts = min(_display_counts(weight_g, unit, decimals), 999_999)
    body = b"%c%06d%d" % (ord("-") if weight_g < 0 and counts else ord("+"), counts, decimals)
    check = 0
    for byte in body:
        check ^= byte
    nibbles = bytes(n + 0x30 if n <= 9 else n + 0x37 for n in (check >> 4, check & 0x0F))
    return b"\x02" + body + nibbles + b"\x03"


def xk3190_spoil_check(frame: bytes) -> bytes:
    low = frame[10]
    spoiled = ord("0") if low != ord("0") else ord("1")
    return frame[:10] + bytes((spoiled,)) + frame[11:]


def mtsics_weight_field(weight_g: float, unit: Unit = "g", decimals: int = 2) -> bytes:
    value = weight_g / _GRAMS_PER[unit]
    if round(value, decimals) == 0:
        value = 0.0  # no "-0.00"
    return b"%10s %s" % (b"%.*f" % (decimals, value), unit.encode())


def mtsics_spoil(line: bytes) -> bytes:
    """MT-SICS has no checksum: spoil the line's structure instead (a digit becomes 'O')."""
    for i, byte in enumerate(line):
        if 0x30 <= byte <= 0x39:
            return line[:i] + b"O" + line[i + 1 :]
    return b"?" + line


@dataclass(frozen=True, slots=True)
class Reply:
    """One MT-SICS reply line and the net weight it carries (None: no weight in it)."""

    line: bytes
    weight_g: float | None = None
    stable: bool = False


class MtSicsBalance:
    """The command side of an MT-SICS balance: zero and tare state, replies per command."""

    def __init__(
        self,
        source: WeightSource,
        *,
        unit: Unit = "g",
        decimals: int = 2,
        capacity_g: float = 6000.0,
        serial_number: str = "SIM0001",
    ) -> None:
        self.source = source
        self.unit: Unit = unit
        self.decimals = decimals
        self.capacity_g = capacity_g
        self.serial_number = serial_number
        self.zero_offset_g = 0.0
        self.tare_g = 0.0
        self.commands: list[bytes] = []

    def answer(self, command: bytes, t_s: float) -> bytes:
        """The reply line, CR LF included, to one command (given without its CR LF)."""
        return self.reply(command, t_s).line

    def stream_line(self, t_s: float) -> Reply:
        """One line of a running ``SIR`` stream (not a command, so not in ``commands``)."""
        return self._weight_reply(b"SI", t_s)

    def _weight_reply(self, command: bytes, t_s: float) -> Reply:
        gross_g, stable = self.source.sample(t_s)
        gross_g -= self.zero_offset_g
        net_g = gross_g - self.tare_g
        if gross_g > self.capacity_g:
            return Reply(b"S +\r\n")
        if gross_g < -0.02 * self.capacity_g:
            return Reply(b"S -\r\n")
        if command == b"S" and not stable:
            return Reply(b"S I\r\n")  # a real balance waits for stability first; this one refuses
        line = b"S %s %s\r\n" % (
            b"S" if stable else b"D",
            mtsics_weight_field(net_g, self.unit, self.decimals),
        )
        return Reply(line, net_g, stable)

    def reply(self, command: bytes, t_s: float) -> Reply:
        """The reply to one command (given without its CR LF), at ``t_s`` after start."""
        self.commands.append(command)
        if command in (b"S", b"SI", b"SIR"):
            return self._weight_reply(command, t_s)
        return Reply(self._command_reply(command, t_s))

    def _command_reply(self, command: bytes, t_s: float) -> bytes:
        gross_g, stable = self.source.sample(t_s)
        gross_g -= self.zero_offset_g

        def field(weight_g: float) -> bytes:
            return mtsics_weight_field(weight_g, self.unit, self.decimals)

        if command in (b"Z", b"ZI"):
            if command == b"Z" and not stable:
                return b"Z I\r\n"
            self.zero_offset_g += gross_g
            self.tare_g = 0.0
            return b"Z A\r\n" if command == b"Z" else b"ZI %s\r\n" % (b"S" if stable else b"D")
        if command in (b"T", b"TI"):
            if command == b"T" and not stable:
                return b"T I\r\n"
            self.tare_g = gross_g
            status = b"S" if stable or command == b"T" else b"D"
            return b"%s %s %s\r\n" % (command, status, field(self.tare_g))
        if command == b"TAC":
            self.tare_g = 0.0
            return b"TAC A\r\n"
        if command in (b"@", b"I4"):
            if command == b"@":
                self.tare_g = 0.0  # the MT-SICS reset clears the tare register
            return b'I4 A "%s"\r\n' % self.serial_number.encode()
        return b"ES\r\n"


# -- transports -------------------------------------------------------------------------------


class _Link(Protocol):
    reader: asyncio.StreamReader

    def send(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class _TcpLink:
    # A client that stops reading must not make the simulator buffer without bound: like a
    # serial line nobody listens to, frames beyond this are simply lost.
    MAX_BUFFERED_BYTES = 64 * 1024

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self._writer = writer

    def send(self, data: bytes) -> None:
        transport = self._writer.transport
        if (
            not transport.is_closing()
            and transport.get_write_buffer_size() < self.MAX_BUFFERED_BYTES
        ):
            self._writer.write(data)

    def close(self) -> None:
        self._writer.close()


class _PtyLink:
    """The master side of a pty pair; the driver opens the slave path."""

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        # Raw mode before anyone opens the slave: no echo of frames back to us, no line editing.
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self.reader = asyncio.StreamReader()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._master, self._on_readable)
        self._closed = False

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.reader.feed_data(data)

    def send(self, data: bytes) -> None:
        if self._closed:
            return
        # The slave's input queue is full when nobody reads it: drop, as a serial line would.
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._master, data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._master)
        self.reader.feed_eof()
        os.close(self._master)
        # We held the slave open only to keep its raw settings; the driver's fd sees a hangup.
        os.close(self._slave)


class _SerialLineState:
    """The UART settings an RFC 2217 client may set. A simulated line has no UART: accept all."""

    def __init__(self) -> None:
        self.baudrate = 9600
        self.bytesize = 8
        self.parity = "N"
        self.stopbits = 1
        self.rts = self.dtr = True
        self.break_condition = self.xonxoff = self.rtscts = False
        self.cts = self.dsr = self.ri = self.cd = False

    def reset_input_buffer(self) -> None:
        pass

    def reset_output_buffer(self) -> None:
        pass


class _Rfc2217Link:
    """A TCP client speaking RFC 2217 (telnet COM-port control), as to a serial device server.

    pyserial's ``PortManager`` does the telnet negotiation; data bytes pass through its
    escaping in both directions.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import serial.rfc2217  # only this transport needs pyserial on the simulator side

        self._net_reader = reader
        self._writer = writer
        self.reader = asyncio.StreamReader()
        self._manager = serial.rfc2217.PortManager(_SerialLineState(), self)
        self._pump = asyncio.ensure_future(self._pump_incoming())

    def write(self, data: bytes) -> None:
        """Raw network write, used by PortManager for telnet replies."""
        if not self._writer.transport.is_closing():
            self._writer.write(data)

    async def _pump_incoming(self) -> None:
        try:
            while data := await self._net_reader.read(4096):
                payload = b"".join(self._manager.filter(data))
                if payload:
                    self.reader.feed_data(payload)
        except (ConnectionError, OSError):
            pass
        finally:
            self.reader.feed_eof()

    def send(self, data: bytes) -> None:
        transport = self._writer.transport
        if (
            not transport.is_closing()
            and transport.get_write_buffer_size() < _TcpLink.MAX_BUFFERED_BYTES
        ):
            self._writer.write(b"".join(self._manager.escape(data)))

    def close(self) -> None:
        self._pump.cancel()
        self._writer.close()


# -- the simulator ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Defaults:
    unit: Unit
    decimals: int


# MT-SICS: "SIR is overwritten and cancelled by S, SI, SR and @" (SR is not simulated).
_STREAM_CANCELLERS = frozenset({b"S", b"SI", b"SIR", b"@"})

_DEFAULTS: dict[ProtocolName, _Defaults] = {
    "toledo": _Defaults("kg", 3),
    "xk3190": _Defaults("kg", 3),
    "mt-sics": _Defaults("g", 2),
}


class ScaleSimulator:
    """One simulated indicator. Start it on TCP or a pty; ``stop()`` switches it off.

    Usable as ``async with ScaleSimulator(...) as sim: url = await sim.start_tcp()``.
    """

    def __init__(
        self,
        protocol: ProtocolName,
        source: WeightSource | None = None,
        *,
        unit: Unit | None = None,
        decimals: int | None = None,
        rate_hz: float = 20.0,
        faults: FaultInjector | None = None,
        clock: Callable[[], float] | None = None,
        keep_send_log: bool = False,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown scale protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")
        if rate_hz <= 0:
            raise ValueError("rate_hz must be positive")
        defaults = _DEFAULTS[protocol]
        self.protocol: ProtocolName = protocol
        self.source: WeightSource = source or SettableWeight()
        self.unit: Unit = unit or defaults.unit
        self.decimals = defaults.decimals if decimals is None else decimals
        self.rate_hz = rate_hz
        self.faults = faults or FaultInjector()
        self.faults.on_disconnect(self._drop_links)
        self.balance = MtSicsBalance(self.source, unit=self.unit, decimals=self.decimals)
        self._clock = clock
        self._t0 = 0.0
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._pty: _PtyLink | None = None
        self.tcp_port: int | None = None
        self.frames_sent = 0
        self.keep_send_log = keep_send_log
        self.send_log: list[SentFrame] = []

    # -- protocol ----------------------------------------------------------------------------
    def _clock_s(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    def _now_s(self) -> float:
        return self._clock_s() - self._t0

    def encode_now(self) -> bytes:
        """The continuous frame for the weight at this moment."""
        return self._encode_sample()[0]

    def _encode_sample(self) -> tuple[bytes, float, bool]:
        weight_g, stable = self.source.sample(self._now_s())
        if self.protocol == "toledo":
            frame = toledo_frame(
                weight_g,
                stable=stable,
                unit="lb" if self.unit == "lb" else "kg",
                decimals=self.decimals,
            )
        else:
            frame = xk3190_frame(
                weight_g, unit="g" if self.unit == "g" else "kg", decimals=self.decimals
            )
        return frame, weight_g, stable

    def _send(self, links: list[_Link], frame: bytes, weight_g: float | None, stable: bool) -> None:
        """Put one frame on the wire of ``links``, through the fault injector, and log it."""
        wire = self.faults.apply(frame, self._spoil)
        # Taken before the write, so a receiver's stamp of these bytes is never earlier.
        t_s = self._clock_s()
        for link in links:
            link.send(wire)
        self.frames_sent += 1
        if self.keep_send_log:
            self.send_log.append(SentFrame(t_s, weight_g, stable, frame, wire))

    def _spoil(self, frame: bytes) -> bytes:
        if self.protocol == "toledo":
            return toledo_spoil_check(frame)
        if self.protocol == "xk3190":
            return xk3190_spoil_check(frame)
        return mtsics_spoil(frame)

    async def _emit_forever(self) -> None:
        period_s = 1.0 / self.rate_hz
        loop = asyncio.get_running_loop()
        next_t = loop.time()
        while True:
            delay_s = self.faults.take_delay_s()
            if delay_s:
                await asyncio.sleep(delay_s)
                next_t = loop.time()
            frame, weight_g, stable = self._encode_sample()
            self._send(list(self._links), frame, weight_g, stable)
            next_t += period_s
            await asyncio.sleep(max(0.0, next_t - loop.time()))

    async def _stream_lines(self, link: _Link) -> None:
        """A running MT-SICS ``SIR`` on one connection: a weight line every 1/rate_hz."""
        period_s = 1.0 / self.rate_hz
        loop = asyncio.get_running_loop()
        next_t = loop.time() + period_s  # the SIR reply itself was the first line
        while True:
            await asyncio.sleep(max(0.0, next_t - loop.time()))
            delay_s = self.faults.take_delay_s()
            if delay_s:
                await asyncio.sleep(delay_s)
                next_t = loop.time()
            reply = self.balance.stream_line(self._now_s())
            self._send([link], reply.line, reply.weight_g, reply.stable)
            next_t += period_s

    async def _serve_link(self, link: _Link) -> None:
        """Per connection: answer MT-SICS commands, or just notice when the peer goes away."""
        self._links.add(link)
        stream: asyncio.Task[None] | None = None
        try:
            while True:
                if self.protocol != "mt-sics":
                    if not await link.reader.read(4096):
                        return
                    continue
                try:
                    line = await link.reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    return
                except asyncio.LimitOverrunError:
                    await link.reader.read(65536)  # an endless line: drop it, like a real buffer
                    link.send(b"ES\r\n")
                    continue
                command = line.rstrip(b"\r\n")
                if stream is not None and command in _STREAM_CANCELLERS:
                    stream.cancel()
                    stream = None
                delay_s = self.faults.take_delay_s()
                if delay_s:
                    await asyncio.sleep(delay_s)
                reply = self.balance.reply(command, self._now_s())
                self._send([link], reply.line, reply.weight_g, reply.stable)
                if command == b"SIR":
                    stream = self._spawn(self._stream_lines(link), "sir-stream")
        except (ConnectionError, OSError):
            return
        finally:
            if stream is not None:
                stream.cancel()
            self._links.discard(link)
            link.close()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _start_common(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._t0 = self._clock() if self._clock else loop.time()
        if self.protocol != "mt-sics" and not any(t.get_name() == "emitter" for t in self._tasks):
            self._spawn(self._emit_forever(), "emitter")

    # -- transports --------------------------------------------------------------------------
    async def start_tcp(self, port: int = 0) -> str:
        """Listen on 127.0.0.1:port (0 = a free port). Returns the driver's ``socket://`` URL."""
        if self._server is not None:
            raise RuntimeError("already listening")

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve_link(_TcpLink(reader, writer))

        self._server = await asyncio.start_server(on_connect, "127.0.0.1", port)
        self.tcp_port = self._server.sockets[0].getsockname()[1]
        self._start_common()
        return self.tcp_url

    async def start_rfc2217(self, port: int = 0) -> str:
        """Listen on 127.0.0.1:port as an RFC 2217 serial device server. Returns ``rfc2217://`` URL."""
        if self._server is not None:
            raise RuntimeError("already listening")

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve_link(_Rfc2217Link(reader, writer))

        self._server = await asyncio.start_server(on_connect, "127.0.0.1", port)
        self.tcp_port = self._server.sockets[0].getsockname()[1]
        self._start_common()
        return f"rfc2217://127.0.0.1:{self.tcp_port}"

    @property
    def tcp_url(self) -> str:
        if self.tcp_port is None:
            raise RuntimeError("not started on TCP")
        return f"socket://127.0.0.1:{self.tcp_port}"

    async def start_pty(self) -> str:
        """Open a pty pair; returns the slave path for the driver."""
        if self._pty is not None:
            raise RuntimeError("pty already open")
        self._pty = _PtyLink()
        self._start_common()
        self._spawn(self._serve_link(self._pty), "pty")
        return self._pty.path

    @property
    def pty_path(self) -> str:
        if self._pty is None:
            raise RuntimeError("no pty open")
        return self._pty.path

    def _drop_links(self) -> None:
        for link in list(self._links):
            link.close()

    async def stop(self) -> None:
        """Switch the device off: stop listening, close every connection and the pty."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self._drop_links()
        if self._pty is not None:
            self._pty.close()
            self._pty = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> ScaleSimulator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


class ThreadedScaleSimulator:
    """A ``ScaleSimulator`` on its own event loop in a background thread.

    For synchronous code and pytest fixtures whose test runs its own event loop (or none)::

        @pytest.fixture
        def toledo_scale():
            with ThreadedScaleSimulator("toledo", SettableWeight(180.0)) as sim:
                yield sim.start_tcp()

    Everything touching the simulator goes through the loop thread (``call``), so tests never
    race the simulator's own tasks.
    """

    def __init__(
        self, protocol: ProtocolName, source: WeightSource | None = None, **kwargs: Any
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="scale-simulator", daemon=True
        )
        self._thread.start()
        self.simulator: ScaleSimulator = self._run(self._make(protocol, source, kwargs))

    @staticmethod
    async def _make(
        protocol: ProtocolName, source: WeightSource | None, kwargs: dict[str, Any]
    ) -> ScaleSimulator:
        return ScaleSimulator(protocol, source, **kwargs)

    def _run(self, coro: Coroutine[Any, Any, _R]) -> _R:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def start_tcp(self, port: int = 0) -> str:
        return self._run(self.simulator.start_tcp(port))

    def start_rfc2217(self, port: int = 0) -> str:
        return self._run(self.simulator.start_rfc2217(port))

    def start_pty(self) -> str:
        return self._run(self.simulator.start_pty())

    def send_log(self) -> list[SentFrame]:
        """A copy of the simulator's send log, taken on its loop thread."""
        return self.call(lambda: list(self.simulator.send_log))

    def call(self, fn: Callable[..., _R], *args: Any) -> _R:
        """Run ``fn(*args)`` on the simulator's loop thread (e.g. ``sim.call(sim.simulator.faults.disconnect)``)."""

        async def invoke() -> _R:
            return fn(*args)

        return self._run(invoke())

    def stop(self) -> None:
        """Switch the device off; ``start_tcp(same_port)`` switches it on again."""
        self._run(self.simulator.stop())

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> ThreadedScaleSimulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
