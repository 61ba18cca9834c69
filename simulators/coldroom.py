"""Cold-room simulator: rooms with simple thermal dynamics, served as Modbus sensors.

``ColdroomModel`` is pure and clock-driven: each room relaxes toward its setpoint while the
compressor runs, drifts toward ambient while it is failed, and exchanges air with the hall
while its door is open. A scripted scenario (door openings, compressor failure and repair)
is config. ``ColdroomServer`` serves one Modbus unit id per room, in the register layout of
a common sensor (XY-MD02 input registers by default, or the SRTH100 holding layout), over
TCP or RTU on a serial device (a pty for tests). ``SimulatedClimateSensor`` and
``SimulatedCoreProbe`` read the model in memory (the ``ClimateSensor`` Protocol without a wire)
for unit tests; fruit-core probes (Newtonian cooling with a known time constant, and noise) are
read that way only. Per-room faults (exception responses,
delays, silence) are injected in the request hook; byte-level faults live in
``simulators/modbus_faults.py``.

Register layouts (protocol addresses, 0-based as on the wire):

* ``xy-md02``: input 0x0001 temperature INT16 x0.1 degC, input 0x0002 humidity UINT16 x0.1 %RH;
  holding 0x0101 unit id, 0x0102 baud code (0 = 9600), 0x0103/0x0104 T/RH offsets x0.1.
* ``srth100``: holding 0x0000 temperature INT16 x0.1 degC, holding 0x0001 humidity x0.1 %RH;
  holding 0x0014 baud code, 0x0015 parity, 0x0017 unit id.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simdevice import SimAction

from drivers.interfaces import DeviceTimeout, SensorReading

Layout = Literal["xy-md02", "srth100"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CoreProbeSettings(_Strict):
    """A fruit-core probe in a batch placed in the room at start: the fruit cools toward the
    room's air by Newton's law with a known time constant (half-cooling time = tau ln 2,
    seven-eighths-cooling time = tau ln 8), read with Gaussian noise."""

    name: str = Field(min_length=1, max_length=64, description="Probe name.")
    initial_celsius: float = Field(25.0, ge=-20, le=60, description="Fruit core at harvest.")
    time_constant_s: float = Field(3600.0, gt=0, description="Cooling time constant tau.")
    noise_celsius: float = Field(0.05, ge=0, le=5, description="Standard deviation of the probe's noise.")
    seed: int = Field(0, description="Noise seed.")
    unit_id: int | None = Field(
        None, ge=1, le=247,
        description="Served over Modbus at this unit id, in the room's register layout (humidity reads 0); "
        "none: in memory only (SimulatedCoreProbe).",
    )


class RoomSettings(_Strict):
    name: str = Field(min_length=1, max_length=64, description="Room name.")
    unit_id: int = Field(ge=1, le=247, description="Modbus unit id of the room's sensor.")
    setpoint_celsius: float = Field(default=2.0, ge=-40, le=30, description="Thermostat setpoint.")
    initial_celsius: float | None = Field(
        default=None, ge=-40, le=60, description="Temperature at start (default: setpoint)."
    )
    ambient_celsius: float = Field(
        default=26.0, ge=-20, le=50, description="Hall temperature outside the room."
    )
    cooling_time_constant_s: float = Field(
        default=900.0, gt=0, description="How fast the running compressor pulls to setpoint."
    )
    leak_time_constant_s: float = Field(
        default=7200.0, gt=0, description="Warming through walls with the compressor failed."
    )
    door_time_constant_s: float = Field(
        default=600.0, gt=0, description="Air exchange with the hall while the door is open."
    )
    humidity_percent: float = Field(
        default=90.0, ge=0, le=100, description="Room humidity the humidifier holds."
    )
    ambient_humidity_percent: float = Field(
        default=60.0, ge=0, le=100, description="Hall humidity."
    )
    humidity_time_constant_s: float = Field(
        default=600.0, gt=0, description="How fast humidity returns to the room level."
    )
    core_probes: list[CoreProbeSettings] = Field(
        default_factory=list, description="Fruit-core probes of a batch cooling in the room."
    )
    door_unit_id: int | None = Field(
        default=None, ge=1, le=247,
        description="The door contact, served at this unit id as a digital-input module "
        "(profile door-contact: discrete input 0, true = open).",
    )
    door_name: str | None = Field(
        default=None, min_length=1, max_length=64, description="The door contact's device name."
    )


class ScenarioEvent(_Strict):
    at_s: float = Field(ge=0, description="Seconds after the simulator starts.")
    unit_id: int = Field(ge=1, le=247, description="Which room.")
    action: Literal[
        "door_open", "door_close", "compressor_fail", "compressor_restore", "setpoint"
    ] = Field(description="What happens.")
    value: float | None = Field(default=None, description="New setpoint for 'setpoint'.")


class ColdroomSimSettings(_Strict):
    layout: Layout = Field(
        default="xy-md02", description="Register layout every room's sensor uses."
    )
    rooms: list[RoomSettings] = Field(min_length=1, description="Rooms, one Modbus unit id each.")
    events: list[ScenarioEvent] = Field(default_factory=list, description="Scripted scenario.")

    @model_validator(mode="after")
    def _check(self) -> ColdroomSimSettings:
        ids = [r.unit_id for r in self.rooms]
        probe_ids = [p.unit_id for r in self.rooms for p in r.core_probes if p.unit_id is not None]
        probe_ids += [r.door_unit_id for r in self.rooms if r.door_unit_id is not None]
        if len(set(ids + probe_ids)) != len(ids + probe_ids):
            raise ValueError("rooms: unit ids (rooms and core probes) must be unique")
        for e in self.events:
            if e.unit_id not in ids:
                raise ValueError(f"events: no room with unit id {e.unit_id}")
            if e.action == "setpoint" and e.value is None:
                raise ValueError("events: 'setpoint' needs a value")
        return self


def demo_settings(rooms: int = 4, layout: Layout = "xy-md02") -> ColdroomSimSettings:
    """``rooms`` rooms at 2 degC (unit ids 1..N). Scenario: room 1's door opens at 30 s for 60 s;
    room 2's compressor fails at 60 s and is repaired at 1860 s."""
    room_list = [RoomSettings(name=f"room-{i}", unit_id=i) for i in range(1, rooms + 1)]
    events: list[ScenarioEvent] = [
        ScenarioEvent(at_s=30, unit_id=1, action="door_open"),
        ScenarioEvent(at_s=90, unit_id=1, action="door_close"),
    ]
    if rooms >= 2:
        events += [
            ScenarioEvent(at_s=60, unit_id=2, action="compressor_fail"),
            ScenarioEvent(at_s=1860, unit_id=2, action="compressor_restore"),
        ]
    return ColdroomSimSettings(layout=layout, rooms=room_list, events=events)


