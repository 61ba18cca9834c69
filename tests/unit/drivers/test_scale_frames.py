"""Scale frame parsers against the worked examples in PROTOCOLS.md §2 and hand-built frames."""

from __future__ import annotations

import pytest

from drivers.interfaces import CorruptFrame
from drivers.scales import mtsics, toledo, xk3190
from drivers.scales.errors import ScaleCommandError, ScaleNotReady, ScaleRangeError
from drivers.scales.frames import IndicatorReading, StxFramer
from simulators.scale_server import mtsics_weight_field, toledo_frame, xk3190_frame

DEV = "lane-1"

# PROTOCOLS.md §2.2 worked example.
TOLEDO_EXAMPLE = bytes.fromhex("02 2A 30 20 30 31 32 33 34 35 30 30 30 31 30 30 0D 27")
# PROTOCOLS.md §2.3 worked examples.
XK_PLUS_12_345 = b"\x02+012345319\x03"
XK_MINUS_1_50 = b"\x02-00015021B\x03"


def test_toledo_worked_example_decodes_to_12345_kg_gross_stable() -> None:
    # SWA 0x2A = 0b0010_1010: bits 0-2 = 0b010 = decimal code 2 = "no decimal point"
    # (code 0 = x00, 1 = x0, 2 = x, 3..7 = 1..5 decimals), bits 3-4 = 01 = count by 1, bit 5 = 1.
    # SWB 0x30: bit 4 set = kg, bits 0-3 clear = gross, positive, in range, no motion.
    # So the weight is 012345 kg = 12 345 kg = 12 345 000 g and the tare 000100 kg = 100 kg.
    reading = toledo.parse_frame(TOLEDO_EXAMPLE, DEV)
    assert reading == IndicatorReading(
        weight_g=12_345_000.0, stable=True, tare_g=100_000.0, net=False
    )


def test_toledo_worked_example_checksum_makes_the_7_bit_sum_zero() -> None:
    assert toledo.seven_bit_sum(TOLEDO_EXAMPLE) == 0
    assert TOLEDO_EXAMPLE[-1] == 0x27


def test_simulator_encoder_reproduces_the_toledo_worked_example() -> None:
    frame = toledo_frame(12_345_000.0, unit="kg", decimals=0, tare_g=100_000.0)
    assert frame == TOLEDO_EXAMPLE


@pytest.mark.parametrize(
    ("decimal_code", "weight_g"),
    [
        (0, 1_234_500_000.0),  # x00: 012345 -> 1 234 500 kg
        (1, 123_450_000.0),  # x0
        (2, 12_345_000.0),  # x
        (3, 1_234_500.0),  # x.x -> 1234.5 kg
        (4, 123_450.0),  # x.xx
        (5, 12_345.0),  # x.xxx -> 12.345 kg
        (6, 1_234.5),  # x.xxxx
        (7, 123.45),  # x.xxxxx
    ],
)
def test_toledo_decimal_codes(decimal_code: int, weight_g: float) -> None:
    body = bytes((0x02, 0x28 | decimal_code, 0x30, 0x20)) + b"012345000000\r"
    frame = body + bytes(((-sum(body)) & 0x7F,))
    assert toledo.parse_frame(frame, DEV).weight_g == pytest.approx(weight_g, rel=1e-12)


def test_toledo_status_bits_negative_motion_net_and_pounds() -> None:
    frame = toledo_frame(-250.0, stable=False, unit="kg", decimals=3, tare_g=40.0, net=True)
    assert toledo.parse_frame(frame, DEV) == IndicatorReading(-250.0, False, 40.0, True)
    pounds = toledo_frame(453.59237 * 2.5, unit="lb", decimals=2)
    assert toledo.parse_frame(pounds, DEV).weight_g == pytest.approx(453.59237 * 2.5)


def test_toledo_over_range_is_a_typed_error_not_a_weight() -> None:
    frame = toledo_frame(2_000_000.0, unit="kg", decimals=3)  # 2000 kg does not fit 6 digits
    with pytest.raises(ScaleRangeError):
        toledo.parse_frame(frame, DEV)


@pytest.mark.parametrize(
    "frame",
    [
        TOLEDO_EXAMPLE[:-1],  # truncated
        TOLEDO_EXAMPLE + b"\x00",  # too long
        TOLEDO_EXAMPLE[:-1] + b"\x28",  # bad checksum
        b"\x03" + TOLEDO_EXAMPLE[1:],  # no STX
    ],
)
def test_toledo_rejects_malformed_frames(frame: bytes) -> None:
    with pytest.raises(CorruptFrame):
        toledo.parse_frame(frame, DEV)


