"""XK3190-A9 / A9+ continuous output with ``tF=0``: the 12-byte frame.

Layout (PROTOCOLS.md §2.3)::

    STX  sign  d d d d d d  decimals  XOR-hi XOR-lo  ETX
    02   +/-   weight, MSD first  '0'-'4'  ASCII hex   03

The check is the XOR of the 8 bytes sign..decimals, each nibble sent as an upper-case hex
digit. The frame carries no unit and no motion flag: the unit is configured (the indicator
displays kg unless set otherwise) and the driver derives stability from consecutive frames.
"""

from __future__ import annotations

from functools import reduce
from operator import xor

from drivers.interfaces import CorruptFrame
from drivers.scales.frames import (
    ETX,
    GRAMS_PER_UNIT,
    STX,
    IndicatorReading,
    StxFramer,
    require_ascii_digits,
)

FRAME_LENGTH = 12
_HEX_DIGITS = b"0123456789ABCDEF"


def xor_check(body: bytes) -> bytes:
    """The two check characters for the sign..decimals bytes."""
    value = reduce(xor, body, 0)
    return bytes((_HEX_DIGITS[value >> 4], _HEX_DIGITS[value & 0x0F]))


def parse_frame(frame: bytes, device: str, unit: str = "kg") -> IndicatorReading:
    """Decode one complete 12-byte frame. Raises CorruptFrame."""
    if len(frame) != FRAME_LENGTH:
        raise CorruptFrame(device, f"XK3190 frame is {len(frame)} bytes, expected {FRAME_LENGTH}")
    if frame[0] != STX or frame[11] != ETX:
        raise CorruptFrame(device, f"XK3190 frame lacks STX/ETX: {frame!r}")
    body = frame[1:9]
    if frame[9:11] != xor_check(body):
        raise CorruptFrame(device, f"XK3190 XOR check mismatch: {frame!r}")
    sign = frame[1]
    if sign not in b"+-":
        raise CorruptFrame(device, f"XK3190 sign byte {sign:#04x} is not + or -")
    digits = require_ascii_digits(frame[2:8], device, "XK3190 weight")
    decimals = frame[8] - 0x30
    if not 0 <= decimals <= 4:
        raise CorruptFrame(device, f"XK3190 decimals byte {frame[8]:#04x} is not '0'..'4'")
    weight = digits / 10**decimals * GRAMS_PER_UNIT[unit]
    return IndicatorReading(weight_g=-weight if sign == ord("-") else weight, stable=None)


class _Parser:
    def __init__(self, unit: str) -> None:
        if unit not in GRAMS_PER_UNIT:
            raise ValueError(f"unknown weight unit {unit!r}")
        self._unit = unit

    def __call__(self, frame: bytes, device: str) -> IndicatorReading:
        return parse_frame(frame, device, self._unit)


def framer(device: str, unit: str = "kg") -> StxFramer:
    return StxFramer(FRAME_LENGTH, _Parser(unit), device)