@dataclass
class RoomState:
    settings: RoomSettings
    temperature_celsius: float
    humidity_percent: float
    setpoint_celsius: float
    compressor_ok: bool = True
    door_open: bool = False
    # Fault injection in the request hook.
    fault: Literal["none", "exception", "silent"] = "none"
    exception_code: int = int(ExcCodes.DEVICE_FAILURE)
    delay_s: float = 0.0
    requests: int = 0
    config_registers: dict[int, int] = field(default_factory=dict)
    core_celsius: dict[str, float] = field(default_factory=dict)  # true core temperature per probe

    def relax(self, dt_s: float) -> None:
        """Exact solution of the linear room model over ``dt_s`` with constant inputs."""
        if dt_s <= 0:
            return
        s = self.settings
        k_leak = 1.0 / s.leak_time_constant_s
        k_door = 1.0 / s.door_time_constant_s if self.door_open else 0.0
        k_cool = 1.0 / s.cooling_time_constant_s if self.compressor_ok else 0.0
        # The compressor is sized to hold exactly the setpoint against wall leakage, so with the
        # door shut the room settles at the setpoint; an open door or a failure pulls it warmer.
        cool_target = (
            self.setpoint_celsius - (k_leak / k_cool) * (s.ambient_celsius - self.setpoint_celsius)
            if k_cool
            else 0.0
        )
        k = k_cool + k_leak + k_door
        t_eq = (k_cool * cool_target + (k_leak + k_door) * s.ambient_celsius) / k
        air_before = self.temperature_celsius
        self.temperature_celsius = t_eq + (self.temperature_celsius - t_eq) * math.exp(-k * dt_s)
        # The core follows the air; over a step the air is taken at its mean (exact while the
        # room holds its setpoint, as a pre-cooling room does).
        air = (air_before + self.temperature_celsius) / 2
        for probe in s.core_probes:
            core = self.core_celsius.setdefault(probe.name, probe.initial_celsius)
            self.core_celsius[probe.name] = air + (core - air) * math.exp(-dt_s / probe.time_constant_s)
        k_h = 1.0 / s.humidity_time_constant_s
        kh = k_h + k_door
        h_eq = (k_h * s.humidity_percent + k_door * s.ambient_humidity_percent) / kh
        self.humidity_percent = h_eq + (self.humidity_percent - h_eq) * math.exp(-kh * dt_s)


