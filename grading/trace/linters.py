"""Check digits, character sets and the content checks ("linters") the GS1 syntax dictionary names.

Owns the GS1 mod-10 check digit (GTIN, GLN, SSCC), the alphanumeric check pair, the four
character sets and one function per linter name used in the dictionary. Each linter takes one
component's data and returns ``None`` when it passes or the reason it fails. Country and
currency codes come from ISO 3166 and ISO 4217 (``pycountry``).

Three linters are checked for syntax only, with the reason written here: ``packagetype`` (a
UN/ECE Rec. 21 code list gradeline does not ship), ``couponcode`` and ``couponposoffer``
(North American coupon layouts no fruit label uses).
"""

from __future__ import annotations

import calendar
import re
import string
from collections.abc import Callable
from functools import cache

import pycountry

CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
CSET39 = "#-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CSET64 = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
CSET32 = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_CSET82_SET = frozenset(CSET82)
_CSET39_SET = frozenset(CSET39)
_CSET64_SET = frozenset(CSET64)


# --- check digits ----------------------------------------------------------------------------


def check_digit(payload: str) -> str:
    """The GS1 mod-10 check digit for ``payload`` (all digits but the check digit).

    Weights 3, 1, 3, ... from the rightmost digit leftwards; check = (10 - sum mod 10) mod 10.
    """
    if not payload.isdigit() or not payload.isascii():
        raise ValueError(f"not digits: {payload!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(payload)))
    return str((10 - total % 10) % 10)


def has_valid_check_digit(code: str) -> bool:
    return len(code) >= 2 and code.isascii() and code.isdigit() and check_digit(code[:-1]) == code[-1]


_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97)


def check_pair(payload: str) -> str:
    """The alphanumeric check character pair (GMN, MUDI): CSET 82 values weighted by increasing
    primes from the right, sum mod 1021, split into two CSET 32 characters."""
    if len(payload) > len(_PRIMES):
        raise ValueError("too long for a check pair")
    total = sum(CSET82.index(ch) * _PRIMES[i] for i, ch in enumerate(reversed(payload))) % 1021
    return CSET32[total >> 5] + CSET32[total & 31]


# --- character sets --------------------------------------------------------------------------


def cset_error(cset: str, data: str) -> str | None:
    """Why ``data`` is not in character set ``cset`` (N, X, Y, Z), or None."""
    if cset == "N":
        bad = next((c for c in data if c not in string.digits), None)
        return None if bad is None else f"non-digit character {bad!r}"
    if cset == "X":
        bad = next((c for c in data if c not in _CSET82_SET), None)
        return None if bad is None else f"character {bad!r} is not in GS1 CSET 82"
    if cset == "Y":
        bad = next((c for c in data if c not in _CSET39_SET), None)
        return None if bad is None else f"character {bad!r} is not in GS1 CSET 39"
    body = data.rstrip("=")
    pads = len(data) - len(body)
    if pads > 2 or (pads and len(data) % 3 != 0):
        return "bad CSET 64 padding"
    bad = next((c for c in body if c not in _CSET64_SET), None)
    return None if bad is None else f"character {bad!r} is not in GS1 CSET 64"


# --- linters ---------------------------------------------------------------------------------

Linter = Callable[[str], str | None]


def _csum(data: str) -> str | None:
    return None if has_valid_check_digit(data) else "incorrect check digit"


def _csumalpha(data: str) -> str | None:
    if len(data) < 2:
        return "too short for a check character pair"
    if len(data) - 2 > len(_PRIMES):
        return "too long for a check character pair"
    if any(c not in _CSET82_SET for c in data[:-2]) or any(c not in CSET32 for c in data[-2:]):
        return "invalid check character pair characters"
    return None if check_pair(data[:-2]) == data[-2:] else "incorrect check character pair"


def _gcppos(data: str) -> str | None:
    if len(data) < 4:
        return "too short to start with a GS1 Company Prefix"
    if not data[:4].isdigit():
        return "does not start with a GS1 Company Prefix"
    return None


def _date_error(year: int, month: int, day: int, day_zero: bool) -> str | None:
    if not 1 <= month <= 12:
        return "invalid month"
    if day == 0 and day_zero:
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return "invalid day"
    return None


def _yymmdd(day_zero: bool) -> Linter:
    def lint(data: str) -> str | None:
        if len(data) != 6 or not data.isdigit():
            return "not a YYMMDD date"
        # 2-digit years lie within 49 years back and 50 ahead of today (GS1 General Specifications),
        # so inside 1951..2099 the leap years are exactly those divisible by 4; 2000 stands for them.
        return _date_error(2000 + int(data[:2]), int(data[2:4]), int(data[4:]), day_zero)
    return lint


def _yyyymmdd(day_zero: bool) -> Linter:
    def lint(data: str) -> str | None:
        if len(data) != 8 or not data.isdigit():
            return "not a YYYYMMDD date"
        return _date_error(int(data[:4]), int(data[4:6]), int(data[6:]), day_zero)
    return lint


