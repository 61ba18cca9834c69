"""Scale drivers with an injected fake transport: exact bytes sent, freshness, health, backoff.

The fake replaces only the byte transport (the lowest layer); parsing, the port thread,
reconnect and health run for real. Time for freshness and backoff is a fake clock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

import pytest

from drivers.interfaces import CorruptFrame, DeviceDisconnected, DeviceTimeout, Scale
from drivers.scales import toledo, xk3190
from drivers.scales.driver import ContinuousScale, MtSicsScale
from drivers.scales.errors import (
    ScaleCommandError,
    ScaleCommandUnsupported,
    ScaleNotReady,
    ScaleRangeError,
)
from simulators.scale_server import toledo_frame, xk3190_frame

T = TypeVar("T")
LOGGER = "drivers.scales.driver"


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(10):
            return await coro

    return asyncio.run(bounded())


class FakeClock:
    def __init__(self) -> None:
        self.t_s = 1000.0

    def __call__(self) -> float:
        return self.t_s


class FakeTransport:
    """Bytes in, bytes out; ``replies`` maps a request to the bytes the device answers."""

    def __init__(self, replies: dict[bytes, bytes] | None = None) -> None:
        self.replies = replies or {}
        self.written: list[bytes] = []
        self.discards = 0
        self.reads = 0
        self.closed = False
        self.broken = False
        self._incoming = bytearray()
        self._cond = threading.Condition()

    def push(self, data: bytes) -> None:
        with self._cond:
            self._incoming += data
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._incoming)

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
        self.written.append(data)
        if data in self.replies:
            self.push(self.replies[data])

    def discard_input(self) -> None:
        self.discards += 1
        with self._cond:
            self._incoming.clear()

    def close(self) -> None:
        self.closed = True


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


def mtsics_scale(
    transport: FakeTransport, clock: FakeClock, timeout_s: float = 0.2
) -> tuple[MtSicsScale, Opener]:
    opener = Opener(transport)
    return MtSicsScale("lane-1", opener, timeout_s=timeout_s, clock=clock), opener


async def wait_for(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


# -- MT-SICS -----------------------------------------------------------------------------


def test_construction_does_no_io() -> None:
    transport = FakeTransport()
    scale, opener = mtsics_scale(transport, FakeClock())
    stream = ContinuousScale("lane-2", opener, partial(toledo.framer, "lane-2"), timeout_s=0.3)
    assert opener.calls == 0 and transport.written == []
    assert isinstance(scale, Scale) and isinstance(stream, Scale)
    assert scale.health.state == "stale" and not scale.health.connected


def test_read_weight_sends_exactly_si_and_parses_the_answer() -> None:
    clock = FakeClock()
    transport = FakeTransport({b"SI\r\n": b"S S     182.40 g\r\n"})
    scale, opener = mtsics_scale(transport, clock)

    async def scenario() -> None:
        await scale.open()
        reading = await scale.read_weight()
        assert (reading.weight_g, reading.stable, reading.t_s) == (
            pytest.approx(182.4),
            True,
            1000.0,
        )
        transport.replies[b"SI\r\n"] = b"S D     190.02 g\r\n"
        reading = await scale.read_weight()
        assert (reading.weight_g, reading.stable) == (pytest.approx(190.02), False)
        await scale.close()

    run(scenario())
    assert transport.written == [b"SI\r\n", b"SI\r\n"]
    assert transport.discards == 2  # stale input dropped before each command
    assert transport.closed and opener.calls == 1
    assert scale.health.state == "up" and scale.health.error_count == 0


def test_zero_tare_and_clear_tare_send_exact_commands() -> None:
    transport = FakeTransport(
        {b"Z\r\n": b"Z A\r\n", b"T\r\n": b"T S      12.40 g\r\n", b"TAC\r\n": b"TAC A\r\n"}
    )
    scale, _ = mtsics_scale(transport, FakeClock())

    async def scenario() -> float:
        await scale.open()
        await scale.zero()
        tare_g = await scale.tare()
        await scale.clear_tare()
        await scale.close()
        return tare_g

    assert run(scenario()) == pytest.approx(12.4)
    assert transport.written == [b"Z\r\n", b"T\r\n", b"TAC\r\n"]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"S I\r\n", ScaleNotReady),
        (b"S +\r\n", ScaleRangeError),
        (b"S -\r\n", ScaleRangeError),
        (b"ES\r\n", ScaleCommandError),
        (b"EL\r\n", ScaleCommandError),
        (b"S S     18?.40 g\r\n", CorruptFrame),
    ],
)
def test_status_and_corrupt_replies_raise_typed_errors(
    reply: bytes, error: type[Exception]
) -> None:
    transport = FakeTransport({b"SI\r\n": reply})
    scale, _ = mtsics_scale(transport, FakeClock())

    async def scenario() -> None:
        await scale.open()
        try:
            with pytest.raises(error):
                await scale.read_weight()
        finally:
            await scale.close()

    run(scenario())
    assert scale.health.error_count == 1


def test_no_reply_is_a_timeout_and_the_fault_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = FakeTransport()  # answers nothing
    scale, _ = mtsics_scale(transport, FakeClock(), timeout_s=0.05)
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def scenario() -> None:
        await scale.open()
        for _ in range(4):
            with pytest.raises(DeviceTimeout):
                await scale.read_weight()
        transport.replies[b"SI\r\n"] = b"S S     100.00 g\r\n"
        await scale.read_weight()
        await scale.read_weight()
        await scale.close()

    run(scenario())
    records = [r for r in caplog.records if r.name == LOGGER]
    assert [r.levelname for r in records] == ["WARNING", "INFO"]
    assert "fault" in records[0].getMessage() and "cleared" in records[1].getMessage()
    assert scale.health.error_count == 4 and scale.health.state == "up"


def test_disconnect_then_reconnect_respects_the_backoff_on_the_clock() -> None:
    clock = FakeClock()
    transport = FakeTransport({b"SI\r\n": b"S S     100.00 g\r\n"})
    scale, opener = mtsics_scale(transport, clock)

    async def scenario() -> None:
        await scale.open()
        await scale.read_weight()
        transport.broken = True
        opener.down = True
        with pytest.raises(DeviceDisconnected):
            await scale.read_weight()  # the write fails; the port is dropped
        assert not scale.health.connected and scale.health.state == "stale"
        with pytest.raises(DeviceDisconnected):
            await scale.read_weight()  # first reconnect attempt: refused
        assert opener.calls == 2
        with pytest.raises(DeviceDisconnected):
            await scale.read_weight()  # inside the 0.1 s backoff: no attempt at all
        assert opener.calls == 2
        clock.t_s += 0.15
        with pytest.raises(DeviceDisconnected):
            await scale.read_weight()  # attempt 2: refused, backoff doubles to 0.2 s
        assert opener.calls == 3
        transport.broken = opener.down = False
        clock.t_s += 0.15
        with pytest.raises(DeviceDisconnected):
            await scale.read_weight()  # still inside the doubled backoff
        assert opener.calls == 3
        clock.t_s += 0.1
        assert (await scale.read_weight()).weight_g == pytest.approx(100.0)
        assert opener.calls == 4 and scale.health.state == "up"
        await scale.close()

    run(scenario())


def test_continuous_commands_are_unsupported() -> None:
    scale = ContinuousScale(
        "lane-1", Opener(FakeTransport()), partial(toledo.framer, "lane-1"), timeout_s=0.3
    )
    with pytest.raises(ScaleCommandUnsupported):
        run(scale.zero())


# -- continuous output -----------------------------------------------------------------------


def test_continuous_keeps_the_latest_valid_frame_with_its_receive_time() -> None:
    clock = FakeClock()
    transport = FakeTransport()
    scale = ContinuousScale(
        "lane-1", Opener(transport), partial(toledo.framer, "lane-1"), timeout_s=0.3, clock=clock
    )

    async def scenario() -> None:
        await scale.open()
        with pytest.raises(DeviceTimeout):
            await scale.read_weight()  # nothing received yet
        transport.push(toledo_frame(181.0, stable=False) + toledo_frame(182.0))
        await wait_for(lambda: scale.health.valid_count == 2)
        reading = await scale.read_weight()
        assert (reading.weight_g, reading.stable, reading.t_s) == (182.0, True, 1000.0)

        clock.t_s += 0.2
        transport.push(toledo_frame(183.0)[:-1] + b"\x00")  # bad checksum: rejected
        await wait_for(lambda: scale.health.corrupt_frame_count == 1)
        assert (await scale.read_weight()).weight_g == 182.0  # still fresh: 0.2 s < 0.3 s

        clock.t_s += 0.2  # 0.4 s since the last VALID frame
        with pytest.raises(DeviceTimeout):
            await scale.read_weight()
        assert scale.health.state == "stale"
        await scale.close()

    run(scenario())
    assert transport.closed


def test_continuous_over_range_frame_raises_a_range_error() -> None:
    transport = FakeTransport()
    scale = ContinuousScale(
        "lane-1",
        Opener(transport),
        partial(toledo.framer, "lane-1"),
        timeout_s=0.3,
        clock=FakeClock(),
    )

    async def scenario() -> None:
        await scale.open()
        transport.push(toledo_frame(5_000_000.0))  # 5000 kg with 3 decimals: over range
        await wait_for(lambda: scale.health.error_count >= 1)
        with pytest.raises(ScaleRangeError):
            await scale.read_weight()
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

    async def feed(frame: bytes) -> tuple[float, bool]:
        before = scale.health.valid_count
        transport.push(frame)
        await wait_for(lambda: scale.health.valid_count == before + 1)
        reading = await scale.read_weight()
        return reading.weight_g, reading.stable

    async def scenario() -> list[tuple[float, bool]]:
        await scale.open()
        out = [await feed(xk3190_frame(w)) for w in (150.0, 151.0, 151.0, 151.0, 152.0)]
        await scale.close()
        return out

    assert run(scenario()) == [
        (150.0, False),
        (151.0, False),
        (151.0, False),
        (151.0, True),
        (152.0, False),
    ]


def test_continuous_reader_reconnects_after_the_port_drops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = FakeTransport()
    opener = Opener(transport)
    scale = ContinuousScale(
        "lane-1", opener, partial(toledo.framer, "lane-1"), timeout_s=0.3, reconnect_initial_s=0.01
    )
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def scenario() -> None:
        await scale.open()
        transport.push(toledo_frame(100.0))
        await wait_for(lambda: scale.health.state == "up")
        opener.down = True
        transport.broken = True
        await wait_for(lambda: opener.calls >= 4)  # backing off and retrying
        assert scale.health.state == "stale" and not scale.health.connected
        transport.broken = opener.down = False
        transport.push(toledo_frame(101.0))
        await wait_for(lambda: scale.health.state == "up")
        assert (await scale.read_weight()).weight_g == 101.0
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

    scale = ContinuousScale("lane-1", opener, partial(toledo.framer, "lane-1"), timeout_s=0.3)

    async def scenario() -> None:
        await scale.open()
        transport.broken = True  # forces a reconnect, which raises ValueError
        exc = None
        async with asyncio.timeout(5):
            while exc is None or "reader stopped" not in str(exc):
                try:
                    await scale.read_weight()
                except DeviceDisconnected as caught:
                    exc = caught
                except DeviceTimeout:
                    pass
                await asyncio.sleep(0.01)
        assert isinstance(exc.__cause__, ValueError)
        await scale.close()

    run(scenario())
    assert any("reader stopped" in r.getMessage() for r in caplog.records)


def test_a_silent_stream_goes_stale_without_anyone_polling(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    transport = FakeTransport()
    scale = ContinuousScale(
        "lane-1", Opener(transport), partial(toledo.framer, "lane-1"), timeout_s=0.3, clock=clock
    )
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def scenario() -> None:
        await scale.open()
        transport.push(toledo_frame(120.0))
        await wait_for(lambda: scale.health.state == "up")
        clock.t_s += 0.29  # the line goes quiet, but the last frame is still fresh
        polled = transport.reads
        await wait_for(lambda: transport.reads >= polled + 3)  # the reader has looked 3 times
        assert scale.health.state == "up"
        clock.t_s += 0.02  # 0.31 s > timeout_s: the reader's own check marks it stale
        await wait_for(lambda: scale.health.state == "stale")
        assert scale.health.last_good_t_s == 1000.0
        transport.push(toledo_frame(121.0))
        await wait_for(lambda: scale.health.state == "up")
        await scale.close()

    run(scenario())
    records = [r for r in caplog.records if r.name == LOGGER]
    assert [r.levelname for r in records] == ["WARNING", "INFO"]
    assert "no valid frame" in records[0].getMessage()


def test_a_hanging_reconnect_does_not_hang_reads() -> None:
    transport = FakeTransport({b"SI\r\n": b"S S     100.00 g\r\n"})
    gateway_answers = threading.Event()
    gateway_answers.set()
    calls = 0

    def opener() -> FakeTransport:
        nonlocal calls
        calls += 1
        gateway_answers.wait(5)  # an unreachable gateway holds the TCP connect
        return transport

    scale = MtSicsScale("lane-1", opener, timeout_s=0.05, clock=FakeClock())

    async def scenario() -> None:
        await scale.open()
        await scale.read_weight()
        transport.broken = True
        gateway_answers.clear()
        with pytest.raises(DeviceDisconnected):
            await scale.read_weight()  # the port drops
        with pytest.raises(DeviceTimeout, match="connect still running"):
            await scale.read_weight()  # waits timeout_s for the connect, not seconds
        with pytest.raises(DeviceDisconnected, match="reconnect in progress"):
            await scale.read_weight()  # no second attempt while one is running
        assert calls == 2
        transport.broken = False
        gateway_answers.set()
        await wait_for(lambda: scale.health.connected)
        assert (await scale.read_weight()).weight_g == pytest.approx(100.0)
        assert calls == 2
        await scale.close()

    run(scenario())