class ColdroomModel:
    """All rooms, advanced by an injected clock through the scripted scenario."""

    def __init__(self, settings: ColdroomSimSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self._clock = clock
        self._t0 = clock()
        self._t = self._t0
        self.rooms: dict[int, RoomState] = {
            r.unit_id: RoomState(
                settings=r,
                temperature_celsius=r.setpoint_celsius
                if r.initial_celsius is None
                else r.initial_celsius,
                humidity_percent=r.humidity_percent,
                setpoint_celsius=r.setpoint_celsius,
                core_celsius={p.name: p.initial_celsius for p in r.core_probes},
            )
            for r in settings.rooms
        }
        self._events = sorted(settings.events, key=lambda e: e.at_s)
        self._next_event = 0

    def now(self) -> float:
        return self._clock()

    @property
    def elapsed_s(self) -> float:
        return self._t - self._t0

    def advance(self) -> None:
        """Bring every room to the clock's now, applying scenario events on the way."""
        now = self._clock()
        while (
            self._next_event < len(self._events)
            and self._t0 + self._events[self._next_event].at_s <= now
        ):
            event = self._events[self._next_event]
            self._relax_all(self._t0 + event.at_s)
            self._apply(event)
            self._next_event += 1
        self._relax_all(now)

    def _relax_all(self, t: float) -> None:
        if t <= self._t:
            return
        for room in self.rooms.values():
            room.relax(t - self._t)
        self._t = t

    def _apply(self, event: ScenarioEvent) -> None:
        room = self.rooms[event.unit_id]
        if event.action == "door_open":
            room.door_open = True
        elif event.action == "door_close":
            room.door_open = False
        elif event.action == "compressor_fail":
            room.compressor_ok = False
        elif event.action == "compressor_restore":
            room.compressor_ok = True
        elif event.action == "setpoint" and event.value is not None:
            room.setpoint_celsius = event.value

    def room(self, unit_id: int) -> RoomState:
        self.advance()
        return self.rooms[unit_id]


# -- in-memory sensors, for unit tests ---------------------------------------------------------


class SimulatedClimateSensor:
    """A room's air sensor (temperature, humidity, door contact) read straight from the model:
    a ``drivers.interfaces.ClimateSensor`` without a wire, for unit tests on a fake clock.
    ``fail`` makes reads raise, as a sensor that stopped answering."""

    def __init__(self, model: ColdroomModel, unit_id: int, name: str | None = None) -> None:
        self.model = model
        self.unit_id = unit_id
        self.name = name or model.rooms[unit_id].settings.name
        self.fail = False

    async def open(self) -> None:
        return None

    def read_now(self) -> SensorReading:
        if self.fail:
            raise DeviceTimeout(self.name, "no answer (simulated)")
        room = self.model.room(self.unit_id)
        return SensorReading(
            temperature_celsius=round(room.temperature_celsius, 1),  # the register's 0.1 degC
            relative_humidity_ratio=round(room.humidity_percent, 1) / 100.0,
            t_s=self.model.now(),
            door_open=room.door_open,
        )

    async def read(self) -> SensorReading:
        return self.read_now()

    async def close(self) -> None:
        return None


class SimulatedCoreProbe:
    """A fruit-core probe of the model's room, with its configured Gaussian noise."""

    def __init__(self, model: ColdroomModel, unit_id: int, probe: str, name: str | None = None) -> None:
        self.model = model
        self.unit_id = unit_id
        self.probe = probe
        self.name = name or probe
        settings = next(p for p in model.rooms[unit_id].settings.core_probes if p.name == probe)
        self._noise_c = settings.noise_celsius
        self._rng = random.Random(settings.seed)

    async def open(self) -> None:
        return None

    def read_now(self) -> SensorReading:
        core = self.model.room(self.unit_id).core_celsius[self.probe]
        return SensorReading(
            temperature_celsius=core + self._rng.gauss(0.0, self._noise_c), relative_humidity_ratio=None,
            t_s=self.model.now(),
        )

    async def read(self) -> SensorReading:
        return self.read_now()

    async def close(self) -> None:
        return None


# -- Modbus face ---------------------------------------------------------------------------

_FC_TABLE = {
    1: "coil",
    5: "coil",
    15: "coil",
    2: "discrete",
    4: "input",
    3: "holding",
    6: "holding",
    16: "holding",
    23: "holding",
}


def tenths(value: float) -> int:
    """A value in x0.1 units as a 16-bit two's-complement register word."""
    return round(value * 10) & 0xFFFF


@dataclass(frozen=True)
class LayoutMap:
    """Where a layout puts things; (table, address) pairs."""

    temperature: tuple[str, int]
    humidity: tuple[str, int]
    config: dict[int, int]  # holding address -> initial value (unit id filled per room)
    unit_id_address: int

    def readable(self, table: str, address: int, count: int) -> bool:
        addrs = set(range(address, address + count))
        measured = {a for (t, a) in (self.temperature, self.humidity) if t == table}
        config = set(self.config) if table == "holding" else set()
        return addrs <= measured | config

    def writable(self, table: str, address: int, count: int) -> bool:
        return table == "holding" and set(range(address, address + count)) <= set(self.config)


LAYOUTS: dict[str, LayoutMap] = {
    "xy-md02": LayoutMap(
        ("input", 0x0001), ("input", 0x0002), {0x0101: 0, 0x0102: 0, 0x0103: 0, 0x0104: 0}, 0x0101
    ),
    "srth100": LayoutMap(
        ("holding", 0x0000), ("holding", 0x0001), {0x0014: 0, 0x0015: 0, 0x0017: 0}, 0x0017
    ),
}


class ColdroomServer:
    """Serves a ``ColdroomModel`` as Modbus sensors, one unit id per room."""

    def __init__(self, model: ColdroomModel) -> None:
        self.model = model
        self.layout = LAYOUTS[model.settings.layout]
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self.port = 0

    def _devices(self) -> list[SimDevice]:
        devices = []
        addrs = sorted({self.layout.temperature[1], self.layout.humidity[1], *self.layout.config})
        for unit_id in self.model.rooms:
            # One shared block; the hook enforces which table each address belongs to, as the
            # real sensor does (SimDevice's shared block would answer FC3 and FC4 alike).
            simdata = [SimData(a, values=0, datatype=DataType.REGISTERS) for a in addrs]
            devices.append(
                SimDevice(id=unit_id, simdata=simdata, action=self._make_action(unit_id))
            )
            door_id = self.model.rooms[unit_id].settings.door_unit_id
            if door_id is not None:
                devices.append(SimDevice(
                    id=door_id, simdata=[SimData(0, values=0, datatype=DataType.REGISTERS)],
                    action=self._make_door_action(unit_id),
                ))
            for probe in self.model.rooms[unit_id].settings.core_probes:
                if probe.unit_id is not None:
                    probe_data = [SimData(a, values=0, datatype=DataType.REGISTERS) for a in addrs]
                    devices.append(SimDevice(
                        id=probe.unit_id, simdata=probe_data, action=self._make_probe_action(unit_id, probe)
                    ))
        # Unit id 0 catches every id not defined: stay silent like a real RS-485 bus, instead
        # of pymodbus's default exception 4 for an unknown id.
        devices.append(
            SimDevice(
                id=0,
                simdata=[SimData(0, count=65536, values=0, datatype=DataType.REGISTERS)],
                action=_silent,
            )
        )
        return devices

    def _make_action(self, unit_id: int) -> SimAction:
        layout = self.layout
        room = self.model.rooms[unit_id]
        room.config_registers = dict(layout.config)
        room.config_registers[layout.unit_id_address] = unit_id

        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            room.requests += 1
            if room.delay_s > 0:
                await asyncio.sleep(room.delay_s)
            if room.fault == "silent":
                # The request handler drops the reply for NoSuchIdException when the server
                # ignores missing devices: the master sees a timeout, as from a dead sensor.
                raise NoSuchIdException(f"room {unit_id} silent")
            if room.fault == "exception":
                return ExcCodes(room.exception_code)
            table = _FC_TABLE.get(function_code, "")
            if set_values is not None:
                if not layout.writable(table, address, count):
                    return ExcCodes.ILLEGAL_ADDRESS
                for i, v in enumerate(set_values):
                    room.config_registers[address + i] = int(v)
                return None
            if not layout.readable(table, address, count):
                return ExcCodes.ILLEGAL_ADDRESS
            state = self.model.room(unit_id)
            registers[layout.temperature[1] - start_address] = tenths(state.temperature_celsius)
            registers[layout.humidity[1] - start_address] = tenths(state.humidity_percent)
            for a, v in room.config_registers.items():
                registers[a - start_address] = v
            return None

        return action

    def _make_door_action(self, unit_id: int) -> SimAction:
        """The room's door contact: discrete input 0 (bit 0 of the module's one word)."""

        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            if _FC_TABLE.get(function_code) != "discrete" or address != 0 or count != 1:
                return ExcCodes.ILLEGAL_ADDRESS
            registers[0] = 1 if self.model.room(unit_id).door_open else 0
            return None

        return action

    def _make_probe_action(self, unit_id: int, probe: CoreProbeSettings) -> SimAction:
        """A fruit-core probe: the room's layout, temperature = the core (with noise)."""
        layout = self.layout
        rng = random.Random(probe.seed)
        config = dict(layout.config)
        config[layout.unit_id_address] = probe.unit_id or 0

        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            table = _FC_TABLE.get(function_code, "")
            if set_values is not None or not layout.readable(table, address, count):
                return ExcCodes.ILLEGAL_ADDRESS
            core = self.model.room(unit_id).core_celsius[probe.name] + rng.gauss(0.0, probe.noise_celsius)
            registers[layout.temperature[1] - start_address] = tenths(core)
            registers[layout.humidity[1] - start_address] = 0
            for a, v in config.items():
                registers[a - start_address] = v
            return None

        return action

    async def start_tcp(
        self, host: str = "127.0.0.1", port: int = 0, framer: FramerType = FramerType.SOCKET
    ) -> int:
        """Listen on ``host:port`` (0 = any free port); returns the bound port."""
        server = ModbusTcpServer(
            self._devices(), address=(host, port), framer=framer, ignore_missing_devices=True
        )
        await server.serve_forever(background=True)
        self._server = server
        self.port = _bound_port(server)
        return self.port

    async def start_serial(self, device: str, baudrate: int = 9600) -> None:
        """Serve Modbus RTU on a serial device (a pty slave in tests)."""
        server = ModbusSerialServer(
            self._devices(),
            framer=FramerType.RTU,
            port=device,
            baudrate=baudrate,
            ignore_missing_devices=True,
        )
        await server.serve_forever(background=True)
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None


async def _silent(
    function_code: int,
    start_address: int,
    address: int,
    count: int,
    registers: list[int],
    set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    raise NoSuchIdException("no such unit on this bus")


def _bound_port(server: ModbusTcpServer) -> int:
    listener = server.transport
    sockets = getattr(listener, "sockets", None)
    if not sockets:
        raise RuntimeError("Modbus server is not listening")
    return int(sockets[0].getsockname()[1])
