"""The Digital Link resolver: every valid form of a carton's URI gives that carton's page; JSON
and the linkset by negotiation; malformed and unknown codes a 404 that says nothing; never 500."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from grading.trace.linters import CSET82
from tests.unit.trace.consumer_fixtures import CARTONS, GTIN, resolver_app

CLIENT = TestClient(resolver_app(), raise_server_exceptions=False)
NOT_FOUND = CLIENT.get("/01/00000000000000").text


def _enc(value: str, always: str = "") -> str:
    """Percent-encode what must be, and also any character in ``always`` (allowed either way)."""
    return "".join(f"%{ord(c):02X}" if c in always else quote(c, safe="-._~") for c in value)


@pytest.mark.parametrize(("lot", "serial"), CARTONS)
def test_the_carton_uri_gives_its_page(lot: str, serial: str) -> None:
    response = CLIENT.get(f"/01/{GTIN}/10/{_enc(lot)}/21/{_enc(serial)}?13=250915&3103=012500")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in response.text and "沃柑" in response.text
    assert f"<dd>{serial}</dd>" in response.text.replace("&amp;", "&") or serial in response.text
    assert 'id="temperature-chart"' in response.text


_extras = st.lists(st.sampled_from(["13=250915", "3103=012500", "linkType=gs1%3Apip", "utm_source=wx", "foo",
                                    "7007=250913", "422=156", "linkType=gs1:pip", "context=x"]), max_size=4, unique=True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(carton=st.sampled_from(CARTONS), extras=_extras, encode=st.sets(st.sampled_from("YN2509Axy1"), max_size=3))
def test_every_valid_form_gives_that_cartons_page(carton: tuple[str, str], extras: list[str], encode: set[str]) -> None:
    lot, serial = carton
    uri = f"/01/{GTIN}/10/{_enc(lot, ''.join(encode))}/21/{_enc(serial, ''.join(encode))}"
    if extras:
        uri += "?" + "&".join(extras)
    response = CLIENT.get(uri, headers={"Accept": "application/json"})
    assert response.status_code == 200, uri
    body = response.json()
    assert (body["gtin"], body["lot"], body["serial"]) == (GTIN, lot, serial)


def test_an_odd_host_header_does_not_hide_a_valid_code() -> None:
    response = CLIENT.get(f"/01/{GTIN}/10/YN2509A/21/123", headers={"Host": "line_1:8080", "Accept": "application/json"})
    assert response.status_code == 200 and response.json()["serial"] == "123"


def test_gtin_only_and_gtin_lot_forms() -> None:
    lot_view = CLIENT.get(f"/01/{GTIN}/10/YN2509A", headers={"Accept": "application/json"}).json()
    assert lot_view["lot"] == "YN2509A" and lot_view["serial"] is None and lot_view["temperatures"]
    product = CLIENT.get(f"/01/{GTIN}", headers={"Accept": "application/json"}).json()
    assert product["lot"] is None and product["serial"] is None and product["product"] == "沃柑"
    assert CLIENT.get(f"/01/{GTIN}/10/YN2509A").status_code == 200


def test_linkset_for_link_type_all() -> None:
    response = CLIENT.get(f"/01/{GTIN}/10/YN2509A/21/123?linkType=all")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/linkset+json")
    entry = json.loads(response.text)["linkset"][0]
    assert entry["anchor"].endswith(f"/01/{GTIN}/10/YN2509A/21/123")
    assert entry["https://gs1.org/voc/pip"][0]["href"].endswith("/21/123")
    same = CLIENT.get(f"/01/{GTIN}/10/YN2509A/21/123", headers={"Accept": "application/linkset+json"})
    assert json.loads(same.text) == json.loads(response.text)


@pytest.mark.parametrize("path", [
    f"/01/{GTIN}/10/YN2509A/21/999",  # unknown carton
    f"/01/{GTIN}/10/NOPE",  # unknown lot
    "/01/16901234567882",  # unknown GTIN
    f"/01/{GTIN[:-1]}8/10/YN2509A/21/123",  # wrong check digit
    f"/01/{GTIN}/21/123/10/YN2509A",  # qualifiers out of order
    f"/01/{GTIN}/10/YN2509A/21/123?10=YN2509A",
    f"/01/{GTIN}/10/YN2509A/21/",
    f"/01/{GTIN}/10/YN%ZZ",
    f"/01/{GTIN}/10/LOT%201",
    "/01/6901234567892",  # 13 digits
    f"/01/{GTIN}/22/V1/10/YN2509A/21/123",
    f"/01/{GTIN}/10/YN2509A/21/123?13=251301",
])
def test_malformed_or_unknown_is_the_same_404(path: str) -> None:
    response = CLIENT.get(path)
    assert response.status_code == 404
    assert response.text == NOT_FOUND
    as_json = CLIENT.get(path, headers={"Accept": "application/json"})
    assert as_json.status_code == 404 and as_json.json()["detail"] == "no such code"


_junk = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
_near = st.text(alphabet=CSET82 + "/%?&=#~ \\", max_size=60)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tail=st.one_of(_junk, _near), accept=st.sampled_from(["text/html", "application/json", "*/*"]))
def test_junk_never_gives_500(tail: str, accept: str) -> None:
    path = f"/01/{quote(tail, safe=CSET82 + '/%?&=')}"
    response = CLIENT.get(path, headers={"Accept": accept})
    assert response.status_code in (200, 404), (path, response.status_code)
    if response.status_code == 200:  # junk that happens to spell a known code must be one
        assert GTIN in path
