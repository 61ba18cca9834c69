"""MT-SICS (Mettler Toledo Standard Interface Command Set): commands, line framing, strict parsing.

ASCII lines ending in CR LF (PROTOCOLS.md §2.1), either request/response (``SI`` answered by
one weight line) or streamed (``SIR``: the balance repeats weight lines until ``S``, ``SI``,
``SR`` or ``@`` cancels it; other commands are answered in between the stream's lines).
``LineFramer`` cuts the byte stream into lines; ``is_reply_to`` tells a command's reply from
the stream's weight lines by its prefix. The protocol has no checksum, so the parser checks
structure exactly and rejects anything else as CorruptFrame:

* weight replies ``S S <value> <unit>`` / ``S D <value> <unit>``: the value field is exactly
  10 characters, right-aligned and space-padded, an optional minus, an integer part without
  superfluous leading zeros, an optional fraction of 1-6 digits; one space; a known unit.
* status-only replies: ``S I`` (busy) -> ScaleNotReady, ``S +``/``S -`` -> ScaleRangeError.
* command errors ``ES``/``ET``/``EL`` -> ScaleCommandError.
* zero ``Z A`` (done); tare ``T S <value> <unit>`` (the tare now stored); ``TAC A``.

The exact forms of the zero/tare failure replies vary by model; ``I``, ``+``, ``-``, ``^`` and
``E`` are all reported as typed errors.
"""

from __future__ import annotations

import re
from typing import Literal

from drivers.interfaces import CorruptFrame
from drivers.scales.errors import ScaleCommandError, ScaleNotReady, ScaleRangeError
from drivers.scales.frames import GRAMS_PER_UNIT, IndicatorReading

MAX_LINE_BYTES = 64
WEIGHT_FIELD_CHARS = 10

_COMMAND = re.compile(rb"[A-Z@][A-Z0-9]{0,3}")
_VALUE = re.compile(rb" *(-?(?:0|[1-9][0-9]*)(?:\.[0-9]{1,6})?)")
_UNITS = {u.encode(): u for u in GRAMS_PER_UNIT}
_COMMAND_ERRORS = {
    b"ES": "syntax error (command not known)",
    b"ET": "transmission error",
    b"EL": "logical error (command cannot be executed)",
}


def encode_command(command: str) -> bytes:
    """The bytes to send for an MT-SICS command without arguments, e.g. ``SI`` -> ``SI\\r\\n``."""
    raw = command.encode("ascii")
    if not _COMMAND.fullmatch(raw):
        raise ValueError(f"not an MT-SICS command: {command!r}")
    return raw + b"\r\n"


SEND_STABLE_WEIGHT = encode_command("S")
SEND_WEIGHT_IMMEDIATELY = encode_command("SI")
SEND_WEIGHT_AND_REPEAT = encode_command("SIR")
ZERO = encode_command("Z")
ZERO_IMMEDIATELY = encode_command("ZI")
TARE = encode_command("T")
TARE_IMMEDIATELY = encode_command("TI")
CLEAR_TARE = encode_command("TAC")


class LineFramer:
    """Cuts a byte stream into CR LF-terminated lines (CR LF kept), whatever the chunking.

    A run of more than ``MAX_LINE_BYTES`` without LF is not a reply: it is returned as one
    ``CorruptFrame`` and dropped up to the next LF, so the lines after it are still found.
    """

    def __init__(self, device: str) -> None:
        self._device = device
        self._buffer = bytearray()
        self._overlong = False

    def reset(self) -> None:
        """Forget a partial line (after a reconnect, or before a request whose reply must be fresh)."""
        self._buffer.clear()
        self._overlong = False

    def feed(self, data: bytes) -> list[bytes | CorruptFrame]:
        self._buffer += data
        out: list[bytes | CorruptFrame] = []
        buf = self._buffer
        while True:
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > MAX_LINE_BYTES:
                    if not self._overlong:
                        out.append(
                            CorruptFrame(
                                self._device,
                                f"no MT-SICS line end within {MAX_LINE_BYTES} bytes: "
                                f"{bytes(buf[:MAX_LINE_BYTES])!r}",
                            )
                        )
                    self._overlong = True
                    buf.clear()
                break
            line = bytes(buf[: end + 1])
            del buf[: end + 1]
            if self._overlong:  # the tail of a line already reported as corrupt
                self._overlong = False
                continue
            out.append(line)
        return out


def is_weight_line(line: bytes) -> bool:
    """A line of the ``S``/``SI``/``SIR`` family (a weight or its status), by its prefix."""
    return line.startswith(b"S ")


