"""GS1 rules, case by case from the syntax dictionary itself: for every AI one valid message and
one invalid message per rule kind (length, fixed/variable, character set, check digit, dates,
req, ex), plus Digital Link path rules and the cases TRACEABILITY.md lists as other parsers'
leniencies. The expected verdicts follow from the dictionary's text, not from the parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grading.trace.ais import ai_table, matches
from grading.trace.gs1 import GS, Element, GS1Error, check_message, element_string, parse
from grading.trace.linters import CSET82
from tests.unit.trace.dictionary_cases import partners, valid_value

TABLE = ai_table()
AIS = sorted(TABLE)


def _message(ai: str, value: str | None = None) -> list[Element]:
    mates = partners(ai)
    assert mates is not None, f"no partner set for ({ai})"
    return [Element(ai, value if value is not None else valid_value(TABLE[ai]))] + [
        Element(a, valid_value(TABLE[a])) for a in mates
    ]


def _bracketed(elements: list[Element]) -> str:
    return "".join(f"({e.ai}){e.value.replace('(', chr(92) + '(')}" for e in elements)


def test_dictionary_loads_every_ai_with_its_flags() -> None:
    assert len(TABLE) > 500
    assert TABLE["01"].predefined_length and TABLE["01"].dl_qualifiers == (("22", "10", "21"), ("235",))
    assert not TABLE["422"].predefined_length  # fixed length, but a separator is needed after it
    assert TABLE["3103"].excludes == ("310n",) and not TABLE["21"].dl_attribute
    assert [c.optional for c in TABLE["7007"].components] == [False, True]


@pytest.mark.parametrize("ai", AIS)
def test_valid_message_for_every_ai_parses_in_every_form(ai: str) -> None:
    elements = _message(ai)
    assert check_message(elements)
    for text in (_bracketed(elements), element_string(elements), "]d2" + element_string(elements),
                 element_string(elements, separator="^")):
        parsed = parse(text)
        assert {e.ai: e.value for e in parsed.elements} == {e.ai: e.value for e in elements}


@pytest.mark.parametrize("ai", AIS)
def test_too_long_is_refused(ai: str) -> None:
    entry = TABLE[ai]
    value = valid_value(entry)
    longest = value + "1" * (entry.max_length - len(value) + 1)
    with pytest.raises(GS1Error, match=rf"AI \({ai}\): data too long"):
        check_message(_message(ai, longest))


@pytest.mark.parametrize("ai", [ai for ai in AIS if TABLE[ai].components[0].fixed and TABLE[ai].min_length > 1])
def test_fixed_length_too_short_is_refused(ai: str) -> None:
    value = valid_value(TABLE[ai])[: TABLE[ai].min_length - 1]
    with pytest.raises(GS1Error, match=rf"AI \({ai}\): data too short"):
        check_message(_message(ai, value))


@pytest.mark.parametrize("ai", AIS)
def test_empty_value_is_refused(ai: str) -> None:
    with pytest.raises(GS1Error, match="no data"):
        check_message(_message(ai, ""))


_OUTSIDE = {"N": "A", "X": " ", "Y": "a", "Z": "!"}


@pytest.mark.parametrize("ai", AIS)
def test_character_outside_the_set_is_refused(ai: str) -> None:
    component = TABLE[ai].components[0]
    value = valid_value(TABLE[ai])
    bad = value[: component.min_length - 1] + _OUTSIDE[component.cset] + value[component.min_length:]
    with pytest.raises(GS1Error, match=rf"AI \({ai}\)[^:]*: (non-digit character|character .* is not in GS1 CSET)"):
        check_message(_message(ai, bad))


@pytest.mark.parametrize("ai", [ai for ai in AIS if any("csum" in c.linters for c in TABLE[ai].components)])
def test_wrong_check_digit_is_refused(ai: str) -> None:
    entry = TABLE[ai]
    good = valid_value(entry)
    end = next(c.max_length for c in entry.components if "csum" in c.linters)
    offset = sum(c.max_length for c in entry.components[: next(i for i, c in enumerate(entry.components) if "csum" in c.linters)])
    position = offset + end - 1
    bad = good[:position] + str((int(good[position]) + 1) % 10) + good[position + 1:]
    with pytest.raises(GS1Error, match="check digit"):
        check_message(_message(ai, bad))


_DATE_AIS = [ai for ai in AIS if TABLE[ai].components[0].linters[:1] in (("yymmdd",), ("yymmd0",))]


@pytest.mark.parametrize("ai", _DATE_AIS)
def test_dates(ai: str) -> None:
    first = TABLE[ai].components[0]
    rest = valid_value(TABLE[ai])[6:]
    for bad in ("251301", "250132", "250230", "250431", "230229"):
        with pytest.raises(GS1Error, match="month|day"):
            check_message(_message(ai, bad + rest))
    check_message(_message(ai, "240229" + rest))  # leap day
    if first.linters[0] == "yymmd0":
        check_message(_message(ai, "250600" + rest))  # day 00: "no day", allowed where the dictionary says yymmd0
    else:
        with pytest.raises(GS1Error, match="day"):
            check_message(_message(ai, "250600" + rest))


def test_packaging_date_day_zero_is_valid_but_harvest_day_zero_is_not() -> None:
    assert parse("(01)16901234567899(13)250600").get("13") == "250600"
    with pytest.raises(GS1Error, match="day"):
        parse("(01)16901234567899(7007)250600")
    assert parse("(01)16901234567899(7007)250901250910").get("7007") == "250901250910"  # a range


@pytest.mark.parametrize("ai", [ai for ai in AIS if TABLE[ai].requires])
def test_missing_required_partner_is_refused(ai: str) -> None:
    with pytest.raises(GS1Error, match=r"requires"):
        check_message([Element(ai, valid_value(TABLE[ai]))])


def _excluded_pairs() -> list[tuple[str, str]]:
    pairs = []
    for ai in AIS:
        for pattern in TABLE[ai].excludes:
            other = next((x for x in AIS if matches(pattern, x) and x != ai), None)
            if other is not None:
                pairs.append((ai, other))
    return pairs


@pytest.mark.parametrize(("ai", "other"), _excluded_pairs())
def test_excluded_pair_is_refused(ai: str, other: str) -> None:
    mates = partners(ai) or []
    elements = [Element(ai, valid_value(TABLE[ai])), Element(other, valid_value(TABLE[other]))]
    elements += [Element(a, valid_value(TABLE[a])) for a in mates if a not in (ai, other)]
    with pytest.raises(GS1Error, match="may not be used together|requires"):
        check_message(elements)


def test_an_ai_does_not_exclude_itself_and_repeats_must_agree() -> None:
    assert parse("(01)16901234567899(3103)012500(3103)012500").get("3103") == "012500"
    with pytest.raises(GS1Error, match="twice"):
        parse("(01)16901234567899(3103)012500(3103)012501")


# --- element-string forms -------------------------------------------------------------------


CARTON_RAW = "0116901234567899310301250013250915" + "10YN2509A" + GS + "21000123" + GS + "422156"


@pytest.mark.parametrize("text", [
    CARTON_RAW,
    "]C1" + CARTON_RAW, "]d2" + CARTON_RAW, "]Q3" + CARTON_RAW,
    CARTON_RAW.replace(GS, "^"), "^" + CARTON_RAW.replace(GS, "^"),
    CARTON_RAW.replace(GS, "{GS}"), CARTON_RAW.replace(GS, "<GS>"),
    "(01)16901234567899(3103)012500(13)250915(10)YN2509A(21)000123(422)156",
])
def test_the_carton_example_in_every_form(text: str) -> None:
    parsed = parse(text)
    assert [(e.ai, e.value) for e in parsed.elements] == [
        ("01", "16901234567899"), ("3103", "012500"), ("13", "250915"), ("10", "YN2509A"),
        ("21", "000123"), ("422", "156"),
    ]


@pytest.mark.parametrize(("text", "reason"), [
    ("0116901234567899" + "10YN2509A21000123456789", "too long"),  # separator dropped: the lot runs on
    ("]C1" + "0116901234567899" + "10ABC" + GS + GS, "unexpected separator"),
    ("]J1" + "0116901234567899", "symbology"),
    ("]Q1" + "0116901234567899", "plain data"),
    ("]E0" + "690123456789", "13-digit GTIN"),
    ("]E0" + "6901234567893", "check digit"),
    ("]X0" + "0116901234567899", "symbology"),
    ("0116901234567899" + GS + GS + "10A", "unexpected separator"),
    ("011690123456789", "too short"),
    ("(01)16901234567899(10)LOT 1", "CSET 82"),  # biip removes the space
    ("(01)16901234567899(10)", "no data"),  # biip drops the empty lot
    ("(3103)012500", "requires"),  # biip accepts weight without GTIN
    ("(13)250915", "requires"),
    ("(10)ABC", "requires"),
    ("(21)ABC", "requires"),
    ("(01)16901234567899(3102)000100(3103)000100", "together"),
    ("(01)16901234567899(02)16901234567899", "together"),
    ("(01)16901234567899(10)批次", "printable ASCII"),
    ("(23)123", "unknown AI"),
    ("2312345", "unknown AI"),
    ("(01)16901234567899(422)999", "ISO 3166"),
    ("(01)16901234567899(21)" + "A" * 21, "too long"),
])
def test_invalid_strings_give_the_reason(text: str, reason: str) -> None:
    with pytest.raises(GS1Error, match=reason):
        parse(text)


# --- Digital Link ---------------------------------------------------------------------------

DL = "https://trace.example.cn/01/16901234567899/10/YN2509A/21/000123?13=250915&3103=012500&422=156"


@pytest.mark.parametrize("uri", [
    DL,
    "https://trace.example.cn/01/16901234567899",
    "https://trace.example.cn/01/16901234567899/10/YN2509A",
    "https://trace.example.cn/01/16901234567899/21/000123",  # 10 skipped: order kept
    "https://trace.example.cn/01/16901234567899/22/V1/10/A/21/B",
    "https://trace.example.cn/01/16901234567899/235/TPX1",
    "https://trace.example.cn/some/prefix/01/16901234567899/10/YN2509A?linkType=all",
    "https://trace.example.cn/01/16901234567899/10/A%2FB/21/x%25y?foo=bar&linkType=gs1:pip",
    "https://id.gs1.org/00/069012340000000016",
    "https://id.gs1.org/414/6901234567892/254/DOCK1",
    "]Q1" + DL,
    "HTTPS://trace.example.cn/01/16901234567899",
    "https://t.cn/01/16901234567899/10/A%2",  # a % without two hex digits is a literal % (CSET 82)
    "https://t.cn/01/16901234567899#fragment",
    "https://t.cn/00/faux/01/16901234567899",  # the rightmost primary key is the root
    "https://t.cn/01/16901234567899?&&linkType=all&singleton",
    "https://[2001:db8::1]:8443/01/16901234567899",
])
def test_valid_digital_links(uri: str) -> None:
    link = parse(uri).digital_link
    assert link is not None
    assert link.primary_key.ai in ("01", "00", "414")


def test_query_plus_is_a_space_and_a_short_gtin_attribute_is_padded() -> None:
    with pytest.raises(GS1Error, match="CSET 82"):
        parse("https://t.cn/00/069012340000000016?403=A+B")
    with pytest.raises(GS1Error, match=r"AI \(02\): data too short"):  # only (01) is padded
        parse("https://t.cn/00/069012340000000016?02=6901234567892&37=12")
    padded = parse("https://t.cn/414/6901234000016?01=6901234567892").digital_link
    assert padded is not None and padded.get("01") == "06901234567892"


def test_trailing_separator_is_tolerated() -> None:
    assert parse("]d2" + "0116901234567899" + "10ABC" + GS).get("10") == "ABC"
    assert parse("]E0" + "6901234567892").get("01") == "06901234567892"


def test_a_digital_signature_needs_a_serialised_key() -> None:
    with pytest.raises(GS1Error, match="serial component"):
        parse("(8003)01234567890128(8030)AbCd")
    assert parse("(8003)01234567890128SER1(8030)AbCd").get("8030") == "AbCd"


def test_digital_link_values_are_percent_decoded() -> None:
    link = parse("https://t.cn/01/16901234567899/10/A%2FB/21/x%25y?foo=bar").digital_link
    assert link is not None and link.get("10") == "A/B" and link.get("21") == "x%y"
    assert link.query("foo") == "bar"


@pytest.mark.parametrize(("uri", "reason"), [
    ("https://t.cn/01/16901234567899/21/A/10/B", "not allowed"),  # bad qualifier order
    ("https://t.cn/01/16901234567899/22/A/235/B", "not allowed"),  # alternatives mixed
    ("https://t.cn/01/6901234567892", "too short"),  # 13-digit GTIN: biip pads it
    ("https://t.cn/01/16901234567899?10=ABC", "path"),  # biip takes a lot from the query
    ("https://t.cn/01/16901234567899?21=ABC", "path|attribute"),
    ("https://t.cn/01/16901234567899?3103=012500&3103=012500", "more than once"),
    ("https://t.cn/01/16901234567898/10/A", "check digit"),
    ("https://t.cn/gtin/16901234567899/lot/A", "primary key"),  # convenience aliases were removed
    ("https://t.cn/10/A", "primary key"),
    ("https://t.cn/01/16901234567899/10/", "empty value"),
    ("https://t.cn/01/16901234567899/10/A%00", "NUL"),
    ("https://t.cn/01/16901234567899/10/A%E4%B8%AD", "CSET 82"),
    ("https://t.cn/01/16901234567899/10/A B", "not allowed in a URI"),
    ("HtTpS://t.cn/01/16901234567899", "http"),
    ("https://t_cn/01/16901234567899", "domain"),
    ("https://t.cn/01/16901234567899/21/A?10=B", "belongs in the path"),  # would fit between 01 and 21
    ("https://t.cn/01/16901234567899?22=B", "not allowed as a Digital Link data attribute"),
    ("https://t.cn/01/16901234567899/10/A/21/B?01=16901234567899", "more than once"),
    ("https://t.cn/01/16901234567899/10/LOT%201", "CSET 82"),
    ("https://t.cn/01/16901234567899?13=250230", "day"),
    ("https://t.cn/01/16901234567899?23=x", "unknown AI"),
    ("ftp://t.cn/01/16901234567899", "unknown AI|scheme"),
    ("https:///01/16901234567899", "scheme|domain"),
    ("https://t.cn/01/16901234567899/10/A?3102=000100&3103=000100", "together"),
])
def test_invalid_digital_links(uri: str, reason: str) -> None:
    with pytest.raises(GS1Error, match=reason):
        parse(uri)


# --- properties -------------------------------------------------------------------------------

_printable = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=80)
_gs1ish = st.text(alphabet="0123456789()[]^%/?&=:" + GS + "AZaz-", max_size=80)


@settings(max_examples=600, deadline=None)
@given(text=st.one_of(_printable, _gs1ish, _gs1ish.map(lambda t: "]d2" + t), _gs1ish.map(lambda t: "https://t.cn/01/" + t)))
def test_any_input_is_parsed_or_refused_with_a_gs1_error(text: str) -> None:
    try:
        parsed = parse(text)
    except GS1Error as exc:
        assert str(exc)
        return
    # whatever is accepted is a valid message: checking its elements again must pass
    assert check_message(list(parsed.elements))


@settings(max_examples=200, deadline=None)
@given(ais=st.lists(st.sampled_from(["01", "3103", "13", "10", "21", "422", "7007", "11", "17", "240"]),
                    min_size=1, max_size=6, unique=True),
       lot=st.text(alphabet=CSET82, min_size=1, max_size=20))
def test_built_messages_round_trip_in_every_form(ais: list[str], lot: str) -> None:
    elements = [Element("01", "16901234567899")] + [
        Element(ai, lot if TABLE[ai].components[0].cset == "X" and len(lot) <= TABLE[ai].max_length
                else valid_value(TABLE[ai])) for ai in ais if ai != "01"
    ]
    want = {e.ai: e.value for e in elements}
    for text in (element_string(elements), "]C1" + element_string(elements, "^"), _bracketed(elements)):
        assert {e.ai: e.value for e in parse(text).elements} == want
