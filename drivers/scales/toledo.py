"""Toledo continuous output: the 18-byte frame (STX, 3 status words, weight, tare, CR, checksum).

Layout (PROTOCOLS.md §2.2)::

    STX SWA SWB SWC W W W W W W T T T T T T CR CHK

Weight and tare are six ASCII digits without sign or decimal point; the status words carry
them. CHK makes the 7-bit sum of all 18 bytes zero. The frame is 7-bit: any byte with bit 7
set is corrupt (a parity bit that survived the UART, or noise).

Status words as decoded here:

* SWA bits 0-2: where the decimal point is. 0 = two implied zeros (x00), 1 = one implied
  zero (x0), 2 = no decimal, 3..7 = 1..5 decimal places. Bits 3-4: increment 1/2/5 (code 00 is
  undefined and rejected). Bit 5 is always 1, bit 6 always 0.
* SWB bit 0 net, bit 1 negative, bit 2 over/under range, bit 3 motion, bit 4 kg (else lb).
  Bits 5 and 6 differ between vendors and are not checked.
* SWC bit 5 is always 1; the other bits (print request, keyboard tare) are not used.
"""

from __future__ import annotations

from drivers.interfaces import CorruptFrame
from drivers.scales.errors import ScaleRangeError
from drivers.scales.frames import (
    CR,
    GRAMS_PER_UNIT,
    STX,
    IndicatorReading,
    StxFramer,
    require_ascii_digits,
)

FRAME_LENGTH = 18

# Exponent of ten applied to the six transmitted digits, by SWA bits 0-2.
_POWER_OF_TEN_BY_DECIMAL_CODE = {0: 2, 1: 1, 2: 0, 3: -1, 4: -2, 5: -3, 6: -4, 7: -5}
_INCREMENT_BY_CODE = {1: 1, 2: 2, 3: 5}


def seven_bit_sum(data: bytes) -> int:
    return sum(data) & 0x7F


def _scaled(digits: int, power_of_ten: int) -> float:
    # Divide rather than multiply by 10**-n so 12345 with 3 decimals is exactly 12.345.
    return digits * 10**power_of_ten if power_of_ten >= 0 else digits / 10**-power_of_ten


def parse_frame(frame: bytes, device: str) -> IndicatorReading:
    """Decode one complete 18-byte frame. Raises CorruptFrame or ScaleRangeError."""
    if len(frame) != FRAME_LENGTH:
        raise CorruptFrame(device, f"Toledo frame is {len(frame)} bytes, expected {FRAME_LENGTH}")
    if frame[0] != STX or frame[16] != CR:
        raise CorruptFrame(device, f"Toledo frame lacks STX/CR: {frame!r}")
    if any(b & 0x80 for b in frame):
        raise CorruptFrame(device, f"Toledo frame has a byte with bit 7 set: {frame!r}")
    if seven_bit_sum(frame) != 0:
        raise CorruptFrame(device, f"Toledo checksum mismatch: {frame!r}")
    swa, swb, swc = frame[1], frame[2], frame[3]
    if swa & 0x60 != 0x20:
        raise CorruptFrame(device, f"Toledo status word A 0x{swa:02X} has bits 5/6 wrong")
    if (swa >> 3) & 0x03 not in _INCREMENT_BY_CODE:
        raise CorruptFrame(device, f"Toledo status word A 0x{swa:02X} has no valid increment")
    if not swc & 0x20:
        raise CorruptFrame(device, f"Toledo status word C 0x{swc:02X} lacks bit 5")
    weight_digits = require_ascii_digits(frame[4:10], device, "Toledo weight")
    tare_digits = require_ascii_digits(frame[10:16], device, "Toledo tare")

    if swb & 0x04:
        raise ScaleRangeError(device, "out", "Toledo indicator reports over/under range")
    power = _POWER_OF_TEN_BY_DECIMAL_CODE[swa & 0x07]
    grams_per_unit = GRAMS_PER_UNIT["kg"] if swb & 0x10 else GRAMS_PER_UNIT["lb"]
    weight = _scaled(weight_digits, power) * grams_per_unit
    if swb & 0x02:
        weight = -weight
    return IndicatorReading(
        weight_g=weight,
        stable=not swb & 0x08,
        tare_g=_scaled(tare_digits, power) * grams_per_unit,
        net=bool(swb & 0x01),
    )


def framer(device: str) -> StxFramer:
    return StxFramer(FRAME_LENGTH, parse_frame, device)
