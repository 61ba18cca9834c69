"""Carton, pallet and packing-center codes: check digits, config validation naming the field,
and the carton's element string and Digital Link parsed back by an independent parser (biip)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import biip
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.config import ConfigError, load_config
from grading.trace.codes import TraceConfig, carton_code, gln_element, sscc
from grading.trace.gs1 import GS, GS1Error, parse
from grading.trace.linters import CSET82, check_digit, check_pair, has_valid_check_digit

CONFIG = {
    "company_prefix": "6901234",
    "packing_center_gln": "6901234000016",
    "digital_link_base": "https://trace.example.cn",
    "gtins": [{"product": "沃柑", "quality_class": "特级", "size_class": "L", "gtin": "16901234567899"}],
}


@pytest.mark.parametrize(("payload", "check"), [
    ("690123456789", "2"), ("1690123456789", "9"), ("06901234000000001", "6"), ("690123400001", "6"),
])
def test_check_digits_of_the_design_examples(payload: str, check: str) -> None:
    assert check_digit(payload) == check
    assert has_valid_check_digit(payload + check)
    assert biip.gtin.Gtin.parse(payload + check) if len(payload) in (12, 13) else True


def test_check_pair_matches_the_published_gmn_example() -> None:
    assert check_pair("1987654Ad4X4bL5ttr2310c") == "2K"


@given(st.text(alphabet="0123456789", min_size=13, max_size=13))
def test_every_gtin_check_digit_agrees_with_biip(payload: str) -> None:
    gtin = "0" + payload[:12] + check_digit("0" + payload[:12])
    assert str(biip.checksums.gs1_standard_check_digit(gtin[:-1])) == gtin[-1]


def test_config_accepts_good_keys() -> None:
    config = TraceConfig.model_validate(CONFIG)
    assert config.gtin_for("沃柑", "特级", "L") == "16901234567899"


@pytest.mark.parametrize(("change", "field"), [
    ({"packing_center_gln": "6901234000017"}, "packing_center_gln"),
    ({"packing_center_gln": "690123400001"}, "packing_center_gln"),
    ({"company_prefix": "69012"}, "company_prefix"),
    ({"company_prefix": "2001234"}, "company_prefix"),
    ({"company_prefix": "69O1234"}, "company_prefix"),
    ({"gtins": [{"product": "a", "quality_class": "b", "size_class": "c", "gtin": "16901234567898"}]}, "gtins.0.gtin"),
    ({"gtins": [{"product": "a", "quality_class": "b", "size_class": "c", "gtin": "6901234567892"}]}, "gtins.0.gtin"),
    ({"digital_link_base": "https://trace.example.cn/"}, "digital_link_base"),
    ({"sscc_extension_digit": 10}, "sscc_extension_digit"),
])
def test_config_names_the_field_with_a_bad_key(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TraceConfig.model_validate({**CONFIG, **change})
    locations = [".".join(str(p) for p in error["loc"]) for error in caught.value.errors()]
    assert field in locations, locations


def test_sscc_and_gln() -> None:
    assert sscc(extension_digit=0, company_prefix="6901234", serial_reference=1) == "069012340000000016"
    assert biip.sscc.Sscc.parse("069012340000000016").extension_digit == 0
    with pytest.raises(GS1Error):
        sscc(extension_digit=0, company_prefix="6901234", serial_reference=10**9)
    assert gln_element("6901234000016").value == "6901234000016"
    with pytest.raises(GS1Error, match="check digit"):
        gln_element("6901234000017")


def test_carton_code_example() -> None:
    code = carton_code(gtin="16901234567899", lot="YN2509A", serial=123, pack_date=date(2025, 9, 15), net_weight_g=12500)
    assert code.element_string() == "0116901234567899310301250013250915" + "10YN2509A" + GS + "21123"
    assert code.hri() == "(01)16901234567899(3103)012500(13)250915(10)YN2509A(21)123"
    assert code.digital_link("https://trace.example.cn") == (
        "https://trace.example.cn/01/16901234567899/10/YN2509A/21/123?13=250915&3103=012500"
    )
    with pytest.raises(GS1Error, match="CSET 82"):
        carton_code(gtin="16901234567899", lot="批次1", serial=1, pack_date=date(2025, 9, 15), net_weight_g=1)
    with pytest.raises(GS1Error, match="3103"):
        carton_code(gtin="16901234567899", lot="A", serial=1, pack_date=date(2025, 9, 15), net_weight_g=1_000_000)


_lots = st.text(alphabet=CSET82, min_size=1, max_size=20)
_gtins = st.text(alphabet="0123456789", min_size=13, max_size=13).map(lambda p: "1" + p[1:] + check_digit("1" + p[1:]))


@settings(max_examples=150, deadline=None)
@given(gtin=_gtins, lot=_lots, serial=_lots, day=st.dates(date(2000, 1, 1), date(2049, 12, 31)),
       weight_g=st.integers(1, 999_999))
def test_carton_codes_parse_back_here_and_in_biip(gtin: str, lot: str, serial: str, day: date, weight_g: int) -> None:
    code = carton_code(gtin=gtin, lot=lot, serial=serial, pack_date=day, net_weight_g=weight_g)
    raw = code.element_string()
    uri = code.digital_link("https://trace.example.cn")
    for text in (raw, "]d2" + raw, code.hri(), uri):
        parsed = parse(text)
        assert (parsed.get("01"), parsed.get("10"), parsed.get("21")) == (gtin, lot, serial)
        assert parsed.get("3103") == f"{weight_g:06d}" and parsed.get("13") == day.strftime("%y%m%d")
    # the independent parser, on what we generate: same GTIN, lot and serial, valid check digit
    result = biip.parse(raw)
    assert result.gs1_message is not None and result.gs1_message_error is None
    message = result.gs1_message
    assert message.element_strings.get(ai="01").gtin is not None
    assert message.element_strings.get(ai="01").gtin_error is None
    assert message.element_strings.get(ai="01").value == gtin
    assert message.element_strings.get(ai="10").value == lot
    assert message.element_strings.get(ai="21").value == serial
    link = biip.parse(uri)
    assert link.gs1_digital_link_uri is not None, link.gs1_digital_link_uri_error
    dl_message = link.gs1_digital_link_uri.as_gs1_message()
    assert dl_message.element_strings.get(ai="01").value == gtin
    assert dl_message.element_strings.get(ai="10").value == lot
    assert dl_message.element_strings.get(ai="21").value == serial


def test_line_toml_names_the_file_and_the_trace_field(tmp_path: Path) -> None:
    config = tmp_path / "line.toml"
    config.write_text(
        '[trace]\ncompany_prefix = "6901234"\npacking_center_gln = "6901234000017"\n'
        'digital_link_base = "https://trace.example.cn"\n'
        '[[trace.gtins]]\nproduct = "沃柑"\nquality_class = "特级"\nsize_class = "L"\ngtin = "16901234567898"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    text = str(caught.value)
    assert str(config) in text and "trace.packing_center_gln" in text and "trace.gtins[0].gtin" in text
    config.write_text(config.read_text().replace("6901234000017", "6901234000016").replace("567898", "567899"))
    loaded = load_config(config).trace
    assert loaded is not None and loaded.gtin_for("沃柑", "特级", "L") == "16901234567899"
