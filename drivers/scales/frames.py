"""What every indicator protocol parser produces, and the STX-synchronised stream splitter.

A parser turns ONE complete frame into an ``IndicatorReading`` or raises a typed error; it
never guesses. ``StxFramer`` cuts a continuous byte stream into candidate frames of a fixed
length starting at STX and resynchronises after a bad candidate by moving one byte on, so a
truncated or garbled frame costs that frame only. Parsers do not know about time or I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from drivers.interfaces import CorruptFrame, DeviceError

STX = 0x02
ETX = 0x03
CR = 0x0D
LF = 0x0A

GRAMS_PER_UNIT: dict[str, float] = {
    "g": 1.0,
    "kg": 1000.0,
    "mg": 0.001,
    "lb": 453.59237,  # international avoirdupois pound, exact by definition
    "oz": 28.349523125,
}


@dataclass(frozen=True, slots=True)
class IndicatorReading:
    """One weight as the indicator sent it, converted to grams.

    ``stable`` is None when the frame format carries no motion flag (XK3190-A9); the driver
    then derives stability from consecutive frames.
    """

    weight_g: float
    stable: bool | None
    tare_g: float | None = None
    net: bool = False


@dataclass(frozen=True, slots=True)
class FrameResult:
    """One candidate frame cut from a stream: its bytes and what the parser made of it."""

    raw: bytes
    outcome: IndicatorReading | DeviceError


class StreamFramer(Protocol):
    """Cuts a continuous byte stream into parsed frames; keeps partial frames between calls."""

    def feed(self, data: bytes) -> list[FrameResult]: ...


FrameParser = Callable[[bytes, str], IndicatorReading]


class StxFramer:
    """Fixed-length frames that start with STX (Toledo 18 bytes, XK3190-A9 12 bytes).

    The result does not depend on how the bytes were chunked: feeding a stream in one call
    or byte by byte gives the same frames.
    """

    def __init__(self, frame_length: int, parse: FrameParser, device: str) -> None:
        self._frame_length = frame_length
        self._parse = parse
        self._device = device
        self._buffer = bytearray()
        self.discarded_bytes = 0

    def feed(self, data: bytes) -> list[FrameResult]:
        self._buffer += data
        results: list[FrameResult] = []
        buf = self._buffer
        while True:
            start = buf.find(STX)
            if start < 0:
                self.discarded_bytes += len(buf)
                buf.clear()
                break
            if start:
                self.discarded_bytes += start
                del buf[:start]
            if len(buf) < self._frame_length:
                break
            candidate = bytes(buf[: self._frame_length])
            try:
                reading: IndicatorReading | DeviceError = self._parse(candidate, self._device)
            except CorruptFrame as exc:
                # Not a frame after all: this STX may be line noise or a checksum byte, so
                # look for the next STX one byte further on rather than a whole frame on.
                results.append(FrameResult(candidate, exc))
                self.discarded_bytes += 1
                del buf[:1]
                continue
            except DeviceError as exc:  # a valid frame that reports a device state (over range)
                reading = exc
            results.append(FrameResult(candidate, reading))
            del buf[: self._frame_length]
        return results


def require_ascii_digits(field: bytes, device: str, what: str) -> int:
    """The integer in an all-digit ASCII field; CorruptFrame for anything else."""
    if not field or any(b < 0x30 or b > 0x39 for b in field):
        raise CorruptFrame(device, f"{what} is not {len(field)} ASCII digits: {field!r}")
    return int(field)
