"""Fuzzing the RTU receive path: pymodbus's RTU framer as the bus uses it, then our checks.

Properties: random bytes never crash it (only typed errors), and a true reply corrupted by
bit flips (up to 3 bits, or one burst of at most 16 bits: CRC-16 detects all of them) or by
truncation is never accepted. Accepting a different, CRC-valid frame is impossible under
these corruptions, so "accepted" must mean "exactly the true values".
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU

from drivers.interfaces import DeviceError
from drivers.modbus.client import values_from_response
from drivers.modbus.codec import crc16_modbus, rtu_crc_ok, rtu_frame

UNIT = 7
COUNT = 2
TRUE_VALUES = [0xFF33, 0x0384]  # -20.5 degC, 90.0 %RH


def true_reply(values: list[int] = TRUE_VALUES, unit: int = UNIT) -> bytes:
    body = bytes([unit, 0x04, 2 * len(values)]) + b"".join(v.to_bytes(2, "big") for v in values)
    return rtu_frame(body)


def receive(data: bytes, count: int = COUNT) -> list[int] | None:
    """What the client accepts from ``data`` for an FC4 read of ``count`` registers: the values,
    or None when no frame was accepted (the bus then reports corruption or a timeout)."""
    framer = FramerRTU(DecodePDU(False))  # the client-side decoder, as in TransactionManager
    try:
        _, pdu = framer.handleFrame(data, UNIT, 0)
    except ModbusIOException:
        return None
    if pdu is None:
        return None
    try:
        return values_from_response(pdu, "fuzz", UNIT, "input", 1, count)
    except DeviceError:
        return None


def test_true_reply_is_accepted() -> None:
    assert receive(true_reply()) == TRUE_VALUES
    assert rtu_crc_ok(true_reply())


@settings(max_examples=400, derandomize=True)
@given(st.binary(max_size=80))
@example(b"")
@example(bytes([UNIT, 0x84, 0x02]))
@example(rtu_frame(bytes([UNIT, 0x84, 0x02])))  # a valid exception reply: typed error, not values
@example(rtu_frame(bytes([UNIT, 0x04, 0x02, 0x00, 0x01])))  # valid frame, one register short
@example(rtu_frame(bytes([UNIT, 0x03, 0x04, 0, 1, 0, 2])))  # valid frame, wrong function
def test_random_bytes_never_crash_and_only_crc_valid_frames_pass(data: bytes) -> None:
    values = receive(data)
    if values is not None:
        # Something was accepted: it must be a CRC-valid FC4 frame for our unit with exactly
        # the registers asked, somewhere in the bytes.
        assert len(values) == COUNT
        frame = rtu_frame(bytes([UNIT, 0x04, 4]) + b"".join(v.to_bytes(2, "big") for v in values))
        assert frame in data


@settings(max_examples=400, derandomize=True)
@given(
    st.lists(st.integers(0, 0xFFFF), min_size=COUNT, max_size=COUNT),
    st.lists(st.integers(0, 8 * 9 - 1), min_size=1, max_size=3, unique=True),
)
def test_bit_flips_are_never_accepted(values: list[int], flips: list[int]) -> None:
    frame = bytearray(true_reply(values))
    for bit in flips:
        frame[bit // 8] ^= 1 << (bit % 8)
    assert receive(bytes(frame)) is None


@settings(max_examples=300, derandomize=True)
@given(
    st.lists(st.integers(0, 0xFFFF), min_size=COUNT, max_size=COUNT),
    st.integers(0, 8 * 9 - 16),
    st.integers(1, 0xFFFF),
)
def test_burst_errors_up_to_16_bits_are_never_accepted(
    values: list[int], start_bit: int, pattern: int
) -> None:
    frame = bytearray(true_reply(values))
    as_int = int.from_bytes(frame, "big") ^ (pattern << (len(frame) * 8 - 16 - start_bit))
    corrupted = as_int.to_bytes(len(frame), "big")
    assert corrupted != bytes(frame)
    assert receive(corrupted) is None


@settings(max_examples=200, derandomize=True)
@given(st.lists(st.integers(0, 0xFFFF), min_size=COUNT, max_size=COUNT), st.integers(0, 8))
def test_truncated_replies_are_never_accepted(values: list[int], keep: int) -> None:
    assert receive(true_reply(values)[:keep]) is None


@settings(max_examples=200, derandomize=True)
@given(
    st.binary(min_size=1, max_size=20),
    st.lists(st.integers(0, 0xFFFF), min_size=COUNT, max_size=COUNT),
)
def test_garbage_before_a_true_reply_never_yields_wrong_values(
    prefix: bytes, values: list[int]
) -> None:
    # The framer hunts for a frame start; whatever it finds must be the true reply or nothing.
    got = receive(prefix + true_reply(values))
    assert got is None or got == values


def test_crc_catches_every_single_bit_error_in_a_frame() -> None:
    frame = true_reply()
    for bit in range(len(frame) * 8):
        corrupted = bytearray(frame)
        corrupted[bit // 8] ^= 1 << (bit % 8)
        assert crc16_modbus(bytes(corrupted[:-2])) != int.from_bytes(corrupted[-2:], "little")
