"""Valid data for any AI of the syntax dictionary, built from its components and linters, and
the smallest set of partner AIs that meets its ``req`` rules without breaking an ``ex`` rule.

Used by the rule tests to make one valid and several invalid cases for every AI."""

from __future__ import annotations

from grading.trace.ais import AiEntry, Component, ai_table, matches
from grading.trace.linters import check_digit, check_pair

_LINTER_SAMPLES = {
    "yymmdd": "250915", "yymmd0": "250915", "yyyymmdd": "20250915", "yyyymmd0": "20250915",
    "hh": "12", "mi": "30", "ss": "45", "hhmi": "1230", "hyphen": "-", "iso3166": "156",
    "iso3166999": "156", "iso3166alpha2": "CN", "iso4217": "156", "iso5218": "1", "latitude": "0900000000",
    "longitude": "1800000000", "mediatype": "01", "pieceoftotal": "0102",
    "posinseqslash": "1/2", "winding": "1", "yesno": "1", "zero": "0", "importeridx": "A",
    "iban": "GB82WEST12345698765432", "packagetype": "BX",
}


def component_value(component: Component, length: int | None = None) -> str:
    n = length or component.min_length if component.fixed else (length or max(component.min_length, min(8, component.max_length)))
    for name in component.linters:
        if name == "nonzero":
            return "0" * (n - 1) + "1"
        if name in _LINTER_SAMPLES:
            return _LINTER_SAMPLES[name]
    linters = set(component.linters)
    if "csum" in linters:
        return ("6901234" + "5" * 20)[: n - 1] + check_digit(("6901234" + "5" * 20)[: n - 1])
    if "csumalpha" in linters:
        body = ("69012345AB" * 3)[: n - 2]
        return body + check_pair(body)
    if "nozeroprefix" in linters:
        return "1" * n
    if "pcenc" in linters:
        return ("Ab%20" + "c" * 10)[:n] if n >= 5 else "A" * n
    if component.cset == "N":
        return ("6901234" + "5" * 40)[:n]
    if component.cset == "Y":
        return ("6901ABC" + "D" * 40)[:n]
    if component.cset == "Z":
        return ("6901Abc" + "d" * 90)[: n - (n % 3) if n >= 3 else n]
    base = ("6901234aB" if linters & {"gcppos1", "gcppos2", "hasnondigit"} else "Ab1-") + "x" * 90
    return base[:n]


def valid_value(entry: AiEntry) -> str:
    return "".join(component_value(c) for c in entry.components if not c.optional)


def _concrete(pattern: str) -> str:
    table = ai_table()
    return next(ai for ai in table if matches(pattern, ai))


def partners(ai: str) -> list[str] | None:
    """AIs to put beside ``ai`` so that every ``req`` holds and no ``ex`` breaks (None if the
    dictionary's rules allow no such set with this simple search)."""
    table = ai_table()
    chosen = [ai]

    def clash(candidate: str) -> bool:
        for a in chosen:
            if any(matches(p, candidate) for p in table[a].excludes) and candidate != a:
                return True
            if any(matches(p, a) for p in table[candidate].excludes) and candidate != a:
                return True
        return False

    def satisfied(group: tuple[tuple[str, ...], ...]) -> bool:
        return any(all(any(matches(p, x) for x in chosen) for p in alt) for alt in group)

    for _round in range(6):
        pending = [(a, g) for a in chosen for g in table[a].requires if not satisfied(g)]
        if not pending:
            return chosen[1:]
        _owner, group = pending[0]
        for alternative in group:
            picks = [_concrete(p) for p in alternative]
            if not any(clash(p) for p in picks):
                chosen.extend(p for p in picks if p not in chosen)
                break
        else:
            return None
    return None
