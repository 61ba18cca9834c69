"""The scale simulator: exact protocol bytes, MT-SICS balance behaviour, fault injection."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from simulators.faults import FaultInjector, FaultRates
from simulators.scale_server import (
    FruitSequence,
    MtSicsBalance,
    Reply,
    ScaleSimulator,
    SentFrame,
    SettableWeight,
    ThreadedScaleSimulator,
    toledo_frame,
    toledo_spoil_check,
    xk3190_frame,
    xk3190_spoil_check,
)

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(10):
            return await coro

    return asyncio.run(bounded())


# -- the MT-SICS balance, without I/O ------------------------------------------------------------


def test_balance_answers_weight_commands() -> None:
    source = SettableWeight(182.4)
    balance = MtSicsBalance(source)
    assert balance.answer(b"SI", 0.0) == b"S S     182.40 g\r\n"
    assert balance.answer(b"S", 0.0) == b"S S     182.40 g\r\n"
    source.set(90.0, stable=False)
    assert balance.answer(b"SI", 0.0) == b"S D      90.00 g\r\n"
    assert balance.answer(b"S", 0.0) == b"S I\r\n"
    source.set(7000.0)
    assert balance.answer(b"SI", 0.0) == b"S +\r\n"
    source.set(-500.0)
    assert balance.answer(b"SI", 0.0) == b"S -\r\n"
    assert balance.answer(b"XYZ", 0.0) == b"ES\r\n"
    assert balance.answer(b"@", 0.0) == b'I4 A "SIM0001"\r\n'


def test_balance_zero_and_tare() -> None:
    source = SettableWeight(30.0)
    balance = MtSicsBalance(source)
    assert balance.answer(b"Z", 0.0) == b"Z A\r\n"
    assert balance.answer(b"SI", 0.0) == b"S S       0.00 g\r\n"
    source.set(45.0)
    assert balance.answer(b"T", 0.0) == b"T S      15.00 g\r\n"
    source.set(245.0)
    assert balance.answer(b"SI", 0.0) == b"S S     200.00 g\r\n"
    assert balance.answer(b"TAC", 0.0) == b"TAC A\r\n"
    assert balance.answer(b"SI", 0.0) == b"S S     215.00 g\r\n"
    source.set(245.0, stable=False)
    assert balance.answer(b"Z", 0.0) == b"Z I\r\n"
    assert balance.answer(b"T", 0.0) == b"T I\r\n"


def test_balance_reset_clears_the_tare_and_stream_lines_are_not_commands() -> None:
    source = SettableWeight(45.0)
    balance = MtSicsBalance(source)
    assert balance.answer(b"T", 0.0) == b"T S      45.00 g\r\n"
    source.set(245.0, stable=False)
    assert balance.stream_line(0.0) == Reply(b"S D     200.00 g\r\n", 200.0, False)
    assert balance.reply(b"SIR", 0.0) == Reply(b"S D     200.00 g\r\n", 200.0, False)
    assert balance.answer(b"@", 0.0) == b'I4 A "SIM0001"\r\n'
    assert balance.reply(b"SI", 0.0).weight_g == 245.0  # MT-SICS: @ clears the tare register
    assert balance.reply(b"Z", 0.0) == Reply(b"Z I\r\n")  # no weight in it
    assert balance.commands == [b"T", b"SIR", b"@", b"SI", b"Z"]


def test_kg_display_and_negative_zero() -> None:
    balance = MtSicsBalance(SettableWeight(-0.001), unit="kg", decimals=3)
    assert balance.answer(b"SI", 0.0) == b"S S      0.000 kg\r\n"


# -- encoders and spoilers ---------------------------------------------------------------------


def test_spoiled_checks_differ_only_in_the_check() -> None:
    frame = toledo_frame(182.0)
    spoiled = toledo_spoil_check(frame)
    assert spoiled[:-1] == frame[:-1] and spoiled[-1] != frame[-1] and sum(spoiled) % 128 != 0
    xk = xk3190_frame(182.0)
    xk_spoiled = xk3190_spoil_check(xk)
    assert xk_spoiled[:10] == xk[:10] and xk_spoiled[10] != xk[10] and xk_spoiled[11:] == xk[11:]


def test_toledo_frame_status_bits() -> None:
    frame = toledo_frame(-1000.0, stable=False, net=True, unit="lb", decimals=2)
    assert frame[2] & 0x0F == 0b1011  # motion, negative, net; bit 2 (range) clear
    assert not frame[2] & 0x10  # lb
    assert frame[1] == 0x20 | 0x08 | 4  # two decimals = code 4
    assert toledo_frame(2_000_000.0)[2] & 0x04  # over range


# -- weight sources ----------------------------------------------------------------------------


def test_fruit_sequence_phases_and_truth() -> None:
    fruit = FruitSequence(
        [150.0, 200.0],
        cup_period_s=1.0,
        empty_fraction=0.2,
        settle_fraction=0.3,
        noise_g=0.5,
        seed=4,
    )
    assert fruit.sample(0.1) == (0.0, False)
    landing, stable = fruit.sample(0.35)
    assert 0 < landing < fruit.plateau_weight_g(0) and not stable
    assert fruit.sample(0.6) == (fruit.plateau_weight_g(0), True)
    assert fruit.sample(0.99) == (fruit.plateau_weight_g(0), True)
    assert fruit.sample(1.7) == (fruit.plateau_weight_g(1), True)
    assert abs(fruit.plateau_weight_g(1) - 200.0) < 5 * 0.5
    assert FruitSequence([150.0, 200.0], noise_g=0.5, seed=4).plateau_weight_g(
        3
    ) == fruit.plateau_weight_g(3)
    with pytest.raises(ValueError):
        FruitSequence([])


# -- fault injection ---------------------------------------------------------------------------


def test_fault_injector_one_shot_faults() -> None:
    faults = FaultInjector()
    frame = toledo_frame(100.0)
    faults.corrupt_next()
    faults.inject_garbage(b"\xaa\xbb")
    first = faults.apply(frame, toledo_spoil_check)
    assert first == b"\xaa\xbb" + toledo_spoil_check(frame)
    assert faults.apply(frame, toledo_spoil_check) == frame
    faults.stall(0.25)
    assert faults.take_delay_s() == 0.25 and faults.take_delay_s() == 0.0
    dropped: list[int] = []
    faults.on_disconnect(lambda: dropped.append(1))
    faults.disconnect()
    assert dropped == [1]
    counts = faults.counts
    assert (
        counts.frames,
        counts.garbage_bursts,
        counts.garbage_bytes,
        counts.corrupted_frames,
        counts.disconnects,
    ) == (2, 1, 2, 1, 1)


def test_fault_rates_are_seeded_and_validated() -> None:
    def stream(seed: int) -> bytes:
        faults = FaultInjector(FaultRates(garbage_rate=0.5, bad_checksum_rate=0.5), seed=seed)
        return b"".join(faults.apply(xk3190_frame(w), xk3190_spoil_check) for w in range(100, 160))

    assert stream(1) == stream(1)
    assert stream(1) != stream(2)
    with pytest.raises(ValueError):
        FaultRates(garbage_rate=1.5)


# -- over real transports ------------------------------------------------------------------------


def test_mtsics_over_tcp_exact_bytes() -> None:
    async def scenario() -> list[bytes]:
        async with ScaleSimulator("mt-sics", SettableWeight(182.4)) as sim:
            await sim.start_tcp(0)
            assert sim.tcp_port
            reader, writer = await asyncio.open_connection("127.0.0.1", sim.tcp_port)
            replies = []
            for command in (b"SI\r\n", b"NOPE\r\n", b"Z\r\n", b"SI\r\n"):
                writer.write(command)
                replies.append(await reader.readuntil(b"\n"))
            writer.close()
            return replies

    assert run(scenario()) == [
        b"S S     182.40 g\r\n",
        b"ES\r\n",
        b"Z A\r\n",
        b"S S       0.00 g\r\n",
    ]


def test_mtsics_sir_streams_until_cancelled_and_answers_other_commands_in_between() -> None:
    source = SettableWeight(182.4)
    stream_line = b"S S     182.40 g\r\n"

    async def scenario() -> None:
        async with ScaleSimulator("mt-sics", source, rate_hz=100.0) as sim:
            await sim.start_tcp()
            reader, writer = await asyncio.open_connection("127.0.0.1", sim.tcp_port)
            writer.write(b"SIR\r\n")
            assert [await reader.readuntil(b"\n") for _ in range(3)] == [stream_line] * 3
            writer.write(b"Z\r\n")  # answered between stream lines; the stream goes on
            while (got := await reader.readuntil(b"\n")) == stream_line:
                pass
            assert got == b"Z A\r\n"
            zeroed = [await reader.readuntil(b"\n") for _ in range(2)]
            assert zeroed == [b"S S       0.00 g\r\n"] * 2
            identity = b'I4 A "SIM0001"\r\n'
            for cancel in (b"SI", b"@"):
                # Lines already sent may still arrive before the I4 reply; none after it.
                writer.write(cancel + b"\r\nI4\r\n")
                for _ in range(2 if cancel == b"@" else 1):  # @ answers with the identity too
                    while await reader.readuntil(b"\n") != identity:
                        pass
                writer.write(b"I4\r\n")
                assert await reader.readuntil(b"\n") == identity  # the stream has stopped
                writer.write(b"SIR\r\n")
                assert await reader.readuntil(b"\n") == b"S S       0.00 g\r\n"
            writer.close()
            assert sim.balance.commands == [b"SIR", b"Z"] + [b"SI", b"I4", b"I4", b"SIR"] + [
                b"@",
                b"I4",
                b"I4",
                b"SIR",
            ]

    run(scenario())


def test_send_log_records_what_went_on_the_wire() -> None:
    faults = FaultInjector()

    async def scenario() -> list[SentFrame]:
        sim = ScaleSimulator(
            "toledo", SettableWeight(250.0), rate_hz=100.0, faults=faults, keep_send_log=True
        )
        await sim.start_tcp()
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.tcp_port)
        await reader.readexactly(18)
        faults.corrupt_next()
        while sum(not sent.intact for sent in sim.send_log) == 0 or len(sim.send_log) < 5:
            await reader.read(18)
        await sim.stop()
        writer.close()
        return sim.send_log

    log = run(scenario())
    assert all(sent.frame == toledo_frame(250.0) and sent.weight_g == 250.0 for sent in log)
    spoiled = [sent for sent in log if not sent.intact]
    assert len(spoiled) == 1 and spoiled[0].wire == toledo_spoil_check(toledo_frame(250.0))
    assert [sent.t_s for sent in log] == sorted(sent.t_s for sent in log)


def test_no_send_log_unless_asked() -> None:
    async def scenario() -> int:
        async with ScaleSimulator("xk3190", rate_hz=100.0) as sim:
            await sim.start_tcp()
            reader, writer = await asyncio.open_connection("127.0.0.1", sim.tcp_port)
            await reader.readexactly(24)
            writer.close()
            return len(sim.send_log)

    assert run(scenario()) == 0


@pytest.mark.parametrize(
    ("protocol", "frame"), [("toledo", toledo_frame(250.0)), ("xk3190", xk3190_frame(250.0))]
)
def test_continuous_frames_over_tcp_and_eof_on_stop(protocol: str, frame: bytes) -> None:
    async def scenario() -> bytes:
        sim = ScaleSimulator(protocol, SettableWeight(250.0), rate_hz=50.0)  # type: ignore[arg-type]
        await sim.start_tcp()
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.tcp_port)
        data = await reader.readexactly(len(frame) * 3)
        await sim.stop()
        rest = await reader.read()  # EOF once the device is switched off
        writer.close()
        return data + rest

    data = run(scenario())
    assert data == frame * (len(data) // len(frame))


def test_listens_on_loopback_only() -> None:
    async def scenario() -> str:
        async with ScaleSimulator("toledo") as sim:
            await sim.start_tcp()
            assert sim._server is not None
            return str(sim._server.sockets[0].getsockname()[0])

    assert run(scenario()) == "127.0.0.1"


def test_pty_carries_the_frames_to_the_slave() -> None:
    frame = xk3190_frame(42.0)

    async def scenario() -> bytes:
        async with ScaleSimulator("xk3190", SettableWeight(42.0), rate_hz=50.0) as sim:
            path = await sim.start_pty()
            fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                received = bytearray()
                async with asyncio.timeout(5):
                    while len(received) < 3 * len(frame):
                        try:
                            received += os.read(fd, 1024)
                        except BlockingIOError:
                            await asyncio.sleep(0.01)
            finally:
                os.close(fd)
            return bytes(received)

    received = run(scenario())
    start = received.index(b"\x02")  # frames queued before we opened may be cut
    whole = received[start:]
    assert whole[: len(frame) * 2] == frame * 2


def test_tcp_port_in_use_is_an_error() -> None:
    async def scenario() -> None:
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", 0))
            blocker.listen()
            port = blocker.getsockname()[1]
            sim = ScaleSimulator("toledo")
            with pytest.raises(OSError):
                await sim.start_tcp(port)
            await sim.stop()

    run(scenario())


@pytest.fixture
def threaded_toledo() -> Iterator[ThreadedScaleSimulator]:
    with ThreadedScaleSimulator("toledo", SettableWeight(180.0), rate_hz=50.0) as sim:
        yield sim


def test_threaded_simulator_as_a_fixture_serves_a_blocking_client(
    threaded_toledo: ThreadedScaleSimulator,
) -> None:
    url = threaded_toledo.start_tcp()
    port = int(url.rsplit(":", 1)[1])
    frame = toledo_frame(180.0)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        data = b""
        while len(data) < 2 * len(frame):
            data += sock.recv(64)
        assert data[: 2 * len(frame)] == frame * 2
        threaded_toledo.call(threaded_toledo.simulator.faults.disconnect)
        while sock.recv(64):  # drains to EOF: the simulator dropped the connection
            pass
    threaded_toledo.stop()
    assert threaded_toledo.start_tcp(port) == url  # switched on again on the same port
    assert threaded_toledo.send_log() == []  # not kept unless asked for
