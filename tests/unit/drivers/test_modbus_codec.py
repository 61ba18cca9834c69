"""Register decoding/encoding, the RTU CRC, read planning and built-in profiles."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from pymodbus.framer import FramerRTU

from drivers.modbus import codec
from drivers.modbus.errors import ModbusConfigError
from drivers.modbus.profiles import load_profile, profile_names
from drivers.modbus.sensor import plan_reads
from drivers.modbus.settings import ModbusSensorSettings, RegisterSpec


def spec(type_: str = "int16", **kw: object) -> RegisterSpec:
    table = "coil" if type_ == "bool" else "holding"
    return RegisterSpec.model_validate(
        {"name": "v", "table": table, "address": 0, "type": type_, **kw}
    )


def test_xy_md02_examples_from_the_sensor_documentation() -> None:
    t = load_profile("xy-md02")[0]
    assert t.name == "temperature" and t.table == "input" and t.address == 1
    assert codec.decode(t, [0xFF33]) == pytest.approx(-20.5)
    assert codec.decode(t, [0x0131]) == pytest.approx(30.5)
    assert codec.decode(t, [0xFFD3]) == pytest.approx(-4.5)
    # request 01 04 00 01 00 01 + CRC 60 0A; reply 01 04 02 01 31 + CRC 79 74
    assert codec.rtu_frame(bytes.fromhex("010400010001")) == bytes.fromhex("010400010001600a")
    assert codec.rtu_crc_ok(bytes.fromhex("01040201317974"))
    assert not codec.rtu_crc_ok(bytes.fromhex("01040201317975"))


@pytest.mark.parametrize(
    ("type_", "words", "word_order", "byte_swap", "expected"),
    [
        ("uint16", [0xFFFF], "big", False, 65535),
        ("int16", [0x8000], "big", False, -32768),
        ("int32", [0xFFFF, 0xFFFE], "big", False, -2),
        ("int32", [0xFFFE, 0xFFFF], "little", False, -2),
        ("uint32", [0x0001, 0x0000], "big", False, 65536),
        ("uint32", [0x0000, 0x0001], "little", False, 65536),
        ("float32", [0x4148, 0x0000], "big", False, 12.5),  # 12.5 = 0x41480000
        ("float32", [0x0000, 0x4148], "little", False, 12.5),
        ("float32", [0x4841, 0x0000], "big", True, 12.5),  # BADC
        ("float32", [0x0000, 0x4841], "little", True, 12.5),  # DCBA
        ("int16", [0x0A00], "big", True, 10),
    ],
)
def test_decode_types_and_orders(
    type_: str, words: list[int], word_order: str, byte_swap: bool, expected: float
) -> None:
    s = spec(type_, word_order=word_order, byte_swap=byte_swap)
    assert codec.decode(s, words) == expected
    assert codec.encode(s, expected) == words


def test_scale_and_offset() -> None:
    s = spec("int16", scale=0.1, offset=-40.0)
    assert codec.decode(s, [650]) == pytest.approx(25.0)
    assert codec.encode(s, 25.0) == [650]


def test_wrong_register_count_and_out_of_range_values_are_refused() -> None:
    with pytest.raises(ValueError):
        codec.decode(spec("int32"), [1])
    with pytest.raises(ValueError):
        codec.encode(spec("int16"), 40000)
    with pytest.raises(ValueError):
        codec.decode(spec("uint16"), [70000])


@given(
    st.sampled_from(["int16", "uint16", "int32", "uint32"]),
    st.sampled_from(["big", "little"]),
    st.booleans(),
    st.integers(min_value=-(2**31), max_value=2**32 - 1),
)
def test_integer_round_trip(type_: str, word_order: str, byte_swap: bool, raw: int) -> None:
    s = spec(type_, word_order=word_order, byte_swap=byte_swap)
    bits = 16 if type_.endswith("16") else 32
    lo, hi = (
        (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if type_.startswith("int") else (0, 2**bits - 1)
    )
    if not lo <= raw <= hi:
        with pytest.raises(ValueError):
            codec.encode(s, raw)
        return
    words = codec.encode(s, raw)
    assert all(0 <= w <= 0xFFFF for w in words)
    assert codec.decode(s, words) == raw


@given(st.floats(width=32, allow_nan=False), st.sampled_from(["big", "little"]), st.booleans())
def test_float_round_trip(value: float, word_order: str, byte_swap: bool) -> None:
    s = spec("float32", word_order=word_order, byte_swap=byte_swap)
    out = codec.decode(s, codec.encode(s, value))
    assert out == value or (math.isinf(value) and out == value)


@given(st.binary(max_size=64))
def test_crc_matches_pymodbus(data: bytes) -> None:
    # pymodbus returns the CRC byte-swapped (as the two bytes read big-endian from the wire).
    ours = codec.crc16_modbus(data)
    assert int.from_bytes(ours.to_bytes(2, "little"), "big") == FramerRTU.compute_CRC(data)


def test_register_spec_checks_type_against_table() -> None:
    with pytest.raises(ValidationError):
        RegisterSpec(name="x", table="coil", address=0, type="int16")
    with pytest.raises(ValidationError):
        RegisterSpec(name="x", table="input", address=0, type="bool")
    with pytest.raises(ValidationError):
        RegisterSpec.model_validate({"name": "x", "table": "input", "address": 0, "bogus": 1})


def test_profiles() -> None:
    assert {"xy-md02", "srth100"} <= set(profile_names())
    srth = {r.name: r for r in load_profile("srth100")}
    assert (srth["temperature"].table, srth["temperature"].address) == ("holding", 0)
    assert (srth["humidity"].table, srth["humidity"].address) == ("holding", 1)
    door = load_profile("door-contact")
    assert [(r.name, r.table, r.address, r.type) for r in door] == [("door", "discrete", 0, "bool")]
    with pytest.raises(ModbusConfigError, match="unknown Modbus profile"):
        load_profile("no-such-sensor")


def test_sensor_needs_a_map() -> None:
    with pytest.raises(ValidationError):
        ModbusSensorSettings.model_validate(
            {"name": "s", "transport": {"kind": "tcp", "host": "h"}}
        )


def test_plan_reads_groups_by_table_and_proximity() -> None:
    specs = [
        RegisterSpec(name="a", table="input", address=1, type="int16"),
        RegisterSpec(name="b", table="input", address=2, type="uint16"),
        RegisterSpec(name="c", table="input", address=5, type="float32"),
        RegisterSpec(name="d", table="input", address=100, type="int16"),
        RegisterSpec(name="e", table="holding", address=2, type="int16"),
    ]
    spans = {
        (s.table, s.address, s.count, tuple(x.name for x in s.specs)) for s in plan_reads(specs)
    }
    assert spans == {
        ("input", 1, 6, ("a", "b", "c")),
        ("input", 100, 1, ("d",)),
        ("holding", 2, 1, ("e",)),
    }
