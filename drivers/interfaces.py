"""Device interfaces the line runtime is written against.

Each device kind is a ``typing.Protocol``. Real implementations live in ``drivers/``,
simulated ones in ``simulators/``; the composition root (``api/compose.py``) picks one per
device from the config, once. Nothing else in the code base knows which it got.

Values crossing these interfaces are in SI-ish units with the unit in the name
(grams, millimetres, seconds, cups).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class DeviceError(Exception):
    """A device did not deliver a valid value. Always names the device."""

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device


class DeviceTimeout(DeviceError):
    """The device did not answer in time."""


class DeviceDisconnected(DeviceError):
    """The transport to the device is down (cable, gateway, USB adapter)."""


class CorruptFrame(DeviceError):
    """Bytes arrived but failed framing or checksum; the value was rejected."""


class EndOfStream(DeviceError):
    """A finite camera source (a video file) has no more frames."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One camera image.

    ``t_s`` is the exposure time on the line PC's monotonic clock: the driver stamps the
    frame in its reader thread when it arrives and subtracts the camera's configured latency
    (exposure, readout, transfer), so a busy event loop never shifts it. Cameras carry no
    belt position: the runtime places each frame on the belt from the PLC (see
    ``docs/plc-register-contract.md``, "Camera trigger").
    """

    image_bgr: np.ndarray
    t_s: float
    seq: int


@runtime_checkable
class Camera(Protocol):
    name: str

    async def open(self) -> None: ...

    async def read(self) -> Frame:
        """Wait for and return the next frame. Raises DeviceError / EndOfStream."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class WeightReading:
    """One weight from an indicator. ``t_s`` is when its bytes arrived, on the line PC's
    monotonic clock, stamped in the driver's reader thread (never on the event loop).

    ``backlogged``: the reading came in one read with later ones, so the reader thread was
    behind (descheduled on a busy PC) and the stamp is only an upper bound of its arrival; it
    is not used to weigh a cup. A reader that keeps up gets one frame per read; the last frame
    of a read arrived within a frame period of its stamp.
    """

    weight_g: float
    stable: bool
    t_s: float
    backlogged: bool = False


@runtime_checkable
class Scale(Protocol):
    """The load cell one lane's cups pass over, behind an indicator or transmitter.

    The driver reads the indicator continuously in its own thread (a streaming indicator's
    frames, or requests sent at a fixed rate) and stamps every reading there. The runtime
    takes the readings in batches and matches each to the cup that was on the load cell at
    its time, from the encoder; no reading depends on when the event loop gets to it.
    """

    name: str

    async def open(self) -> None: ...

    def take_readings(self) -> list[WeightReading]:
        """Every valid reading received since the last call, oldest first. Never blocks."""
        ...

    def is_up(self) -> bool:
        """Whether the indicator is delivering readings now (connected, not stale)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PlcStatus:
    """What the PLC reports each poll.

    ``cup_counter`` is the 32-bit index of the cup at the inspection point (the camera exit);
    the PLC derives it from encoder counts. All lanes share one chain and one counter.
    ``position_cups`` adds the fraction of the current cup (the counter's scale, so it wraps
    with it). ``camera_trigger_pitch_cups`` is the encoder distance between camera triggers
    (None: the camera is not triggered by the PLC). ``t_s`` is when the reply arrived.
    """

    cup_counter: int
    belt_speed_cups_per_s: float
    running: bool
    outlet_full: tuple[bool, ...]
    t_s: float
    position_cups: float | None = None
    camera_trigger_pitch_cups: float | None = None
    camera_triggers: int | None = None  # triggers fired since power-up (32-bit, wraps)
    carton_full: tuple[bool, ...] = ()  # per outlet: its carton is full (contract block 200; empty: not read)


@dataclass(frozen=True, slots=True)
class OutletDecision:
    lane: int
    cup_index: int
    outlet: int  # 0 = recirculate (the PLC's default)


@runtime_checkable
class Plc(Protocol):
    """The controller that owns the encoder and fires the outlet solenoids."""

    name: str

    async def open(self) -> None: ...

    async def read_status(self) -> PlcStatus: ...

    async def write_decisions(self, decisions: Sequence[OutletDecision]) -> None:
        """Write outlets into the PLC's cup-indexed ring buffer (one batch)."""
        ...

    async def heartbeat(self) -> None:
        """Bump the watchdog word; the PLC recirculates everything if it stalls."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SensorReading:
    """One reading of a climate sensor: air or fruit-core temperature, humidity (0-1), and a
    door contact where the device has one. ``t_s`` is when it was read, on the line's monotonic
    clock. What the values mean for a room (bands, alarms) is the cold chain's business
    (``grading.coldchain``), never the driver's."""

    temperature_celsius: float | None
    relative_humidity_ratio: float | None
    t_s: float
    door_open: bool | None = None


@runtime_checkable
class ClimateSensor(Protocol):
    """A cold-room sensor: air temperature / humidity, a fruit-core probe, a door contact, or a
    room controller giving several of them. The real one is
    ``drivers.modbus.sensor.ModbusClimateSensor``; the in-memory one for unit tests is
    ``simulators.coldroom.SimulatedClimateSensor``."""

    name: str

    async def open(self) -> None: ...

    async def read(self) -> SensorReading: ...

    async def close(self) -> None: ...
