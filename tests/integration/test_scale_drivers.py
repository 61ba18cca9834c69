"""The real scale drivers against the wire-level simulator, over TCP loopback and pty pairs.

Nothing is faked here: the driver opens a pyserial URL (``socket://127.0.0.1:PORT`` or the pty
slave path), the simulator speaks the protocol from its own encoders. Waits are conditions
with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from drivers.interfaces import (
    CorruptFrame,
    DeviceDisconnected,
    DeviceError,
    DeviceTimeout,
    WeightReading,
)
from drivers.scales.driver import SerialScale
from drivers.scales.factory import create_scale
from drivers.scales.settings import SerialScaleSettings
from simulators.faults import FaultInjector, FaultRates
from simulators.scale_server import FruitSequence, ScaleSimulator, SettableWeight

T = TypeVar("T")
LOGGER = "drivers.scales.driver"
PROTOCOLS = ["mt-sics", "toledo", "xk3190"]
# pyserial's rfc2217 client still calls Thread.setDaemon(); not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:set(Daemon|Name)\\(\\) is deprecated:DeprecationWarning")


@pytest.fixture(autouse=True)
def no_port_threads_left() -> Iterator[None]:
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("scale-")]
    assert not left, f"scale port threads left running: {left}"


def run(coro: Coroutine[Any, Any, T], limit_s: float = 20.0) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(limit_s):
            return await coro

    return asyncio.run(bounded())


def settings(kind: str, url: str, timeout_s: float = 0.3) -> SerialScaleSettings:
    return SerialScaleSettings.model_validate(
        {"kind": kind, "ports": [url], "timeout_s": timeout_s}
    )


async def until(condition: Callable[[], bool], deadline_s: float = 5.0) -> None:
    async with asyncio.timeout(deadline_s):
        while not condition():
            await asyncio.sleep(0.01)


async def read_until(
    scale: SerialScale, accept: Callable[[WeightReading], bool], deadline_s: float = 5.0
) -> WeightReading:
    """Poll read_weight until a reading satisfies ``accept``; typed errors meanwhile are fine."""
    async with asyncio.timeout(deadline_s):
        while True:
            try:
                reading = await scale.read_weight()
                if accept(reading):
                    return reading
            except DeviceError:
                pass
            await asyncio.sleep(0.01)


async def read_fails(scale: SerialScale, deadline_s: float = 5.0) -> DeviceError:
    async with asyncio.timeout(deadline_s):
        while True:
            try:
                await scale.read_weight()
            except DeviceError as exc:
                return exc
            await asyncio.sleep(0.01)


async def start(sim: ScaleSimulator, transport: str) -> str:
    if transport == "tcp":
        return await sim.start_tcp()
    if transport == "rfc2217":
        return await sim.start_rfc2217()
    return await sim.start_pty()


@pytest.mark.parametrize("transport", ["tcp", "pty", "rfc2217"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_driver_reads_the_simulated_weight(protocol: str, transport: str) -> None:
    source = SettableWeight(182.0)

    async def scenario() -> None:
        async with ScaleSimulator(protocol, source) as sim:  # type: ignore[arg-type]
            url = await start(sim, transport)
            prefix = {
                "tcp": "socket://127.0.0.1:",
                "rfc2217": "rfc2217://127.0.0.1:",
                "pty": "/dev/",
            }
            assert url.startswith(prefix[transport])
            scale = create_scale("lane-1", url, settings(protocol, url))
            await scale.open()
            try:
                first = await read_until(scale, lambda r: r.stable)
                assert first.weight_g == pytest.approx(182.0)
                source.set(-12.5, stable=False)
                moving = await read_until(scale, lambda r: r.weight_g < 0)
                assert moving.weight_g == pytest.approx(
                    -12.5, abs=0.5
                )  # 1 g display step for kg/3dp
                assert not moving.stable
                source.set(250.0)
                settled = await read_until(scale, lambda r: r.stable and r.weight_g > 200)
                assert settled.weight_g == pytest.approx(250.0)
                assert scale.health.state == "up" and scale.health.connected
            finally:
                await scale.close()

    run(scenario())


@pytest.mark.parametrize("protocol", ["toledo", "xk3190"])
def test_scripted_fruit_plateaus_read_exactly(protocol: str) -> None:
    fruit = FruitSequence([152.0, 210.0, 187.0], cup_period_s=0.3, noise_g=0.4, seed=7)
    # Display resolution is 1 g (kg with 3 decimals): the truth rounded to whole grams.
    truth = {round(fruit.plateau_weight_g(cup)) for cup in range(12)}

    async def scenario() -> set[float]:
        async with ScaleSimulator(protocol, fruit, rate_hz=40.0) as sim:  # type: ignore[arg-type]
            url = await sim.start_tcp()
            scale = create_scale("lane-1", url, settings(protocol, url))
            await scale.open()
            seen: set[float] = set()
            try:
                async with asyncio.timeout(8.0):
                    while len(seen) < 3:
                        try:
                            reading = await scale.read_weight()
                        except DeviceTimeout:
                            reading = None
                        if reading is not None and reading.stable and reading.weight_g > 50:
                            seen.add(reading.weight_g)
                        await asyncio.sleep(0.02)
            finally:
                await scale.close()
            return seen

    seen = run(scenario())
    assert seen <= truth


@pytest.mark.parametrize("protocol", ["toledo", "xk3190"])
def test_garbage_and_bad_checksums_are_never_accepted(protocol: str) -> None:
    faults = FaultInjector(
        FaultRates(garbage_rate=0.4, garbage_max_bytes=12, bad_checksum_rate=0.4), seed=3
    )

    async def scenario() -> tuple[set[float], int]:
        async with ScaleSimulator(
            protocol, SettableWeight(321.0), rate_hz=50.0, faults=faults
        ) as sim:  # type: ignore[arg-type]
            url = await sim.start_tcp()
            scale = create_scale("lane-1", url, settings(protocol, url))
            await scale.open()
            weights: set[float] = set()
            try:
                await until(
                    lambda: faults.counts.corrupted_frames >= 15 and scale.health.valid_count >= 15
                )
                async with asyncio.timeout(5.0):
                    while len(weights) < 1 or scale.health.valid_count < 25:
                        weights.add((await read_until(scale, lambda r: True)).weight_g)
                        await asyncio.sleep(0.005)
            finally:
                await scale.close()
            return weights, scale.health.corrupt_frame_count

    weights, rejected = run(scenario())
    assert weights == {321.0}
    assert rejected >= 15


def test_mtsics_faults_give_typed_errors_then_recover() -> None:
    faults = FaultInjector()

    async def scenario() -> None:
        async with ScaleSimulator("mt-sics", SettableWeight(99.5), faults=faults) as sim:
            url = await sim.start_tcp()
            scale = create_scale("lane-1", url, settings("mt-sics", url, timeout_s=0.2))
            await scale.open()
            try:
                assert (await scale.read_weight()).weight_g == pytest.approx(99.5)
                faults.corrupt_next()
                with pytest.raises(CorruptFrame):
                    await scale.read_weight()
                faults.inject_garbage(b"\x00\xffnoise")  # arrives glued to the front of the reply
                with pytest.raises(CorruptFrame):
                    await scale.read_weight()
                faults.stall(0.5)  # reply later than the 0.2 s timeout
                with pytest.raises(DeviceTimeout):
                    await scale.read_weight()
                # The late reply arrives while nobody waits; it is discarded before the next SI.
                await until(lambda: sim.frames_sent == 4)
                assert (await scale.read_weight()).weight_g == pytest.approx(99.5)
                faults.disconnect()
                exc = await read_fails(scale)
                assert isinstance(exc, DeviceDisconnected)
                await read_until(scale, lambda r: r.weight_g == pytest.approx(99.5))
                assert scale.health.state == "up"
            finally:
                await scale.close()

    run(scenario())


def test_mtsics_zero_and_tare_against_the_simulated_balance() -> None:
    source = SettableWeight(40.0)

    async def scenario() -> None:
        async with ScaleSimulator("mt-sics", source) as sim:
            url = await sim.start_pty()
            scale = create_scale("lane-1", url, settings("mt-sics", url))
            await scale.open()
            try:
                await scale.zero()
                assert (await scale.read_weight()).weight_g == pytest.approx(0.0)
                source.set(40.0 + 12.4)  # an empty cup on the zeroed load cell
                assert await scale.tare() == pytest.approx(12.4)
                source.set(40.0 + 12.4 + 180.0)
                assert (await scale.read_weight()).weight_g == pytest.approx(180.0)
                await scale.clear_tare()
                assert (await scale.read_weight()).weight_g == pytest.approx(192.4)
            finally:
                await scale.close()
            assert sim.balance.commands == [b"Z", b"SI", b"T", b"SI", b"TAC", b"SI"]

    run(scenario())


@pytest.mark.parametrize(
    ("protocol", "transport"),
    [
        ("mt-sics", "tcp"),
        ("toledo", "tcp"),
        ("xk3190", "tcp"),
        ("mt-sics", "rfc2217"),
        ("toledo", "rfc2217"),
    ],
)
def test_device_killed_mid_run_goes_stale_logs_once_and_reconnects(
    protocol: str, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def scenario() -> None:
        sim = ScaleSimulator(protocol, SettableWeight(150.0))  # type: ignore[arg-type]
        url = await start(sim, transport)
        port = sim.tcp_port or 0
        scale = create_scale("lane-1", url, settings(protocol, url))
        await scale.open()
        try:
            await read_until(scale, lambda r: r.stable)
            await sim.stop()  # the indicator is switched off

            await read_fails(scale)
            for _ in range(5):  # every poll while it is down fails with a typed error
                with pytest.raises((DeviceTimeout, DeviceDisconnected)):
                    await scale.read_weight()
                await asyncio.sleep(0.05)
            assert scale.health.state == "stale"
            assert scale.health.error_count >= 6
            faults = [
                r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING
            ]
            assert len(faults) == 1, [r.getMessage() for r in faults]

            # Back on the same port.
            await (sim.start_tcp(port) if transport == "tcp" else sim.start_rfc2217(port))
            reading = await read_until(scale, lambda r: True, deadline_s=5.0)
            assert reading.weight_g == pytest.approx(150.0)
            assert scale.health.state == "up"
        finally:
            await scale.close()
            await sim.stop()

    run(scenario())
    records = [r for r in caplog.records if r.name == LOGGER]
    assert [r.levelname for r in records] == ["WARNING", "INFO"]


@pytest.mark.parametrize("protocol", ["toledo", "mt-sics"])
def test_pty_closed_by_the_device_side_gives_typed_errors(protocol: str) -> None:
    async def scenario() -> None:
        sim = ScaleSimulator(protocol, SettableWeight(75.0))  # type: ignore[arg-type]
        url = await sim.start_pty()
        scale = create_scale("lane-1", url, settings(protocol, url))
        await scale.open()
        try:
            await read_until(scale, lambda r: r.stable)
            await sim.stop()
            exc = await read_fails(scale)
            assert isinstance(exc, DeviceTimeout | DeviceDisconnected)
            await until(lambda: scale.health.state == "stale")
        finally:
            await scale.close()

    run(scenario())
