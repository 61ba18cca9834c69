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

    ``belt_position_cups`` is the encoder position at exposure, in cups, on the convention
    of ``PlcStatus.cup_counter`` (cup ``k`` sits at the inspection point when the position
    equals ``k``). Encoder-triggered cameras stamp it; free-running cameras leave it None and
    the runtime estimates it from the PLC.
    """

    image_bgr: np.ndarray
    t_s: float
    seq: int
    belt_position_cups: float | None = None


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
    weight_g: float
    stable: bool
    t_s: float


@runtime_checkable
class Scale(Protocol):
    """The load cell one lane's cups pass over, behind an indicator or transmitter."""

    name: str

    async def open(self) -> None: ...

    async def read_weight(self) -> WeightReading:
        """The weight on the load cell now. Raises DeviceError, never returns garbage."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PlcStatus:
    """What the PLC reports each poll.

    ``cup_counter`` is the 32-bit index of the cup at the inspection point (the camera exit);
    the PLC derives it from encoder counts. All lanes share one chain and one counter.
    """

    cup_counter: int
    belt_speed_cups_per_s: float
    running: bool
    outlet_full: tuple[bool, ...]
    t_s: float


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
    temperature_celsius: float | None
    relative_humidity_ratio: float | None
    t_s: float


@runtime_checkable
class ClimateSensor(Protocol):
    """A cold-room temperature / humidity sensor or room controller."""

    name: str

    async def open(self) -> None: ...

    async def read(self) -> SensorReading: ...

    async def close(self) -> None: ...