def is_command_error(line: bytes) -> bool:
    """``ES``/``ET``/``EL``: the balance refused the last command."""
    return line.rstrip(b"\r\n") in _COMMAND_ERRORS


def is_reply_to(line: bytes, command: bytes) -> bool:
    """Whether ``line`` answers ``command`` (e.g. ``b"Z"``): its prefix, or a command error.

    Weight lines start with ``S ``, so the replies to ``Z``, ``T`` and ``TAC`` cannot be
    mistaken for them. ``ES``/``ET``/``EL`` carry no prefix and are taken as the answer to
    the command in flight.
    """
    return line.startswith(command + b" ") or is_command_error(line)


def _body(line: bytes, device: str) -> bytes:
    if len(line) > MAX_LINE_BYTES:
        raise CorruptFrame(device, f"MT-SICS reply longer than {MAX_LINE_BYTES} bytes")
    if not line.endswith(b"\r\n"):
        raise CorruptFrame(device, f"MT-SICS reply not terminated by CR LF: {line!r}")
    body = line[:-2]
    if any(b < 0x20 or b > 0x7E for b in body):
        raise CorruptFrame(device, f"MT-SICS reply has non-printable bytes: {line!r}")
    if body in _COMMAND_ERRORS:
        raise ScaleCommandError(
            device, body.decode(), f"MT-SICS {body.decode()}: {_COMMAND_ERRORS[body]}"
        )
    return body


def _weight_field(field: bytes, line: bytes, device: str) -> float:
    """``<10-char value> <unit>`` -> grams."""
    value_field, sep, unit = (
        field[:WEIGHT_FIELD_CHARS],
        field[WEIGHT_FIELD_CHARS:][:1],
        field[WEIGHT_FIELD_CHARS + 1 :],
    )
    match = _VALUE.fullmatch(value_field)
    if len(value_field) != WEIGHT_FIELD_CHARS or not match or sep != b" ":
        raise CorruptFrame(device, f"MT-SICS weight field malformed: {line!r}")
    if unit not in _UNITS:
        raise CorruptFrame(device, f"MT-SICS unit {unit!r} not known: {line!r}")
    return float(match.group(1)) * GRAMS_PER_UNIT[_UNITS[unit]]


def parse_weight_reply(line: bytes, device: str, *, allow_dynamic: bool = True) -> IndicatorReading:
    """The reply to ``S`` (``allow_dynamic=False``) or ``SI``, including its CR LF."""
    body = _body(line, device)
    if body in (b"S I", b"S +", b"S -"):
        status = body[2:3]
        if status == b"I":
            raise ScaleNotReady(device, "MT-SICS S I: balance busy, no weight now")
        direction: Literal["over", "under"] = "over" if status == b"+" else "under"
        raise ScaleRangeError(device, direction, f"MT-SICS S {status.decode()}: {direction}load")
    head, field = body[:4], body[4:]
    if head not in (b"S S ", b"S D ") or (head == b"S D " and not allow_dynamic):
        raise CorruptFrame(device, f"not an MT-SICS weight reply: {line!r}")
    return IndicatorReading(weight_g=_weight_field(field, line, device), stable=head == b"S S ")


def parse_zero_reply(line: bytes, device: str) -> None:
    """The reply to ``Z`` or ``ZI``: returns on ``Z A``, raises otherwise."""
    _simple_ack(line, device, b"Z")


def parse_clear_tare_reply(line: bytes, device: str) -> None:
    _simple_ack(line, device, b"TAC")


def _simple_ack(line: bytes, device: str, command: bytes) -> None:
    body = _body(line, device)
    if body == command + b" A":
        return
    _raise_status(body, command, line, device)


def _raise_status(body: bytes, command: bytes, line: bytes, device: str) -> None:
    prefix = command + b" "
    status = body[len(prefix) :] if body.startswith(prefix) else b""
    name = command.decode()
    if status in (b"I", b"E"):
        raise ScaleNotReady(device, f"MT-SICS {name} {status.decode()}: cannot execute now")
    if status in (b"+", b"-", b"^"):
        raise ScaleRangeError(
            device,
            "over" if status == b"+" else "under" if status == b"-" else "out",
            f"MT-SICS {name} {status.decode()}: outside the {name} range",
        )
    raise CorruptFrame(device, f"not an MT-SICS {name} reply: {line!r}")


def parse_tare_reply(line: bytes, device: str) -> float:
    """The reply to ``T`` or ``TI``: the stored tare in grams."""
    body = _body(line, device)
    if body.startswith(b"T S "):
        return _weight_field(body[4:], line, device)
    _raise_status(body, b"T", line, device)
    raise AssertionError("unreachable")  # _raise_status always raises