def _range(low: int, high: int, what: str) -> Linter:
    def lint(data: str) -> str | None:
        return None if data.isdigit() and low <= int(data) <= high else f"invalid {what}"
    return lint


def _hhmi(data: str) -> str | None:
    return _range(0, 23, "hour")(data[:2]) or _range(0, 59, "minute")(data[2:])


def _one_of(values: frozenset[str], what: str) -> Linter:
    def lint(data: str) -> str | None:
        return None if data in values else f"invalid {what}"
    return lint


@cache
def _iso3166_numeric() -> frozenset[str]:
    return frozenset(c.numeric for c in pycountry.countries)


@cache
def _iso3166_alpha2() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


@cache
def _iso4217_numeric() -> frozenset[str]:
    return frozenset(c.numeric for c in pycountry.currencies)


def _iso3166(data: str) -> str | None:
    return None if data in _iso3166_numeric() else "not an ISO 3166 numeric country code"


def _iso3166999(data: str) -> str | None:
    return None if data == "999" or data in _iso3166_numeric() else "not an ISO 3166 numeric country code or 999"


def _iso3166alpha2(data: str) -> str | None:
    return None if data in _iso3166_alpha2() else "not an ISO 3166 alpha-2 country code"


def _iso4217(data: str) -> str | None:
    return None if data in _iso4217_numeric() else "not an ISO 4217 numeric currency code"


def _iban(data: str) -> str | None:
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[0-9A-Z]{1,30}", data) or data[:2] not in _iso3166_alpha2():
        return "not an IBAN"
    digits = "".join(str(int(c, 36)) for c in data[4:] + data[:4])
    return None if int(digits) % 97 == 1 else "incorrect IBAN check digits"


def _pcenc(data: str) -> str | None:
    for match in re.finditer("%", data):
        if not re.fullmatch(r"%[0-9A-Fa-f]{2}", data[match.start():match.start() + 3]):
            return "invalid percent-encoding"
    return None


def _pieceoftotal(data: str) -> str | None:
    if not data.isdigit() or not data or len(data) % 2:
        return "invalid piece of total"
    piece, total = int(data[: len(data) // 2]), int(data[len(data) // 2:])
    if piece == 0 or total == 0:
        return "zero piece number or total"
    return None if piece <= total else "piece number exceeds total"


def _posinseqslash(data: str) -> str | None:
    match = re.fullmatch(r"([1-9])/([1-9])", data)
    return None if match and int(match[1]) <= int(match[2]) else "invalid position in sequence"


def _nozeroprefix(data: str) -> str | None:
    if data.startswith("0"):
        return "illegal zero prefix"
    return None if data.isdigit() or not data else "non-digit character"


def _syntax_only(data: str) -> str | None:
    return None


LINTERS: dict[str, Linter] = {
    "csum": _csum,
    "csumalpha": _csumalpha,
    "gcppos1": _gcppos,
    "gcppos2": lambda d: _gcppos(d[1:]),  # the prefix starts at the second character (after an indicator digit)
    "hasnondigit": lambda d: None if any(not c.isdigit() for c in d) else "must contain a non-digit",
    "yymmdd": _yymmdd(day_zero=False),
    "yymmd0": _yymmdd(day_zero=True),
    "yyyymmdd": _yyyymmdd(day_zero=False),
    "yyyymmd0": _yyyymmdd(day_zero=True),
    "hh": _range(0, 23, "hour"),
    "mi": _range(0, 59, "minute"),
    "ss": _range(0, 59, "second"),
    "hhmi": _hhmi,
    "hyphen": _one_of(frozenset({"-"}), "character (must be '-')"),
    "iban": _iban,
    "importeridx": lambda d: None if re.fullmatch(r"[-0-9A-Za-z_]", d) else "invalid importer index",
    "iso3166": _iso3166,
    "iso3166999": _iso3166999,
    "iso3166alpha2": _iso3166alpha2,
    "iso4217": _iso4217,
    "iso5218": _one_of(frozenset({"0", "1", "2", "9"}), "ISO 5218 sex code"),
    "latitude": _range(0, 1800000000, "latitude"),
    "longitude": _range(0, 3600000000, "longitude"),
    "mediatype": _one_of(frozenset([f"{n:02d}" for n in range(1, 11)] + [str(n) for n in range(80, 100)]), "AIDC media type"),
    "nonzero": lambda d: None if d.strip("0") else "must not be zero",
    "nozeroprefix": _nozeroprefix,
    "pcenc": _pcenc,
    "pieceoftotal": _pieceoftotal,
    "posinseqslash": _posinseqslash,
    "winding": _one_of(frozenset({"0", "1", "9"}), "winding direction"),
    "yesno": _one_of(frozenset({"0", "1"}), "yes/no flag"),
    "zero": _one_of(frozenset({"0"}), "digit (must be 0)"),
    "packagetype": _syntax_only,
    "couponcode": _syntax_only,
    "couponposoffer": _syntax_only,
}
