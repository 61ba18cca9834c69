"""Modbus climate sensors against the cold-room simulator over real transports.

TCP on loopback, RTU on a pty pair (two ptys bridged by an asyncio forwarder), RTU framing
over TCP; both register layouts; Modbus exceptions, silence and byte-level faults become
typed errors naming device, unit id and address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pymodbus import FramerType

from drivers.interfaces import DeviceError
from drivers.modbus.client import BusRegistry, ModbusBus
from drivers.modbus.errors import (
    ModbusCorruptResponse,
    ModbusDisconnected,
    ModbusExceptionResponse,
    ModbusTimeout,
)
from drivers.modbus.sensor import ModbusClimateSensor
from drivers.modbus.settings import (
    ModbusRtuOverTcpTransport,
    ModbusRtuSerialTransport,
    ModbusSensorSettings,
    ModbusTcpTransport,
)
from simulators.coldroom import ColdroomModel, ColdroomServer, ColdroomSimSettings, RoomSettings
from simulators.modbus_faults import RtuPtyBridge, TcpFaultProxy

TIMEOUT_S = 0.3


class FakeClock:
    def __init__(self) -> None:
        self.t_s = 1000.0

    def __call__(self) -> float:
        return self.t_s


def rooms_settings(layout: str = "xy-md02") -> ColdroomSimSettings:
    return ColdroomSimSettings(
        layout=layout,  # type: ignore[arg-type]
        rooms=[
            RoomSettings(name="a", unit_id=1, setpoint_celsius=2.0, humidity_percent=90.0),
            RoomSettings(name="b", unit_id=2, setpoint_celsius=-4.5, humidity_percent=85.5),
            RoomSettings(name="c", unit_id=3, setpoint_celsius=12.3, humidity_percent=70.0),
        ],
    )


EXPECTED = {1: (2.0, 0.90), 2: (-4.5, 0.855), 3: (12.3, 0.70)}


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), timeout=60)

    return asyncio.run(bounded())


def sensor_on(
    transport: Any, unit: int, profile: str = "xy-md02", name: str | None = None
) -> ModbusSensorSettings:
    return ModbusSensorSettings(
        name=name or f"room-{unit}",
        transport=transport,
        device_id=unit,
        profile=profile,
        timeout_s=TIMEOUT_S,
    )


async def read_all(
    buses: BusRegistry, settings: list[ModbusSensorSettings]
) -> dict[int, tuple[float, float]]:
    out = {}
    for s in settings:
        reading = await ModbusClimateSensor.create(s, buses).read()
        assert (
            reading.temperature_celsius is not None and reading.relative_humidity_ratio is not None
        )
        out[s.device_id] = (reading.temperature_celsius, reading.relative_humidity_ratio)
    return out


def assert_expected(got: dict[int, tuple[float, float]]) -> None:
    for unit, (t, rh) in EXPECTED.items():
        assert got[unit] == (pytest.approx(t), pytest.approx(rh))


@pytest.mark.parametrize("layout", ["xy-md02", "srth100"])
def test_tcp_sensors_read_documented_values(layout: str) -> None:
    async def body() -> None:
        server = ColdroomServer(ColdroomModel(rooms_settings(layout), FakeClock()))
        port = await server.start_tcp()
        buses = BusRegistry()
        try:
            transport = ModbusTcpTransport(kind="tcp", host="127.0.0.1", port=port)
            got = await read_all(buses, [sensor_on(transport, u, layout) for u in EXPECTED])
            assert_expected(got)
            assert len(buses.buses()) == 1  # one bus, one connection for all three
            # the other layout's addresses are refused, as by the real sensor
            other = "srth100" if layout == "xy-md02" else "xy-md02"
            with pytest.raises(ModbusExceptionResponse) as exc:
                await ModbusClimateSensor.create(
                    sensor_on(transport, 1, other, name="wrong-map"), buses
                ).read()
            assert exc.value.exception_code == 2
            assert "wrong-map" in str(exc.value) and "unit 1" in str(exc.value)
        finally:
            buses.close()
            await server.stop()

    run(body)


def test_rtu_on_a_pty_pair() -> None:
    async def body() -> None:
        bridge = RtuPtyBridge()
        bridge.start()
        server = ColdroomServer(ColdroomModel(rooms_settings(), FakeClock()))
        await server.start_serial(bridge.device_path)
        buses = BusRegistry()
        try:
            transport = ModbusRtuSerialTransport(kind="rtu", port=bridge.master_path, baudrate=9600)
            settings = [sensor_on(transport, u) for u in EXPECTED]
            assert_expected(await read_all(buses, settings))
            # RTU framing really crossed the pty: request 8 bytes, reply 9 bytes per read
            assert bridge.bytes_to_device == 3 * 8 and bridge.bytes_to_master == 3 * 9
            # several devices polled concurrently on one serial bus: the bus lock serialises them
            sensors = [ModbusClimateSensor.create(s, buses) for s in settings]
            readings = await asyncio.gather(*(s.read() for _ in range(5) for s in sensors))
            for i, r in enumerate(readings):
                assert r.temperature_celsius == pytest.approx(
                    EXPECTED[settings[i % 3].device_id][0]
                )
            # a unit id nobody answers to: silence (timeout), as on a real RS-485 bus
            with pytest.raises(ModbusTimeout):
                await ModbusClimateSensor.create(sensor_on(transport, 9), buses).read()
        finally:
            buses.close()
            await server.stop()
            await bridge.stop()

    run(body)


def test_rtu_framing_over_tcp() -> None:
    async def body() -> None:
        server = ColdroomServer(ColdroomModel(rooms_settings(), FakeClock()))
        port = await server.start_tcp(framer=FramerType.RTU)
        buses = BusRegistry()
        try:
            transport = ModbusRtuOverTcpTransport(kind="rtu-over-tcp", host="127.0.0.1", port=port)
            assert_expected(await read_all(buses, [sensor_on(transport, u) for u in EXPECTED]))
        finally:
            buses.close()
            await server.stop()

    run(body)


def test_device_faults_become_typed_errors() -> None:
    async def body() -> None:
        model = ColdroomModel(rooms_settings(), FakeClock())
        server = ColdroomServer(model)
        port = await server.start_tcp()
        buses = BusRegistry()
        try:
            transport = ModbusTcpTransport(kind="tcp", host="127.0.0.1", port=port)
            sensor = ModbusClimateSensor.create(sensor_on(transport, 2, name="cold-2"), buses)
            model.rooms[2].fault = "exception"
            with pytest.raises(ModbusExceptionResponse) as exc:
                await sensor.read()
            assert (
                exc.value.exception_code == 4
                and exc.value.device_id == 2
                and exc.value.address == 1
            )
            assert str(exc.value).startswith("cold-2: unit 2 input @1")
            model.rooms[2].fault = "silent"
            with pytest.raises(ModbusTimeout) as exc2:
                await sensor.read()
            assert exc2.value.device == "cold-2"
            model.rooms[2].fault = "none"
            model.rooms[2].delay_s = TIMEOUT_S * 3
            with pytest.raises(ModbusTimeout):
                await sensor.read()
            model.rooms[2].delay_s = 0.0
            # the late reply to the delayed request must not be taken as the next answer
            for _ in range(3):
                r = await sensor.read()
                assert r.temperature_celsius == pytest.approx(-4.5)
        finally:
            buses.close()
            await server.stop()

    run(body)


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("bad_crc", ModbusCorruptResponse),
        ("garbage", ModbusCorruptResponse),
        ("truncate", ModbusCorruptResponse),
        ("drop", ModbusTimeout),
    ],
)
def test_byte_faults_on_the_serial_line(mode: str, error: type[DeviceError]) -> None:
    async def body() -> None:
        bridge = RtuPtyBridge()
        bridge.start()
        server = ColdroomServer(ColdroomModel(rooms_settings(), FakeClock()))
        await server.start_serial(bridge.device_path)
        bus = ModbusBus(
            ModbusRtuSerialTransport(kind="rtu", port=bridge.master_path), timeout_s=TIMEOUT_S
        )
        try:
            assert await bus.read("cold-1", 1, "input", 1, 2) == [20, 900]
            bridge.plan.set(mode)  # type: ignore[arg-type]
            for _ in range(3):
                with pytest.raises(error) as exc:
                    await bus.read("cold-1", 1, "input", 1, 2)
                assert "cold-1: unit 1 input @1" in str(exc.value)
            assert bridge.plan.altered >= 3
            bridge.plan.set("pass")
            assert await bus.read("cold-1", 1, "input", 1, 2) == [20, 900]
        finally:
            bus.close()
            await server.stop()
            await bridge.stop()

    run(body)


def test_tcp_proxy_faults_and_disconnect() -> None:
    async def body() -> None:
        server = ColdroomServer(ColdroomModel(rooms_settings(), FakeClock()))
        port = await server.start_tcp()
        proxy = TcpFaultProxy("127.0.0.1", port)
        proxy_port = await proxy.start()
        bus = ModbusBus(
            ModbusTcpTransport(kind="tcp", host="127.0.0.1", port=proxy_port), timeout_s=TIMEOUT_S
        )
        try:
            assert await bus.read("c", 3, "input", 1, 2) == [123, 700]
            proxy.plan.set("delay", delay_s=TIMEOUT_S * 3)
            with pytest.raises(ModbusTimeout):
                await bus.read("c", 3, "input", 1, 2)
            proxy.plan.set("disconnect")
            proxy.disconnect_all()
            with pytest.raises(ModbusDisconnected):
                await bus.read("c", 3, "input", 1, 2)
            proxy.plan.set("pass")
            # reconnects on a later request once the backoff has passed (deadline, no fixed sleep)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5.0
            while True:
                try:
                    assert await bus.read("c", 3, "input", 1, 2) == [123, 700]
                    break
                except DeviceError:
                    if loop.time() > deadline:
                        raise
                    await asyncio.sleep(0.05)
        finally:
            bus.close()
            await proxy.stop()
            await server.stop()

    run(body)


def test_compressor_failure_scenario_seen_through_the_driver() -> None:
    from simulators.coldroom import demo_settings

    async def body() -> None:
        clock = FakeClock()
        model = ColdroomModel(demo_settings(2), clock)
        server = ColdroomServer(model)
        port = await server.start_tcp()
        buses = BusRegistry()
        try:
            transport = ModbusTcpTransport(kind="tcp", host="127.0.0.1", port=port)
            room2 = ModbusClimateSensor.create(sensor_on(transport, 2), buses)
            temps = []
            for t in (0, 60, 300, 900, 1800):  # compressor of room 2 fails at 60 s
                clock.t_s = 1000.0 + t
                reading = await room2.read()
                assert reading.temperature_celsius is not None
                temps.append(reading.temperature_celsius)
                # the wire carries the model's value rounded to the register's 0.1 degC
                assert reading.temperature_celsius == pytest.approx(
                    round(model.rooms[2].temperature_celsius, 1), abs=1e-9
                )
            assert temps[0] == temps[1] == pytest.approx(2.0)
            assert temps[1] < temps[2] < temps[3] < temps[4]
            clock.t_s = 1000.0 + 1860 + 7200  # repaired at 1860 s, two hours later
            assert (await room2.read()).temperature_celsius == pytest.approx(2.0, abs=0.15)
        finally:
            buses.close()
            await server.stop()

    run(body)
