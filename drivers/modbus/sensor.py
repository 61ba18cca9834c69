"""Modbus climate sensors and the poller that owns their I/O and up/stale state.

``ModbusClimateSensor`` implements ``drivers.interfaces.ClimateSensor`` from a register map
(profile or inline, never code). ``SensorPoller`` polls each sensor at its own interval,
keeps the last good reading and an up/stale state per device (device health, for the HMI's
device list), and logs a fault once when it starts and once when it clears, not on every failed
poll. It raises no alarm and knows no room: readings go to ``on_reading`` (the cold chain's
``ColdchainMonitor``), which owns bands, the stale-sensor alarm and the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from drivers.health import FaultState
from drivers.interfaces import DeviceError, SensorReading
from drivers.modbus import codec
from drivers.modbus.client import MAX_READ_REGISTERS, BusRegistry, ModbusBus
from drivers.modbus.errors import ModbusConfigError
from drivers.modbus.profiles import register_map
from drivers.modbus.settings import ModbusSensorSettings, RegisterSpec, RegisterTable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Span:
    """One read request covering several register specs of one table."""

    table: RegisterTable
    address: int
    count: int
    specs: tuple[RegisterSpec, ...]


def plan_reads(specs: Sequence[RegisterSpec], max_gap: int = 8) -> list[_Span]:
    """Group specs into as few reads as possible: same table, contiguous or nearly so.

    Small gaps are read through (cheaper than another round trip on a 9600-baud bus), but a
    gap could hold addresses the device rejects, so keep ``max_gap`` small.
    """
    spans: list[_Span] = []
    by_table: dict[RegisterTable, list[RegisterSpec]] = {}
    for spec in specs:
        by_table.setdefault(spec.table, []).append(spec)
    for table, table_specs in by_table.items():
        table_specs.sort(key=lambda s: s.address)
        current: list[RegisterSpec] = []
        start = end = 0
        for spec in table_specs:
            s_end = spec.address + codec.register_count(spec)
            if current and spec.address <= end + max_gap and s_end - start <= MAX_READ_REGISTERS:
                current.append(spec)
                end = max(end, s_end)
                continue
            if current:
                spans.append(_Span(table, start, end - start, tuple(current)))
            current, start, end = [spec], spec.address, s_end
        if current:
            spans.append(_Span(table, start, end - start, tuple(current)))
    return spans


def _humidity_ratio(spec: RegisterSpec, value: float) -> float:
    if spec.unit in ("percent", "%", "%RH"):
        return value / 100.0
    if spec.unit == "ratio":
        return value
    raise ModbusConfigError(f"{spec.name}: humidity unit {spec.unit!r} must be percent or ratio")


class ModbusClimateSensor:
    """A temperature / humidity sensor read through its register map."""

    def __init__(
        self,
        settings: ModbusSensorSettings,
        bus: ModbusBus,
        *,
        registers: Sequence[RegisterSpec] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.bus = bus
        self.registers = list(registers) if registers is not None else register_map(settings)
        self._clock = clock
        self._spans = plan_reads(self.registers)
        for spec in self.registers:
            if spec.name == "temperature" and spec.unit not in ("celsius", "degC", "°C"):
                raise ModbusConfigError(
                    f"{self.name}: temperature unit must be celsius, got {spec.unit!r}"
                )
            if spec.name == "humidity":
                _humidity_ratio(spec, 0.0)

    @classmethod
    def create(
        cls,
        settings: ModbusSensorSettings,
        buses: BusRegistry,
        clock: Callable[[], float] = time.monotonic,
    ) -> ModbusClimateSensor:
        bus = buses.bus_for(
            settings.transport, timeout_s=settings.timeout_s, retries=settings.retries
        )
        return cls(settings, bus, clock=clock)

    async def open(self) -> None:
        await self.bus.connect(self.name, self.settings.device_id)

    async def close(self) -> None:
        # The bus is shared; its owner (the BusRegistry) closes it.
        return None

    async def read_values(self) -> dict[str, float]:
        """Every register in the map, decoded and scaled. Raises ModbusError."""
        values: dict[str, float] = {}
        for span in self._spans:
            words = await self.bus.read(
                self.name, self.settings.device_id, span.table, span.address, span.count
            )
            for spec in span.specs:
                i = spec.address - span.address
                values[spec.name] = codec.decode(spec, words[i : i + codec.register_count(spec)])
        return values

    async def read(self) -> SensorReading:
        values = await self.read_values()
        by_name = {s.name: s for s in self.registers}
        humidity = values.get("humidity")
        door = values.get("door")
        return SensorReading(
            temperature_celsius=values.get("temperature"),
            relative_humidity_ratio=None
            if humidity is None
            else _humidity_ratio(by_name["humidity"], humidity),
            t_s=self._clock(),
            door_open=None if door is None else bool(door),
        )


@dataclass
class DeviceHealth:
    """What the poller knows about one device; ``fault`` logs a fault once when it starts and
    once when it clears."""

    name: str
    poll_interval_s: float
    stale_after_s: float
    fault: FaultState
    last_reading: SensorReading | None = None
    last_ok_t: float | None = None
    last_error: DeviceError | None = None
    consecutive_failures: int = 0
    polls: int = 0
    failures: int = 0

    def is_up(self, now: float) -> bool:
        """Up = the last poll succeeded and the reading is fresh enough."""
        return (
            self.consecutive_failures == 0
            and self.last_ok_t is not None
            and now - self.last_ok_t <= self.stale_after_s
        )

    def state(self, now: float) -> str:
        return "up" if self.is_up(now) else "stale"


class SensorPoller:
    """Polls sensors, each at its own interval; the single owner of their I/O."""

    def __init__(
        self,
        sensors: Sequence[ModbusClimateSensor],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_reading: Callable[[str, SensorReading], None] | None = None,
    ) -> None:
        names = [s.name for s in sensors]
        if len(set(names)) != len(names):
            raise ModbusConfigError("sensor names must be unique")
        self.sensors = list(sensors)
        self._clock = clock
        self._sleep = sleep
        self._on_reading = on_reading
        self.health: dict[str, DeviceHealth] = {
            s.name: DeviceHealth(
                s.name,
                s.settings.poll_interval_s,
                s.settings.poll_interval_s * s.settings.stale_after_polls,
                FaultState(f"sensor {s.name}", clock=clock, logger=log),
            )
            for s in sensors
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def state(self, name: str) -> str:
        return self.health[name].state(self._clock())

    async def poll_once(self, sensor: ModbusClimateSensor) -> DeviceHealth:
        """One poll; records the outcome (reading or error) in the device's health."""
        h = self.health[sensor.name]
        h.polls += 1
        try:
            reading = await sensor.read()
        except DeviceError as exc:
            h.failures += 1
            h.consecutive_failures += 1
            h.last_error = exc
            h.fault.fault(exc)
            return h
        h.fault.ok()
        h.consecutive_failures = 0
        h.last_error = None
        h.last_reading = reading
        h.last_ok_t = self._clock()
        if self._on_reading is not None:
            self._on_reading(sensor.name, reading)
        return h

    async def _run_one(self, sensor: ModbusClimateSensor) -> None:
        interval = sensor.settings.poll_interval_s
        next_t = self._clock()
        while not self._stopping:
            await self.poll_once(sensor)  # a cancellation racing the reply: ModbusBus re-raises it
            next_t += interval
            now = self._clock()
            if next_t < now:
                # Fell behind (slow bus, timeouts): skip missed slots instead of bursting.
                next_t = now
            await self._sleep(next_t - now)

    def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._run_one(s), name=f"poll {s.name}") for s in self.sensors
        ]

    async def stop(self) -> None:
        self._stopping = True
        pending = set(self._tasks)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        for task in self._tasks:
            if not task.cancelled() and task.exception() is not None:
                log.error("poll task %s failed: %r", task.get_name(), task.exception())
        self._tasks = []
        self._stopping = False


def build_sensor_poller(
    settings: Sequence[ModbusSensorSettings],
    *,
    clock: Callable[[], float] = time.monotonic,
    on_reading: Callable[[str, SensorReading], None] | None = None,
) -> tuple[SensorPoller, BusRegistry]:
    """Sensors from config, sharing one bus per wire, and the poller that owns them.

    No I/O here: call ``poller.start()`` inside the event loop, ``await poller.stop()`` and
    ``buses.close()`` at shutdown. Raises ModbusConfigError for an unknown profile.
    """
    buses = BusRegistry(clock)
    sensors = [ModbusClimateSensor.create(s, buses, clock) for s in settings]
    return SensorPoller(sensors, clock=clock, on_reading=on_reading), buses
