"""The table of GS1 Application Identifiers, read from GS1's Barcode Syntax Dictionary.

Owns loading ``data/gs1-syntax-dictionary.txt`` (GS1's own machine-readable file, Apache-2.0,
release in its header) into typed entries: each AI's components (character set, length, the
content checks the dictionary names), whether it is of predefined length (no separator needed
after it), whether it may be a Digital Link data attribute, its ``req``/``ex`` pairing rules and
its Digital Link key qualifiers. The file is parsed once at import; nothing here validates data
(that is ``grading.trace.gs1``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DICTIONARY_PATH = Path(__file__).with_name("data") / "gs1-syntax-dictionary.txt"

_COMPONENT = re.compile(r"^([NXYZ])(\d+)?(?:\.\.(\d+))?$")


class DictionaryError(Exception):
    """The syntax dictionary file has a line this loader does not understand."""


@dataclass(frozen=True)
class Component:
    """One part of an AI's data field: ``cset`` N (digits), X (CSET 82), Y (CSET 39) or Z (CSET 64)."""

    cset: str
    min_length: int
    max_length: int
    optional: bool
    linters: tuple[str, ...]

    @property
    def fixed(self) -> bool:
        return self.min_length == self.max_length


@dataclass(frozen=True)
class AiEntry:
    ai: str
    title: str
    predefined_length: bool  # flag "*": never followed by a separator
    dl_attribute: bool  # flag "?": allowed in a Digital Link query string
    components: tuple[Component, ...]
    # every group must be met; a group is met by any one alternative; an alternative is a set
    # of AI patterns ("01+21") that must all be present. Patterns use "n" for any digit.
    requires: tuple[tuple[tuple[str, ...], ...], ...]
    excludes: tuple[str, ...]
    # None: not a Digital Link primary key; otherwise the alternative ordered qualifier lists
    dl_qualifiers: tuple[tuple[str, ...], ...] | None

    @property
    def min_length(self) -> int:
        return sum(c.min_length for c in self.components if not c.optional)

    @property
    def max_length(self) -> int:
        return sum(c.max_length for c in self.components)

    @property
    def is_dl_primary_key(self) -> bool:
        return self.dl_qualifiers is not None


def _component(text: str, line_no: int) -> Component:
    optional = False
    spec, *linters = text.split(",")
    if spec.startswith("[") and spec.endswith("]"):
        optional, spec = True, spec[1:-1]
    match = _COMPONENT.match(spec)
    if match is None:
        raise DictionaryError(f"{DICTIONARY_PATH.name}:{line_no}: component {text!r}")
    cset, first, upper = match.groups()
    if upper is not None:
        low, high = 1, int(upper)
    else:
        low = high = int(first)
    return Component(cset=cset, min_length=low, max_length=high, optional=optional, linters=tuple(linters))


def _expand(ais: str) -> list[str]:
    if "-" not in ais:
        return [ais]
    first, last = ais.split("-")
    width = len(first)
    return [str(n).zfill(width) for n in range(int(first), int(last) + 1)]


def parse_dictionary(text: str) -> dict[str, AiEntry]:
    """Every AI of the dictionary text, ranges expanded (3100-3105 gives six entries)."""
    table: dict[str, AiEntry] = {}
    for line_no, raw in enumerate(text.splitlines(), start=1):
        body, _, title = raw.partition("#")
        fields = body.split()
        if not fields:
            continue
        ais, rest = fields[0], fields[1:]
        flags = ""
        if rest and not _COMPONENT.match(rest[0].split(",")[0].strip("[]")):
            flags, rest = rest[0], rest[1:]
        components: list[Component] = []
        while rest and _COMPONENT.match(rest[0].split(",")[0].strip("[]")):
            components.append(_component(rest.pop(0), line_no))
        requires: list[tuple[tuple[str, ...], ...]] = []
        excludes: list[str] = []
        qualifiers: tuple[tuple[str, ...], ...] | None = None
        for attribute in rest:
            key, _, value = attribute.partition("=")
            if key == "req":
                requires.append(tuple(tuple(alt.split("+")) for alt in value.split(",")))
            elif key == "ex":
                excludes.extend(value.split(","))
            elif key == "dlpkey":
                qualifiers = tuple(tuple(seq.split(",")) for seq in value.split("|")) if value else ((),)
            else:
                raise DictionaryError(f"{DICTIONARY_PATH.name}:{line_no}: attribute {attribute!r}")
        if not components:
            raise DictionaryError(f"{DICTIONARY_PATH.name}:{line_no}: no data specification")
        for ai in _expand(ais):
            table[ai] = AiEntry(
                ai=ai, title=title.strip(), predefined_length="*" in flags, dl_attribute="?" in flags,
                components=tuple(components), requires=tuple(requires), excludes=tuple(excludes),
                dl_qualifiers=qualifiers,
            )
    return table


@cache
def ai_table() -> dict[str, AiEntry]:
    """The AIs of the dictionary shipped with gradeline."""
    return parse_dictionary(DICTIONARY_PATH.read_text(encoding="utf-8"))


def matches(pattern: str, ai: str) -> bool:
    """Whether ``ai`` fits a dictionary pattern such as ``310n`` or ``31nn`` (n: any digit)."""
    return len(pattern) == len(ai) and all(p == a or (p == "n" and a.isdigit()) for p, a in zip(pattern, ai, strict=True))


def lookup_prefix(data: str) -> AiEntry | None:
    """The AI that ``data`` starts with (AIs are 2 to 4 digits and none is a prefix of another)."""
    table = ai_table()
    for length in (2, 3, 4):
        entry = table.get(data[:length])
        if entry is not None:
            return entry
    return None