def test_toledo_rejects_a_non_digit_even_with_a_matching_checksum() -> None:
    body = bytes((0x02, 0x2D, 0x30, 0x20)) + b"01A345000000\r"
    with pytest.raises(CorruptFrame):
        toledo.parse_frame(body + bytes(((-sum(body)) & 0x7F,)), DEV)


def test_xk3190_worked_examples() -> None:
    # Unit kg (the frame carries none; kg is the indicator's display unit by default).
    assert xk3190.parse_frame(XK_PLUS_12_345, DEV) == IndicatorReading(12_345.0, None)
    assert xk3190.parse_frame(XK_MINUS_1_50, DEV) == IndicatorReading(-1_500.0, None)
    assert xk3190.parse_frame(XK_PLUS_12_345, DEV, unit="g").weight_g == pytest.approx(12.345)


def test_simulator_encoder_reproduces_the_xk3190_worked_examples() -> None:
    assert xk3190_frame(12_345.0, decimals=3) == XK_PLUS_12_345
    assert xk3190_frame(-1_500.0, decimals=2) == XK_MINUS_1_50


@pytest.mark.parametrize(
    "frame",
    [
        b"\x02+012345318\x03",  # XOR check off by one
        b"\x02+012345319\x04",  # no ETX
        b"\x02*012345319\x03",  # sign byte neither + nor -
        b"\x02+012345519\x03",  # decimals 5: out of range (and check no longer matches)
        b"\x02+012345319",  # truncated
        b"\x02+0123453l9\x03",  # lower-case/garbled hex
    ],
)
def test_xk3190_rejects_malformed_frames(frame: bytes) -> None:
    with pytest.raises(CorruptFrame):
        xk3190.parse_frame(frame, DEV)


def test_xk3190_rejects_decimals_5_even_with_a_matching_check() -> None:
    body = b"+0123455"
    frame = b"\x02" + body + xk3190.xor_check(body) + b"\x03"
    with pytest.raises(CorruptFrame):
        xk3190.parse_frame(frame, DEV)


# -- MT-SICS -----------------------------------------------------------------------------


def test_mtsics_commands_are_exact_bytes() -> None:
    assert mtsics.SEND_WEIGHT_IMMEDIATELY == b"SI\r\n"
    assert mtsics.SEND_STABLE_WEIGHT == b"S\r\n"
    assert mtsics.ZERO == b"Z\r\n"
    assert mtsics.TARE == b"T\r\n"
    assert mtsics.CLEAR_TARE == b"TAC\r\n"
    with pytest.raises(ValueError):
        mtsics.encode_command("si")


@pytest.mark.parametrize(
    ("line", "weight_g", "stable"),
    [
        (b"S S     100.00 g\r\n", 100.0, True),
        (b"S D     182.46 g\r\n", 182.46, False),
        (b"S S    -0.0125 kg\r\n", -12.5, True),
        (b"S S          0 g\r\n", 0.0, True),
        (b"S S     0.5000 lb\r\n", 226.796185, True),
    ],
)
def test_mtsics_weight_replies(line: bytes, weight_g: float, stable: bool) -> None:
    reading = mtsics.parse_weight_reply(line, DEV)
    assert reading.weight_g == pytest.approx(weight_g)
    assert reading.stable is stable


def test_mtsics_simulator_weight_field_is_ten_characters_then_unit() -> None:
    assert mtsics_weight_field(100.0) == b"    100.00 g"
    assert mtsics_weight_field(-12.5, "kg", 4) == b"   -0.0125 kg"


