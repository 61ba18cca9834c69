"""The pallet panel (组托) in a headless Chromium, zh-CN: an operator logs in on the PIN pad,
creates a pallet, clicks one carton onto it and scans the other (the scanner's keystrokes and
Enter), takes one off, ships it behind the confirmation dialog, and sees the SSCC label preview.
The app is fake line devices with ``[trace]`` (tests/browser/pallet_app.py), not ``gradeline run``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import served_app
from tests.browser.pallet_app import OPERATOR, OPERATOR_PIN
from tests.browser.test_hmi import CHROMIUM_FLAGS, SCREEN, _log_in, _page, _shot, browser

pytestmark = pytest.mark.slow
__all__ = ["CHROMIUM_FLAGS", "browser"]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("hmi-pallets")
    yield from served_app("tests.browser.pallet_app:pallet_app", {"PALLET_HMI_DIR": str(folder)})


def test_build_and_ship_a_pallet_on_the_panel(base_url: str, browser: Browser, screenshots: Path) -> None:
    page = _page(browser, SCREEN)
    _log_in(page, base_url, OPERATOR, OPERATOR_PIN)
    page.click("#nav-pallets")
    loose = page.locator("#pallet-loose tr")
    expect(loose).to_have_count(2)
    serials = [loose.nth(i).locator("td").nth(1).inner_text() for i in range(2)]
    page.click("#pallet-new")
    expect(page.locator("#pallet-sscc")).to_have_text(re.compile(r"^\(00\)369012341\d{9}$"))
    loose.nth(0).locator("button.pallet-add").click()
    expect(page.locator("#pallet-cartons tr")).to_have_count(1)
    # the other carton by its bracketed code, typed key by key as a scanner does, then Enter
    page.locator("#pallet-scan").click()
    page.keyboard.type(f"(01)16901234567899(21){serials[1]}")
    page.keyboard.press("Enter")
    expect(page.locator("#pallet-cartons tr")).to_have_count(2)
    expect(page.locator("#pallet-count")).to_have_text("2")
    expect(page.locator("#pallet-loose tr")).to_have_count(0)
    page.locator("#pallet-cartons button.pallet-remove").first.click()
    expect(page.locator("#pallet-count")).to_have_text("1")
    page.click("#pallet-ship")
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm-yes")
    expect(page.locator("#pallet-state")).to_contain_text("已发货")
    expect(page.locator("#pallet-scan")).to_be_disabled()
    # loaded (Playwright's own script reads it; wait_for_function's eval is refused by the CSP)
    expect(page.locator("#pallet-label")).to_have_js_property("naturalWidth", 800)
    _shot(page, screenshots, "hmi-pallets-1280x800")
    assert page.errors == []  # type: ignore[attr-defined]
