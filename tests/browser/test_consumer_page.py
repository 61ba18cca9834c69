"""The consumer page in a phone-sized Chromium (390x844, zh-CN): opened from a carton's QR URI,
it shows the carton and the cold-room temperature chart."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from grading.trace.codes import carton_code
from tests.browser.conftest import served_app
from tests.unit.trace.consumer_fixtures import GTIN

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def resolver_url() -> Iterator[str]:
    yield from served_app("tests.unit.trace.consumer_fixtures:resolver_app")


def test_consumer_page_from_a_carton_qr_on_a_phone(resolver_url: str, screenshots: Path) -> None:
    from datetime import date

    code = carton_code(gtin=GTIN, lot="YN2509A", serial=123, pack_date=date(2025, 9, 15), net_weight_g=12500)
    uri = code.digital_link(resolver_url)  # what the label's QR holds, on this resolver
    assert os.path.exists(CHROMIUM)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                          device_scale_factor=2, is_mobile=True, has_touch=True)
            page = context.new_page()
            response = page.goto(uri)
            assert response is not None and response.status == 200
            assert page.get_attribute("html", "lang") == "zh-CN"
            expect(page.locator("header h1")).to_have_text("沃柑")
            expect(page.locator("#product")).to_contain_text("特级")
            expect(page.locator("#origin")).to_contain_text("张**")
            chart = page.locator("#temperature-chart")
            chart.scroll_into_view_if_needed()
            expect(chart).to_be_visible()
            assert page.locator("#temperature-chart polyline.room").count() == 2
            box = chart.bounding_box()
            assert box is not None and box["width"] <= 390 and box["width"] > 300  # fits the phone, no zoom
            assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
            page.screenshot(path=str(screenshots / "consumer-page-390x844.png"), full_page=True)
        finally:
            browser.close()