def test_mtsics_dynamic_is_not_a_valid_answer_to_s() -> None:
    with pytest.raises(CorruptFrame):
        mtsics.parse_weight_reply(b"S D     182.46 g\r\n", DEV, allow_dynamic=False)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"S I\r\n", ScaleNotReady),
        (b"S +\r\n", ScaleRangeError),
        (b"S -\r\n", ScaleRangeError),
        (b"ES\r\n", ScaleCommandError),
        (b"ET\r\n", ScaleCommandError),
        (b"EL\r\n", ScaleCommandError),
    ],
)
def test_mtsics_status_replies_are_typed_errors(line: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        mtsics.parse_weight_reply(line, DEV)


@pytest.mark.parametrize(
    "line",
    [
        b"S S     100.00 g",  # no CR LF
        b"S S     100.00 g\n",  # LF only
        b"S S    100.00 g\r\n",  # weight field 9 characters
        b"S S      100.00 g\r\n",  # weight field 11 characters
        b"S S     100,00 g\r\n",  # decimal comma
        b"S S     0100.0 g\r\n",  # superfluous leading zero
        b"S S     100.00 q\r\n",  # unknown unit
        b"S S     100.00  g\r\n",  # two spaces before the unit
        b"S X     100.00 g\r\n",  # unknown status
        b"S S     10O.00 g\r\n",  # letter O for zero
        b"S S    1.0.0.0 g\r\n",
        b"Z A\r\n",  # the answer to another command
        b"",
    ],
)
def test_mtsics_rejects_malformed_weight_replies(line: bytes) -> None:
    with pytest.raises(CorruptFrame):
        mtsics.parse_weight_reply(line, DEV)


def test_mtsics_zero_and_tare_replies() -> None:
    mtsics.parse_zero_reply(b"Z A\r\n", DEV)
    with pytest.raises(ScaleNotReady):
        mtsics.parse_zero_reply(b"Z I\r\n", DEV)
    with pytest.raises(ScaleRangeError):
        mtsics.parse_zero_reply(b"Z +\r\n", DEV)
    with pytest.raises(CorruptFrame):
        mtsics.parse_zero_reply(b"Z Q\r\n", DEV)
    assert mtsics.parse_tare_reply(b"T S      12.40 g\r\n", DEV) == pytest.approx(12.4)
    with pytest.raises(ScaleNotReady):
        mtsics.parse_tare_reply(b"T I\r\n", DEV)
    mtsics.parse_clear_tare_reply(b"TAC A\r\n", DEV)


# -- the stream framer -------------------------------------------------------------------


def _accepted(framer: StxFramer, data: bytes, chunk: int) -> list[bytes]:
    out: list[bytes] = []
    for i in range(0, len(data), chunk):
        out += [
            r.raw
            for r in framer.feed(data[i : i + chunk])
            if isinstance(r.outcome, IndicatorReading)
        ]
    return out


@pytest.mark.parametrize("chunk", [1, 5, 18, 1000])
def test_stream_resynchronises_after_truncation_and_garbage(chunk: int) -> None:
    good = [toledo_frame(w, decimals=3) for w in (101.0, 102.0, 103.0, 104.0)]
    stream = good[0] + good[1][:7] + b"\xff\x02\x02junk" + good[2] + b"\x02" + good[3]
    assert _accepted(toledo.framer(DEV), stream, chunk) == [good[0], good[2], good[3]]


def test_stream_counts_rejected_candidates() -> None:
    framer = xk3190.framer(DEV)
    results = framer.feed(XK_PLUS_12_345[:-3] + XK_MINUS_1_50)
    kinds = [type(r.outcome).__name__ for r in results]
    assert kinds == ["CorruptFrame", "IndicatorReading"]
    assert results[-1].raw == XK_MINUS_1_50


# -- MT-SICS line framing and reply matching ----------------------------------------------------


def test_mtsics_lines_do_not_depend_on_chunking() -> None:
    stream = b"S S     182.40 g\r\nZ A\r\nS D      90.00 g\r\n"
    whole = mtsics.LineFramer("lane-1").feed(stream)
    framer = mtsics.LineFramer("lane-1")
    bytewise = [item for i in range(len(stream)) for item in framer.feed(stream[i : i + 1])]
    assert whole == bytewise == [b"S S     182.40 g\r\n", b"Z A\r\n", b"S D      90.00 g\r\n"]


def test_mtsics_overlong_line_is_one_corrupt_frame_and_the_next_line_survives() -> None:
    framer = mtsics.LineFramer("lane-1")
    out = framer.feed(b"x" * 40) + framer.feed(b"y" * 40) + framer.feed(b"z" * 40)
    out += framer.feed(b"tail\r\nS S     100.00 g\r\n")
    assert len(out) == 2 and isinstance(out[0], CorruptFrame)
    assert out[1] == b"S S     100.00 g\r\n"
    framer.feed(b"S S   ")
    framer.reset()  # a partial line from before a request is forgotten
    assert framer.feed(b"S S     101.00 g\r\n") == [b"S S     101.00 g\r\n"]


def test_mtsics_replies_are_told_from_stream_lines_by_prefix() -> None:
    assert mtsics.SEND_WEIGHT_AND_REPEAT == b"SIR\r\n"
    assert mtsics.is_weight_line(b"S S     100.00 g\r\n") and mtsics.is_weight_line(b"S +\r\n")
    assert mtsics.is_reply_to(b"Z A\r\n", b"Z") and not mtsics.is_reply_to(b"ZI S\r\n", b"Z")
    assert mtsics.is_reply_to(b"T S      12.40 g\r\n", b"T")
    assert not mtsics.is_reply_to(b"TAC A\r\n", b"T") and mtsics.is_reply_to(b"TAC A\r\n", b"TAC")
    assert not mtsics.is_reply_to(b"S S     100.00 g\r\n", b"Z")
    assert mtsics.is_reply_to(b"EL\r\n", b"Z") and mtsics.is_command_error(b"ES\r\n")
