"""Scale drivers with an injected fake transport: exact bytes sent, stamps, modes, health, backoff.

The fake replaces only the byte transport (the lowest layer); the reader thread, framing,
parsing, reconnect and health run for real. Time for stamps, freshness, polling and backoff
is a fake clock, so every check here is exact; waits are conditions with deadlines.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

import pytest

from drivers.interfaces import DeviceDisconnected, DeviceTimeout, Scale, WeightReading
from drivers.scales import toledo, xk3190
from drivers.scales.driver import ContinuousScale, MtSicsScale, SerialScale
from drivers.scales.errors import (
    ScaleCommandError,
    ScaleCommandUnsupported,
    ScaleNotReady,
    ScaleRangeError,
)
from simulators.scale_server import toledo_frame, xk3190_frame

T = TypeVar("T")
LOGGER = "drivers.scales.driver"
SIR = b"SIR\r\n"
SI = b"SI\r\n"


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(10):
            return await coro

    return asyncio.run(bounded())


class FakeClock:
    """A clock the test moves; ``calls`` shows that the reader thread has looked at it."""

    def __init__(self) -> None:
        self.t_s = 1000.0
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.t_s


class FakeTransport:
    """Bytes in, bytes out; ``replies`` maps a request to the bytes the device answers."""

    def __init__(self, replies: dict[bytes, bytes] | None = None) -> None:
        self.replies = replies or {}
        self.written: list[bytes] = []
        self.discards = 0
        self.reads = 0
        self.closed = 0
        self.broken = False
        self._incoming = bytearray()
        self._cond = threading.Condition()

    def push(self, data: bytes) -> None:
        with self._cond:
            self._incoming += data
            self._cond.notify_all()

    def read(self, max_bytes: int) -> bytes:
        self.reads += 1
        with self._cond:
            if self.broken:
                raise DeviceDisconnected("fake", "cable pulled")
            self._cond.wait_for(lambda: bool(self._incoming) or self.broken, timeout=0.01)
            data = bytes(self._incoming[:max_bytes])
            del self._incoming[:max_bytes]
            return data

    def write(self, data: bytes) -> None:
        if self.broken:
            raise DeviceDisconnected("fake", "cable pulled")
        with self._cond:
            self.written.append(data)
        if data in self.replies:
            self.push(self.replies[data])

    def count(self, request: bytes) -> int:
        with self._cond:
            return self.written.count(request)

    def discard_input(self) -> None:
        self.discards += 1
        with self._cond:
            self._incoming.clear()

    def close(self) -> None:
        self.closed += 1


class Opener:
    """Counts connection attempts; fails while ``down``."""

    def __init__(self, transport: FakeTransport) -> None:
        self.transport = transport
        self.calls = 0
        self.down = False

    def __call__(self) -> FakeTransport:
        self.calls += 1
        if self.down:
            raise DeviceDisconnected("lane-1", "connection refused")
        return self.transport


def toledo_scale(
    transport: FakeTransport, clock: FakeClock, **options: Any
) -> tuple[ContinuousScale, Opener]:
    opener = Opener(transport)
    options.setdefault("timeout_s", 0.3)
    scale = ContinuousScale(
        "lane-1", opener, partial(toledo.framer, "lane-1"), clock=clock, **options
    )
    return scale, opener


def mtsics_scale(
    transport: FakeTransport, clock: FakeClock, **options: Any
) -> tuple[MtSicsScale, Opener]:
    opener = Opener(transport)
    options.setdefault("timeout_s", 0.2)
    return MtSicsScale("lane-1", opener, clock=clock, **options), opener


async def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


async def readings(scale: SerialScale, n: int) -> list[WeightReading]:
    """Take readings until ``n`` have arrived (no more, no fewer)."""
    out: list[WeightReading] = []
    await wait_for(lambda: bool(out.extend(scale.take_readings())) or len(out) >= n)
    assert len(out) == n, out
    return out


async def thread_looked(clock: FakeClock, times: int = 5) -> None:
    """Wait until the reader thread has looked at the clock a few more times."""
    seen = clock.calls
    await wait_for(lambda: clock.calls >= seen + times)


def line(status: bytes, value: bytes) -> bytes:
    return b"S " + status + b" " + value.rjust(10) + b" g\r\n"


# -- construction and the thread ------------------------------------------------------------


def test_construction_does_no_io_and_starts_no_thread() -> None:
    transport = FakeTransport()
    scale, opener = mtsics_scale(transport, FakeClock())
    stream, _ = toledo_scale(transport, FakeClock())
    assert opener.calls == 0 and transport.written == []
    assert isinstance(scale, Scale) and isinstance(stream, Scale)
    assert scale.health.state == "unknown" and not scale.health.connected
    assert not scale.is_up() and scale.take_readings() == []
    assert not any(t.name.startswith("gradeline-scale") for t in threading.enumerate())


def test_open_starts_one_named_reader_thread_and_close_joins_it() -> None:
    transport = FakeTransport()
    scale, _ = toledo_scale(transport, FakeClock())

    async def scenario() -> None:
        await scale.open()
        await scale.open()  # idempotent
        names = [t.name for t in threading.enumerate() if t.name.startswith("gradeline-scale")]
        assert names == ["gradeline-scale-lane-1"]
        await scale.close()
        assert not any(t.name.startswith("gradeline-scale") for t in threading.enumerate())
        with pytest.raises(DeviceDisconnected, match="not open"):
            await scale.read_weight()

    run(scenario())
    assert transport.closed == 1


# -- continuous output -----------------------------------------------------------------------


def test_continuous_readings_are_stamped_in_the_thread_and_drained_in_order() -> None:
    clock = FakeClock()
    transport = FakeTransport()
    scale, _ = toledo_scale(transport, clock)

    async def scenario() -> None:
        await scale.open()
        assert scale.take_readings() == []  # nothing yet, and it does not wait
        transport.push(toledo_frame(181.0, stable=False) + toledo_frame(182.0))
        first = await readings(scale, 2)
        # two frames in one read: the thread was behind, so the first one's stamp is only an
        # upper bound of its arrival; the last arrived within a frame period of it
        assert first == [
            WeightReading(181.0, False, 1000.0, backlogged=True),
            WeightReading(182.0, True, 1000.0),
        ]
        assert scale.take_readings() == []  # drained
        clock.t_s = 1000.25
        transport.push(toledo_frame(183.0))
        assert await readings(scale, 1) == [WeightReading(183.0, True, 1000.25)]
        assert scale.is_up()
        assert await scale.read_weight() == WeightReading(183.0, True, 1000.25)
        clock.t_s = 1000.56  # 0.31 s after the last reading: not fresh any more
        assert not scale.is_up()
        with pytest.raises(DeviceTimeout):
            await scale.read_weight()
        await scale.close()

    run(scenario())
    assert scale.health.valid_count == 3


def test_continuous_corrupt_frame_is_counted_and_its_neighbours_kept() -> None:
    transport = FakeTransport()
    scale, _ = toledo_scale(transport, FakeClock())

    async def scenario() -> None:
        await scale.open()
        bad = toledo_frame(200.0)[:-1] + b"\x00"  # bad checksum
        transport.push(toledo_frame(199.0) + bad + b"\xff\x02junk" + toledo_frame(201.0))
        got = await readings(scale, 2)
        assert [r.weight_g for r in got] == [199.0, 201.0]
        await wait_for(lambda: scale.health.corrupt_frame_count >= 1)
        health = scale.health
        assert health.state == "up" and health.errors == health.corrupt_frame_count
        await scale.close()

    run(scenario())


def test_continuous_over_range_frame_is_no_reading_but_a_range_error() -> None:
    transport = FakeTransport()
    scale, _ = toledo_scale(transport, FakeClock())

    async def scenario() -> None:
        await scale.open()
        transport.push(toledo_frame(150.0) + toledo_frame(5_000_000.0))  # 5000 kg: over range
        await wait_for(lambda: scale.health.range_error_count == 1)
        assert [r.weight_g for r in scale.take_readings()] == [150.0]
        with pytest.raises(ScaleRangeError):
            await scale.read_weight()  # the newest answer says over range
        transport.push(toledo_frame(151.0))
        await readings(scale, 1)
        assert (await scale.read_weight()).weight_g == 151.0
        await scale.close()

    run(scenario())


def test_xk3190_stability_comes_from_consecutive_equal_frames() -> None:
    transport = FakeTransport()
    scale = ContinuousScale(
        "lane-1",
        Opener(transport),
        partial(xk3190.framer, "lane-1", "kg"),
        timeout_s=0.3,
        clock=FakeClock(),
        stable_frames=3,
    )

    async def scenario() -> list[tuple[float, bool]]:
        await scale.open()
        transport.push(b"".join(xk3190_frame(w) for w in (150.0, 151.0, 151.0, 151.0, 152.0)))
        got = await readings(scale, 5)
        await scale.close()
        return [(r.weight_g, r.stable) for r in got]

    assert run(scenario()) == [
        (150.0, False),
        (151.0, False),
        (151.0, False),
        (151.0, True),
        (152.0, False),
    ]


def test_buffer_is_bounded_and_drops_are_counted() -> None:
    transport = FakeTransport()
    scale, _ = toledo_scale(transport, FakeClock(), buffer_size=3)

    async def scenario() -> None:
        await scale.open()
        transport.push(b"".join(toledo_frame(w) for w in (100.0, 101.0, 102.0, 103.0, 104.0)))
        await wait_for(lambda: scale.health.valid_count == 5)
        assert [r.weight_g for r in scale.take_readings()] == [102.0, 103.0, 104.0]
        assert scale.health.dropped_readings == 2
        await scale.close()

    run(scenario())


def test_silent_stream_goes_stale_without_anyone_asking(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    transport = FakeTransport()
    scale, _ = toledo_scale(transport, clock)
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def scenario() -> None:
        await scale.open()
        transport.push(toledo_frame(120.0))
        await wait_for(lambda: scale.health.state == "up")
        clock.t_s += 0.29  # the line goes quiet, but the last reading is still fresh
        polled = transport.reads
        await wait_for(lambda: transport.reads >= polled + 3)  # the reader has looked 3 times
        assert scale.health.state == "up"
        clock.t_s += 0.02  # 0.31 s > timeout_s: the thread's own check marks it down
        await wait_for(lambda: scale.health.state == "down")
        assert scale.health.last_good_t_s == 1000.0 and scale.health.faults == 1
        polled = transport.reads
        await wait_for(lambda: transport.reads >= polled + 3)
        assert scale.health.errors == 1  # one fault, logged and counted once, not per read
        transport.push(toledo_frame(121.0))
        await wait_for(lambda: scale.health.state == "up")
        await scale.close()

    run(scenario())
    records = [r for r in caplog.records if r.name == LOGGER]
    assert [r.levelname for r in records] == ["WARNING", "INFO"]
    assert "no valid reading" in records[0].getMessage()
    assert "recovered" in records[1].getMessage()


def test_reconnect_follows_the_backoff_on_the_clock(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    transport = FakeTransport()
    # Binary fractions, so sums of clock steps equal the backoff's deadlines exactly.
    scale, opener = toledo_scale(transport, clock, reconnect_initial_s=0.125)
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def scenario() -> None:
        await scale.open()
        transport.push(toledo_frame(100.0))
        await wait_for(lambda: scale.health.state == "up")
        opener.down = transport.broken = True  # cable pulled: the read fails, the port drops
        await wait_for(lambda: not scale.health.connected)
        await thread_looked(clock)
        assert opener.calls == 1  # no attempt inside the first 0.125 s
        clock.t_s += 0.125
        await wait_for(lambda: opener.calls == 2)  # refused: the next wait is 0.25 s
        clock.t_s += 0.125
        await thread_looked(clock)
        assert opener.calls == 2
        clock.t_s += 0.125
        await wait_for(lambda: opener.calls == 3)  # refused again: 0.5 s now
        opener.down = transport.broken = False
        clock.t_s += 0.25
        await thread_looked(clock)
        assert opener.calls == 3
        clock.t_s += 0.25
        await wait_for(lambda: scale.health.connected)
        assert opener.calls == 4 and scale.health.state == "down"  # up needs a reading
        transport.push(toledo_frame(101.0))
        await wait_for(lambda: scale.health.state == "up")
        assert [r.weight_g for r in scale.take_readings()] == [100.0, 101.0]
        assert transport.closed == 1  # the dropped connection was closed by the thread
        await scale.close()

    run(scenario())
    levels = [r.levelname for r in caplog.records if r.name == LOGGER]
    assert levels == ["WARNING", "INFO"]


def test_a_crashed_reader_is_reported_not_silently_stale(caplog: pytest.LogCaptureFixture) -> None:
    transport = FakeTransport()
    calls = 0

    def opener() -> FakeTransport:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ValueError("invalid URL")  # not a device fault: a bug or bad config
        return transport

    scale = ContinuousScale(
        "lane-1", opener, partial(toledo.framer, "lane-1"), timeout_s=0.3, reconnect_initial_s=0.01
    )

    async def scenario() -> None:
        await scale.open()
        transport.broken = True  # forces a reconnect, which raises ValueError
        await wait_for(lambda: "reader stopped" in str(scale.health.last_error))
        with pytest.raises(DeviceDisconnected, match="reader stopped") as caught:
            await scale.read_weight()
        assert isinstance(caught.value.__cause__, ValueError)
        assert not scale.is_up() and scale.health.state == "down"
        await scale.close()

    run(scenario())
    assert any("reader stopped" in r.getMessage() for r in caplog.records)


def test_a_bad_url_fails_open() -> None:
    def opener() -> FakeTransport:
        raise ValueError("not a pyserial URL")

    scale = ContinuousScale("lane-1", opener, partial(toledo.framer, "lane-1"), timeout_s=0.3)
    with pytest.raises(ValueError, match="pyserial"):
        run(scale.open())


def test_a_hanging_connect_holds_neither_open_nor_the_loop() -> None:
    transport = FakeTransport()
    gateway_answers = threading.Event()

    def opener() -> FakeTransport:
        gateway_answers.wait(5)  # an unreachable gateway holds the TCP connect
        return transport

    scale = ContinuousScale(
        "lane-1", opener, partial(toledo.framer, "lane-1"), timeout_s=0.3, clock=FakeClock()
    )

    async def scenario() -> None:
        await scale.open()  # returns after at most max(1 s, timeout_s)
        assert scale.take_readings() == [] and not scale.is_up()
        with pytest.raises(DeviceDisconnected, match="port down"):
            await scale.read_weight()
        gateway_answers.set()
        transport.push(toledo_frame(100.0))
        assert [r.weight_g for r in await readings(scale, 1)] == [100.0]
        await scale.close()

    run(scenario())


def test_continuous_commands_are_unsupported() -> None:
    scale, _ = toledo_scale(FakeTransport(), FakeClock())
    with pytest.raises(ScaleCommandUnsupported):
        run(scale.zero())


# -- MT-SICS, stream mode --------------------------------------------------------------------


def test_stream_mode_sends_sir_and_stamps_each_line() -> None:
    clock = FakeClock()
    transport = FakeTransport()
    scale, _ = mtsics_scale(transport, clock)
    assert scale.mode == "stream"  # the default

    async def scenario() -> None:
        await scale.open()
        await wait_for(lambda: transport.written == [SIR])
        assert transport.discards == 1  # stale bytes from before the connection are dropped
        transport.push(line(b"D", b"90.20"))
        first = await readings(scale, 1)
        clock.t_s = 1000.05
        transport.push(line(b"S", b"182.40") + line(b"S", b"182.40")[:9])  # 2nd line cut
        second = await readings(scale, 1)
        clock.t_s = 1000.10
        transport.push(line(b"S", b"182.40")[9:])  # its last bytes arrive now: stamped now
        third = await readings(scale, 1)
        assert first + second + third == [
            WeightReading(pytest.approx(90.2), False, 1000.0),  # type: ignore[arg-type]
            WeightReading(pytest.approx(182.4), True, 1000.05),  # type: ignore[arg-type]
            WeightReading(pytest.approx(182.4), True, 1000.10),  # type: ignore[arg-type]
        ]
        assert transport.written == [SIR]  # no request per reading
        await scale.close()

    run(scenario())


def test_stream_status_lines_are_counted_never_returned() -> None:
    transport = FakeTransport()
    scale, _ = mtsics_scale(transport, FakeClock())

    async def scenario() -> None:
        await scale.open()
        transport.push(
            line(b"S", b"100.00")
            + b"S +\r\nS -\r\nS I\r\nS S     18?.40 g\r\nES\r\n"
            + line(b"S", b"101.00")
        )
        assert [r.weight_g for r in await readings(scale, 2)] == [100.0, 101.0]
        await wait_for(lambda: scale.health.errors == 5)
        health = scale.health
        assert (health.range_error_count, health.corrupt_frame_count) == (2, 1)
        assert health.state == "up" and "ES" in str(health.last_error)
        transport.push(b"S +\r\n")
        await wait_for(lambda: scale.health.range_error_count == 3)
        with pytest.raises(ScaleRangeError):
            await scale.read_weight()
        transport.push(b"S I\r\n")
        await wait_for(lambda: scale.health.errors == 7)
        with pytest.raises(ScaleNotReady):
            await scale.read_weight()
        await scale.close()

    run(scenario())


def test_stream_zero_and_tare_replies_are_picked_out_by_prefix() -> None:
    clock = FakeClock()
    transport = FakeTransport(
        {
            # Each reply arrives between stream lines, as from a balance that keeps streaming.
            b"Z\r\n": line(b"D", b"40.10") + b"Z A\r\n" + line(b"S", b"0.00"),
            b"T\r\n": line(b"S", b"12.40") + b"T S      12.40 g\r\n" + line(b"S", b"0.00"),
            b"TAC\r\n": b"TAC A\r\n",
        }
    )
    scale, _ = mtsics_scale(transport, clock)

    async def scenario() -> float:
        await scale.open()
        transport.push(line(b"S", b"40.00"))
        await readings(scale, 1)
        await scale.zero()
        tare_g = await scale.tare()
        await scale.clear_tare()
        got = await readings(scale, 4)
        assert [(r.weight_g, r.stable) for r in got] == [
            (pytest.approx(40.1), False),
            (0.0, True),
            (pytest.approx(12.4), True),
            (0.0, True),
        ]
        await wait_for(lambda: transport.count(SIR) == 4)  # re-armed after the last reply too
        await scale.close()
        return tare_g

    assert run(scenario()) == pytest.approx(12.4)
    # SIR again after every reply: for balances that stop streaming on any command.
    assert transport.written == [SIR, b"Z\r\n", SIR, b"T\r\n", SIR, b"TAC\r\n", SIR]


def test_read_weight_after_a_tare_returns_no_weight_from_before_it() -> None:
    clock = FakeClock()
    transport = FakeTransport({b"T\r\n": b"T S      12.40 g\r\n"})
    scale, _ = mtsics_scale(transport, clock)

    async def scenario() -> None:
        await scale.open()
        transport.push(line(b"S", b"52.40"))
        await readings(scale, 1)
        assert (await scale.read_weight()).weight_g == pytest.approx(52.4)
        await scale.tare()
        with pytest.raises(DeviceTimeout):
            await scale.read_weight()  # 52.40 g was gross: not what the caller now expects
        clock.t_s += 0.01
        transport.push(line(b"S", b"40.00"))
        await readings(scale, 1)
        assert (await scale.read_weight()).weight_g == pytest.approx(40.0)
        await scale.close()

    run(scenario())


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"Z I\r\n", ScaleNotReady),
        (b"Z +\r\n", ScaleRangeError),
        (b"ES\r\n", ScaleCommandError),
    ],
)
def test_command_failures_are_typed(reply: bytes, error: type[Exception]) -> None:
    transport = FakeTransport({b"Z\r\n": reply})
    scale, _ = mtsics_scale(transport, FakeClock())

    async def scenario() -> None:
        await scale.open()
        await wait_for(lambda: scale.health.connected)
        with pytest.raises(error):
            await scale.zero()
        await scale.close()

    run(scenario())


def test_a_command_without_reply_times_out_and_a_late_reply_is_no_weight() -> None:
    transport = FakeTransport()
    scale, _ = mtsics_scale(transport, FakeClock(), command_timeout_s=0.05)

    async def scenario() -> None:
        await scale.open()
        await wait_for(lambda: scale.health.connected)
        with pytest.raises(DeviceTimeout, match="no reply"):
            await scale.zero()
        transport.push(b"Z A\r\n" + line(b"S", b"0.00"))  # the late reply, then the stream
        assert [r.weight_g for r in await readings(scale, 1)] == [0.0]
        assert "late reply" in str(scale.health.last_error)
        assert scale.health.corrupt_frame_count == 0
        await scale.close()

    run(scenario())


def test_commands_fail_fast_while_the_port_is_down() -> None:
    transport = FakeTransport()
    scale, opener = mtsics_scale(transport, FakeClock())
    opener.down = True

    async def scenario() -> None:
        await scale.open()
        with pytest.raises(DeviceDisconnected):
            await scale.tare()
        await scale.close()

    run(scenario())
    assert transport.written == []


def test_stream_mode_sends_sir_again_after_a_reconnect_and_after_silence() -> None:
    clock = FakeClock()
    transport = FakeTransport()
    scale, opener = mtsics_scale(transport, clock, reconnect_initial_s=0.01)

    async def scenario() -> None:
        await scale.open()
        await wait_for(lambda: transport.written == [SIR])
        transport.push(line(b"S", b"100.00"))
        await readings(scale, 1)
        transport.broken = True
        await wait_for(lambda: not scale.health.connected)
        transport.broken = False
        clock.t_s += 0.01
        await wait_for(lambda: transport.count(SIR) == 2 and opener.calls == 2)
        # Connected but silent for longer than timeout_s (a balance restarted behind its
        # gateway forgets SIR): ask again, once per timeout_s.
        clock.t_s += 0.21
        await wait_for(lambda: transport.count(SIR) == 3)
        await thread_looked(clock)
        assert transport.count(SIR) == 3
        clock.t_s += 0.21
        await wait_for(lambda: transport.count(SIR) == 4)
        await scale.close()

    run(scenario())


# -- MT-SICS, poll mode ----------------------------------------------------------------------


def test_poll_mode_sends_si_once_per_interval_on_the_clock() -> None:
    clock = FakeClock()
    transport = FakeTransport({SI: line(b"S", b"182.40")})
    # 1/64 s: a binary fraction, so the clock steps below add up to the schedule exactly.
    scale, _ = mtsics_scale(transport, clock, mode="poll", poll_interval_s=0.015625)

    async def scenario() -> None:
        await scale.open()
        first = await readings(scale, 1)
        await thread_looked(clock)
        assert transport.count(SI) == 1  # the clock has not moved: no second poll
        clock.t_s += 0.0078125
        await thread_looked(clock)
        assert transport.count(SI) == 1  # half an interval
        clock.t_s += 0.0078125  # one interval after the first SI
        second = await readings(scale, 1)
        await thread_looked(clock)
        assert transport.count(SI) == 2
        transport.replies[SI] = line(b"D", b"190.02")
        clock.t_s += 0.015625
        third = await readings(scale, 1)
        assert [(r.weight_g, r.stable, r.t_s) for r in first + second + third] == [
            (pytest.approx(182.4), True, 1000.0),
            (pytest.approx(182.4), True, 1000.015625),
            (pytest.approx(190.02), False, 1000.03125),
        ]
        await scale.close()

    run(scenario())
    assert set(transport.written) == {SI}
    assert transport.discards == transport.count(SI)  # stale input dropped before each SI


@pytest.mark.parametrize(
    ("reply", "field"),
    [
        (b"S I\r\n", None),
        (b"S +\r\n", "range_error_count"),
        (b"S -\r\n", "range_error_count"),
        (b"EL\r\n", None),
        (b"S S     18?.40 g\r\n", "corrupt_frame_count"),
        (b"S S     182.40 kilo\r\n", "corrupt_frame_count"),
    ],
)
def test_poll_replies_without_a_weight_are_counted(reply: bytes, field: str | None) -> None:
    clock = FakeClock()
    transport = FakeTransport({SI: reply})
    scale, _ = mtsics_scale(transport, clock, mode="poll")

    async def scenario() -> None:
        await scale.open()
        await wait_for(lambda: scale.health.errors == 1)
        assert scale.take_readings() == []
        if field is not None:
            assert getattr(scale.health, field) == 1
        await scale.close()

    run(scenario())


def test_poll_without_reply_is_counted_and_the_fault_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    transport = FakeTransport()  # answers nothing
    scale, _ = mtsics_scale(transport, clock, mode="poll", timeout_s=0.05)
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def scenario() -> None:
        await scale.open()
        for polls in (1, 2, 3):
            await wait_for(lambda n=polls: scale.health.errors >= n)  # type: ignore[misc]
            clock.t_s += 0.03
        await wait_for(lambda: scale.health.state == "down")
        transport.replies[SI] = line(b"S", b"100.00")
        clock.t_s += 0.03
        await wait_for(lambda: scale.health.state == "up")
        await scale.close()

    run(scenario())
    records = [r for r in caplog.records if r.name == LOGGER]
    assert [r.levelname for r in records] == ["WARNING", "INFO"]
    assert "no valid reading" in records[0].getMessage()
    assert scale.health.valid_count == 1  # the clock stopped after the last step: one more SI


def test_poll_mode_zero_tare_and_clear_tare_go_between_polls() -> None:
    clock = FakeClock()
    transport = FakeTransport(
        {
            SI: line(b"S", b"40.00"),
            b"Z\r\n": b"Z A\r\n",
            b"T\r\n": b"T S      12.40 g\r\n",
            b"TAC\r\n": b"TAC A\r\n",
        }
    )
    scale, _ = mtsics_scale(transport, clock, mode="poll")

    async def scenario() -> float:
        await scale.open()
        await readings(scale, 1)
        await scale.zero()
        tare_g = await scale.tare()
        await scale.clear_tare()
        await scale.close()
        return tare_g

    assert run(scenario()) == pytest.approx(12.4)
    assert transport.written == [SI, b"Z\r\n", b"T\r\n", b"TAC\r\n"]  # no SIR in poll mode


def test_invalid_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        MtSicsScale("lane-1", Opener(FakeTransport()), timeout_s=0.2, mode="push")  # type: ignore[arg-type]
