"""GS1 element strings and Digital Link URIs: parse, validate by the syntax dictionary, build.

Owns the three element-string forms (bracketed HRI ``(01)...``, unbracketed with separators,
and scanner output with a symbology identifier such as ``]C1``, ``]d2`` or ``]Q3``), the GS1
Digital Link URI syntax (primary key and ordered key qualifiers in the path, data attributes in
the query string), and the rules every message must meet: known AIs, lengths, fixed and
variable parts, character sets, the dictionary's linters (check digits, dates, codes) and the
``req``/``ex`` pairings over the whole message. Building goes through the same validation, so
gradeline never prints a code it would refuse to read.

Separators: ASCII 29 (GS) in transmitted data; ``^`` (the convention of GS1's own syntax engine
for FNC1), ``{GS}`` and ``<GS>`` are accepted for the same, since keyboard-wedge scanners and
people cannot type GS. A separator after a predefined-length AI is redundant and tolerated.
Rules are GS1's, not one library's: see docs/traceability.md for the cases other parsers let
through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from grading.trace.ais import AiEntry, ai_table, lookup_prefix, matches
from grading.trace.linters import LINTERS, cset_error

GS = "\x1d"
# AIM symbology identifiers that announce GS1 AI data (FNC1 in first position): GS1-128, GS1
# DataMatrix, GS1 QR, GS1 DataBar / composite. ]E0 (EAN-13, UPC) and ]E4 (EAN-8) carry a bare
# GTIN; ]Q1 and ]d1 carry plain data, which is GS1 only as a Digital Link URI.
SYMBOLOGY_IDENTIFIERS = ("]C1", "]d2", "]Q3", "]e0")
_PLAIN_IDENTIFIERS = ("]Q1", "]d1")
_GTIN_IDENTIFIERS = {"]E0": 13, "]E4": 8}
_SEPARATOR_SPELLINGS = ("{GS}", "<GS>", "^")
# what a Digital Link value may carry unencoded: RFC 3986 unreserved characters
_DL_SAFE = "-._~"


class GS1Error(ValueError):
    """Input that breaks a GS1 rule; the message says which rule and which AI."""


@dataclass(frozen=True)
class Element:
    ai: str
    value: str

    @property
    def title(self) -> str:
        entry = ai_table().get(self.ai)
        return entry.title if entry else ""


@dataclass(frozen=True)
class DigitalLink:
    """A parsed GS1 Digital Link URI."""

    domain: str
    path_prefix: str  # anything before the primary key, e.g. "/trace"
    primary_key: Element
    qualifiers: tuple[Element, ...]
    attributes: tuple[Element, ...]  # AIs from the query string
    other_query: tuple[tuple[str, str], ...]  # non-AI query parameters (linkType, ...)

    @property
    def elements(self) -> tuple[Element, ...]:
        return (self.primary_key, *self.qualifiers, *self.attributes)

    def get(self, ai: str) -> str | None:
        return next((e.value for e in self.elements if e.ai == ai), None)

    def query(self, name: str) -> str | None:
        return next((v for k, v in self.other_query if k == name), None)


@dataclass(frozen=True)
class Parsed:
    """What ``parse`` found: the form of the input and its elements, in input order."""

    form: str  # bracketed | unbracketed | scanner | digital_link
    elements: tuple[Element, ...]
    symbology: str | None = None
    digital_link: DigitalLink | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def get(self, ai: str) -> str | None:
        return next((e.value for e in self.elements if e.ai == ai), None)


# --- one element ---------------------------------------------------------------------------


def _entry(ai: str) -> AiEntry:
    entry = ai_table().get(ai)
    if entry is None:
        raise GS1Error(f"unknown AI ({ai})")
    return entry


def check_element(ai: str, value: str) -> None:
    """Raise ``GS1Error`` if ``value`` is not valid data for ``ai`` by the syntax dictionary."""
    entry = _entry(ai)
    if not value:
        raise GS1Error(f"AI ({ai}): no data")
    if len(value) > entry.max_length:
        raise GS1Error(f"AI ({ai}): data too long ({len(value)} characters, at most {entry.max_length})")
    rest = value
    for index, component in enumerate(entry.components):
        if not rest:
            if component.optional:
                break
            raise GS1Error(f"AI ({ai}): data too short ({len(value)} characters, at least {entry.min_length})")
        if component.fixed:
            if len(rest) < component.min_length:
                raise GS1Error(f"AI ({ai}): data too short ({len(value)} characters, at least {entry.min_length})")
            part, rest = rest[: component.min_length], rest[component.min_length:]
        else:
            part, rest = rest[: component.max_length], rest[component.max_length:]
        where = f"AI ({ai})" if len(entry.components) == 1 else f"AI ({ai}) component {index + 1}"
        if (reason := cset_error(component.cset, part)) is not None:
            raise GS1Error(f"{where}: {reason}")
        for name in component.linters:
            linter = LINTERS.get(name)
            if linter is None:
                raise GS1Error(f"{where}: no check for linter {name!r}")
            if (reason := linter(part)) is not None:
                raise GS1Error(f"{where}: {reason}")
    if rest:
        raise GS1Error(f"AI ({ai}): data too long ({len(value)} characters, at most {entry.max_length})")


def check_message(elements: Sequence[Element]) -> tuple[Element, ...]:
    """Check every element and the pairing rules over all of them; duplicates of the same
    AI and value are merged (a carrier may repeat an AI), different values are an error."""
    seen: dict[str, str] = {}
    unique: list[Element] = []
    for element in elements:
        check_element(element.ai, element.value)
        if element.ai in seen:
            if seen[element.ai] != element.value:
                raise GS1Error(f"AI ({element.ai}) appears twice with different values")
            continue
        seen[element.ai] = element.value
        unique.append(element)
    present = list(seen)
    for element in unique:
        entry = _entry(element.ai)
        for pattern in entry.excludes:
            clash = next((ai for ai in present if ai != element.ai and matches(pattern, ai)), None)
            if clash is not None:
                raise GS1Error(f"AI ({element.ai}) may not be used together with AI ({clash})")
        for group in entry.requires:
            if not any(all(any(matches(p, ai) for ai in present) for p in alternative) for alternative in group):
                wanted = " or ".join("+".join(f"({p})" for p in alternative) for alternative in group)
                raise GS1Error(f"AI ({element.ai}) requires {wanted}")
    if "8030" in seen:
        # a digital signature must sign a serialised key: (253), (255) and (8003) with their
        # optional serial component present
        for ai in ("253", "255", "8003"):
            if ai in seen and len(seen[ai]) == _entry(ai).min_length:
                raise GS1Error(f"AI ({ai}) must carry its serial component when used with AI (8030)")
    return tuple(unique)


# --- element-string forms -------------------------------------------------------------------

_BRACKET_AI = re.compile(r"(?<!\\)\((\d{2,4})\)")


def parse_bracketed(text: str) -> list[Element]:
    """``(01)12345678901231(10)ABC``; a literal ``(`` in a value is written ``\\(``."""
    if not text.startswith("("):
        raise GS1Error("bracketed element string must start with '(AI)'")
    marks = list(_BRACKET_AI.finditer(text))
    if not marks or marks[0].start() != 0:
        raise GS1Error("bracketed element string must start with '(AI)'")
    elements = []
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following else len(text)
        value = text[mark.end():end].replace("\\(", "(")
        elements.append(Element(mark.group(1), value))
    return elements


def parse_unbracketed(data: str) -> list[Element]:
    """Concatenated AIs and values; a separator (GS, or a documented spelling of it) ends every
    variable-length value that is not last."""
    for spelling in _SEPARATOR_SPELLINGS:
        data = data.replace(spelling, GS)
    if data.startswith(GS):  # FNC1 in first position, as some scanners transmit it
        data = data[1:]
    elements: list[Element] = []
    position = 0
    while position < len(data):
        if data[position] == GS:
            raise GS1Error(f"unexpected separator at position {position}")
        entry = lookup_prefix(data[position:])
        if entry is None:
            raise GS1Error(f"unknown AI at position {position}: {data[position:position + 4]!r}")
        start = position + len(entry.ai)
        if entry.predefined_length:
            end = start + entry.max_length
            if end > len(data) or GS in data[start:end]:
                raise GS1Error(f"AI ({entry.ai}): data too short (predefined length {entry.max_length})")
            value, position = data[start:end], end
            if position < len(data) and data[position] == GS:
                position += 1  # a redundant separator after a predefined-length AI
        else:
            end = data.find(GS, start)
            end = len(data) if end < 0 else end
            value = data[start:end]
            position = end + 1 if end < len(data) else end
        elements.append(Element(entry.ai, value))
    if not elements:
        raise GS1Error("no data")
    return elements


def parse(text: str) -> Parsed:
    """Parse and validate any of the supported forms; raise ``GS1Error`` with the reason."""
    if not text:
        raise GS1Error("no data")
    if any(ord(c) < 32 and c != GS for c in text) or any(ord(c) > 126 for c in text):
        raise GS1Error("data contains characters outside printable ASCII")
    symbology = None
    if text.startswith("]") and len(text) >= 3:
        symbology, text = text[:3], text[3:]
        if symbology in _PLAIN_IDENTIFIERS:
            if not text.startswith(_SCHEMES):
                raise GS1Error(f"{symbology} carries plain data, not GS1 data (nor a Digital Link URI)")
            link = parse_digital_link(text)
            return Parsed("digital_link", link.elements, symbology=symbology, digital_link=link)
        if symbology in _GTIN_IDENTIFIERS:
            digits = _GTIN_IDENTIFIERS[symbology]
            if len(text) != digits or not (text.isascii() and text.isdigit()):
                raise GS1Error(f"{symbology} carries a {digits}-digit GTIN")
            element = Element("01", text.zfill(14))
            return Parsed("scanner", check_message([element]), symbology=symbology)
        if symbology not in SYMBOLOGY_IDENTIFIERS:
            raise GS1Error(f"unsupported symbology identifier {symbology}")
        return Parsed("scanner", check_message(parse_unbracketed(text)), symbology=symbology)
    if text.lower().startswith(("http://", "https://")):  # the parser refuses a mixed-case scheme
        link = parse_digital_link(text)
        return Parsed("digital_link", link.elements, digital_link=link)
    if text.startswith("("):
        return Parsed("bracketed", check_message(parse_bracketed(text)))
    return Parsed("unbracketed", check_message(parse_unbracketed(text)))


# --- Digital Link --------------------------------------------------------------------------

# characters a URI may contain at all (RFC 3986), and those a domain may not
_URI_CHARACTERS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"
)
_BAD_DOMAIN_CHARACTERS = frozenset("_~?#@!$&'()*+,;=%")
_SCHEMES = ("https://", "HTTPS://", "http://", "HTTP://")  # mixed case is not accepted
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def _decode(text: str, what: str, *, query: bool = False) -> str:
    """Percent-decoding as GS1's syntax engine does it: a ``%`` not followed by two hex digits
    stays a literal ``%`` (a CSET 82 character); ``+`` is a space in the query string; a
    decoded NUL is refused. Bytes decode one to one, so anything non-ASCII then fails the
    character-set check."""
    if query:
        text = text.replace("+", " ")
    decoded = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    if "\x00" in decoded:
        raise GS1Error(f"{what}: decoded value contains NUL")
    return decoded


def _is_ai(segment: str) -> bool:
    return segment.isascii() and segment.isdigit() and segment in ai_table()


def _valid_sequence(key: str, qualifiers: Sequence[str]) -> bool:
    """Whether ``qualifiers`` follow ``key`` in one of its dictionary orders (any may be left out)."""
    entry = ai_table().get(key)
    if entry is None or entry.dl_qualifiers is None:
        return False
    for sequence in entry.dl_qualifiers:
        position = 0
        for ai in qualifiers:
            try:
                position = sequence.index(ai, position) + 1
            except ValueError:
                break
        else:
            return True
    return False


def _check_qualifiers(key: Element, qualifiers: Sequence[Element]) -> None:
    if not _valid_sequence(key.ai, [q.ai for q in qualifiers]):
        entry = _entry(key.ai)
        allowed = " | ".join("/".join(seq) or "none" for seq in entry.dl_qualifiers or ())
        got = "/".join(q.ai for q in qualifiers)
        raise GS1Error(f"key qualifiers {got} not allowed after ({key.ai}) (in order: {allowed})")


def parse_digital_link(uri: str) -> DigitalLink:
    """Parse and validate a GS1 Digital Link URI (uncompressed form)."""
    if any(c not in _URI_CHARACTERS for c in uri):
        raise GS1Error("URI contains characters that are not allowed in a URI")
    scheme = next((s for s in _SCHEMES if uri.startswith(s)), None)
    if scheme is None:
        raise GS1Error("a Digital Link URI starts with http:// or https://")
    rest = uri[len(scheme):]
    slash = rest.find("/")
    if slash < 1:
        raise GS1Error("Digital Link URI has no domain or no path")
    domain, rest = rest[:slash], rest[slash:]
    if any(c in _BAD_DOMAIN_CHARACTERS for c in domain):
        raise GS1Error("domain contains characters that are not allowed in a domain")
    rest = rest.split("#", 1)[0]  # a fragment ends the data
    path, _, query = rest.partition("?")
    segments = path.split("/")[1:]
    # walk back in (AI, value) pairs from the end of the path; the first primary key met is
    # the root of the Digital Link path (anything before it is the resolver's own path)
    start = None
    i = len(segments) - 2
    while i >= 0 and _is_ai(segments[i]):
        if _entry(segments[i]).is_dl_primary_key:
            start = i
            break
        i -= 2
    if start is None:
        raise GS1Error("no GS1 Digital Link primary key in the path")
    pairs = []
    for j in range(start, len(segments), 2):
        ai, raw = segments[j], segments[j + 1]
        if raw == "":
            raise GS1Error(f"AI ({ai}): empty value in the path")
        pairs.append(Element(ai, _decode(raw, f"AI ({ai})")))
    key, qualifiers = pairs[0], pairs[1:]
    attributes: list[Element] = []
    other: list[tuple[str, str]] = []
    for item in query.split("&"):
        if not item:
            continue
        name, has_value, raw_value = item.partition("=")
        if not has_value or not (name.isascii() and name.isdigit()):
            other.append((_decode(name, "query parameter", query=True),
                          _decode(raw_value, "query parameter", query=True)))
            continue
        entry = ai_table().get(name)
        if entry is None:
            raise GS1Error(f"unknown AI ({name}) in the query string")
        if raw_value == "":
            raise GS1Error(f"AI ({name}): empty value in the query string")
        value = _decode(raw_value, f"AI ({name})", query=True)
        if name == "01" and len(value) in (8, 12, 13):
            value = value.zfill(14)  # a GTIN-8/12/13 as an attribute is written as a GTIN-14
        attributes.append(Element(name, value))
    _check_qualifiers(key, qualifiers)
    path_ais = [e.ai for e in pairs]
    seen = set(path_ais)
    for attribute in attributes:
        if attribute.ai in seen:
            raise GS1Error(f"AI ({attribute.ai}) appears more than once")
        seen.add(attribute.ai)
        if not _entry(attribute.ai).dl_attribute:
            raise GS1Error(f"AI ({attribute.ai}) is not allowed as a Digital Link data attribute")
        for position in range(1, len(path_ais) + 1):
            trial = [*path_ais[1:position], attribute.ai, *path_ais[position:]]
            if _valid_sequence(key.ai, trial):
                raise GS1Error(f"AI ({attribute.ai}) is a key qualifier: it belongs in the path, not the query string")
    check_message([*pairs, *attributes])
    return DigitalLink(
        domain=domain, path_prefix="/" + "/".join(segments[:start]) if start else "",
        primary_key=key, qualifiers=tuple(qualifiers), attributes=tuple(attributes), other_query=tuple(other),
    )


def build_digital_link(base_url: str, key: Element, qualifiers: Iterable[Element] = (),
                       attributes: Iterable[Element] = ()) -> str:
    """A Digital Link URI on ``base_url`` (scheme, domain and optional path, no trailing slash);
    values are percent-encoded, the result is parsed back to prove it valid."""
    path = "".join(f"/{e.ai}/{quote(e.value, safe=_DL_SAFE)}" for e in (key, *qualifiers))
    query = "&".join(f"{e.ai}={quote(e.value, safe=_DL_SAFE)}" for e in attributes)
    uri = base_url.rstrip("/") + path + (f"?{query}" if query else "")
    parse_digital_link(uri)
    return uri


# --- building element strings ---------------------------------------------------------------


def _ordered(elements: Sequence[Element]) -> list[Element]:
    # predefined-length AIs first, so only variable-length values between others need a separator
    return sorted(elements, key=lambda e: not _entry(e.ai).predefined_length)


def element_string(elements: Sequence[Element], separator: str = GS) -> str:
    """The unbracketed element string (no leading FNC1), validated."""
    ordered = _ordered(list(check_message(elements)))
    out = []
    for index, element in enumerate(ordered):
        out.append(element.ai + element.value)
        if index < len(ordered) - 1 and not _entry(element.ai).predefined_length:
            out.append(separator)
    return "".join(out)


def hri(elements: Sequence[Element]) -> str:
    """The human-readable form ``(01)...(10)...``, in element-string order, validated."""
    return "".join(f"({e.ai}){e.value}" for e in _ordered(list(check_message(elements))))


def bracketed(elements: Sequence[Element]) -> str:
    """The bracketed form that barcode encoders take (``[01]...``), in element-string order."""
    return "".join(f"[{e.ai}]{e.value}" for e in _ordered(list(check_message(elements))))
