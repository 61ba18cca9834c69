"""Register encoding and decoding per ``RegisterSpec``, and the Modbus RTU CRC.

Pure functions on lists of 16-bit words; no I/O. pymodbus's ``convert_from_registers`` has no
byte swap, and we want one rule for every device, so the conversion lives here.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from drivers.modbus.errors import ModbusConfigError
from drivers.modbus.settings import RegisterSpec

_STRUCT = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f"}
_WORDS = {"bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}


def register_count(spec: RegisterSpec) -> int:
    """How many registers (or bits, for coils and discrete inputs) the value spans."""
    return _WORDS[spec.type]


def _swap_bytes(word: int) -> int:
    return ((word & 0xFF) << 8) | (word >> 8)


def decode_raw(spec: RegisterSpec, words: Sequence[int]) -> float:
    """The raw (unscaled) value of ``spec`` from its registers."""
    n = register_count(spec)
    if len(words) != n:
        raise ValueError(f"{spec.name}: needs {n} registers, got {len(words)}")
    if spec.type == "bool":
        return 1.0 if words[0] else 0.0
    regs = [w & 0xFFFF for w in words]
    if any(w != r for w, r in zip(words, regs, strict=True)):
        raise ValueError(f"{spec.name}: register value out of 16-bit range")
    if spec.byte_swap:
        regs = [_swap_bytes(w) for w in regs]
    if n == 2 and spec.word_order == "little":
        regs.reverse()
    raw_bytes = b"".join(w.to_bytes(2, "big") for w in regs)
    (value,) = struct.unpack(">" + _STRUCT[spec.type], raw_bytes)
    return float(value)


def decode(spec: RegisterSpec, words: Sequence[int]) -> float:
    """The value of ``spec`` in its unit: ``raw * scale + offset``."""
    return decode_raw(spec, words) * spec.scale + spec.offset


def encode(spec: RegisterSpec, value: float) -> list[int]:
    """Registers that decode to ``value`` (rounded to the register's resolution)."""
    if spec.scale == 0:
        raise ModbusConfigError(f"{spec.name}: scale 0 cannot be encoded")
    raw = (value - spec.offset) / spec.scale
    if spec.type == "bool":
        return [1 if raw else 0]
    if spec.type == "float32":
        raw_bytes = struct.pack(">f", raw)
    else:
        if not math.isfinite(raw):
            raise ValueError(f"{spec.name}: {value} is not finite")
        raw_int = round(raw)
        try:
            raw_bytes = struct.pack(">" + _STRUCT[spec.type], raw_int)
        except struct.error as exc:
            raise ValueError(f"{spec.name}: {value} does not fit {spec.type}") from exc
    regs = [int.from_bytes(raw_bytes[i : i + 2], "big") for i in range(0, len(raw_bytes), 2)]
    if len(regs) == 2 and spec.word_order == "little":
        regs.reverse()
    if spec.byte_swap:
        regs = [_swap_bytes(w) for w in regs]
    return regs


def crc16_modbus(data: bytes) -> int:
    """Modbus RTU CRC-16 (reflected polynomial 0xA001, initial 0xFFFF).

    Returned as the integer whose little-endian bytes are appended to the frame
    (the CRC goes on the wire low byte first).
    """
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def rtu_frame(payload: bytes) -> bytes:
    """``payload`` (unit id, function code, data) with its CRC appended."""
    return payload + crc16_modbus(payload).to_bytes(2, "little")


def rtu_crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16_modbus(frame[:-2]) == int.from_bytes(frame[-2:], "little")
