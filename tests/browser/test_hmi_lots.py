"""Lots, cartons and the pack-out page in a real headless Chromium, against `gradeline run`
(the demo line on the simulated world), in zh-CN and in English: start a lot on the lots panel,
see its counts rise, close a carton at outlet 1, close the lot, open its pack-out page; and, the
line having a ``[trace]`` (its label printer the simulated world's), open a closed carton in the
cartons panel, see its label preview load, reprint it, and open its lot's trace view.

The counts and the pack-out are checked against the API (its own reading of the store), and the
pack-out page must show exactly the lot's fruit count."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_hmi import (
    CHROMIUM_FLAGS,
    SCREEN,
    SUPERVISOR,
    SUPERVISOR_PIN,
    _log_in,
    _page,
    _shot,
    browser,
)
from tests.conftest import gradeline_cli, launch_gradeline, stop_gradeline

pytestmark = pytest.mark.slow
__all__ = ["CHROMIUM_FLAGS", "browser"]

TEXT = {
    "zh-CN": {"running": "运行", "stopped": "停止", "packout": "分级包装报告", "in_tolerance": "合格", "closed": "已关闭"},
    "en": {"running": "Running", "stopped": "Stopped", "packout": "Pack-out report", "in_tolerance": "In tolerance", "closed": "closed"},
}


# The demo's GS1 keys (api.config.demo_trace); no printer_host: the simulated world brings one.
TRACE = """
[trace]
company_prefix = "9521234"
packing_center_gln = "9521234000006"
digital_link_base = "http://127.0.0.1:8080"
[[trace.gtins]]
product = "apple"
quality_class = "extra"
size_class = "*"
gtin = "19521234000010"
[[trace.gtins]]
product = "apple"
quality_class = "class_i"
size_class = "*"
gtin = "19521234000027"
[[trace.gtins]]
product = "apple"
quality_class = "class_ii"
size_class = "*"
gtin = "19521234000034"
"""


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("hmi-lots")
    config = tmp / "line.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp}/hmi.db"\n' + TRACE, encoding="utf-8")
    gradeline_cli("user", "add", SUPERVISOR, "--role", "supervisor", "--pin-stdin", "--config", str(config), cwd=tmp,
                  stdin=SUPERVISOR_PIN)
    token = gradeline_cli("token", "create", "--role", "supervisor", "--name", "check", "--config", str(config), cwd=tmp).strip()
    proc, url = launch_gradeline(config, tmp)
    try:
        yield url, token
    finally:
        stop_gradeline(proc, 60.0)


def _api(url: str, token: str, path: str) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the test's own line)
        return json.loads(response.read())  # type: ignore[no-any-return]


def _round(page: Page, url: str, token: str, lang: str, code: str, screenshots: Path) -> None:
    text = TEXT[lang]
    page.click("#nav-lots")
    page.fill("#lot-start-code", code)
    page.fill("#lot-start-grower", "王五" if lang == "zh-CN" else "Wang Wu")
    page.fill("#lot-start-received_weight_kg", "50")
    page.click("#lot-start-submit")
    expect(page.locator("#lot-code")).to_have_text(code, timeout=15_000)
    if page.locator("#state").inner_text() != text["running"]:  # the previous round's close stopped the line
        page.click("#nav-line")
        page.click("#start")
        page.click("#confirm-yes")
        expect(page.locator("#state")).to_have_text(text["running"], timeout=15_000)
        page.click("#nav-lots")
    expect(page.locator("#lot-fruit")).not_to_have_text("0", timeout=60_000)
    expect(page.locator("#lot-classes tr").first).to_be_visible()
    _shot(page, screenshots, f"lots-{lang}-1280x800")

    page.click("#nav-outlets")
    expect(page.locator("#carton-close-1")).to_be_visible(timeout=15_000)
    expect(page.locator("#carton-fill-1")).not_to_have_text("0 / 0.00 kg", timeout=60_000)
    page.click("#carton-close-1")
    expect(page.locator("#cartons-closed tr").first).to_be_visible(timeout=30_000)
    expect(page.locator("#cartons-closed tr").first).to_contain_text(text["in_tolerance"])
    _shot(page, screenshots, f"outlets-{lang}-1280x800")

    page.click("#nav-lots")
    page.click("#lot-close")
    page.click("#confirm-yes")
    expect(page.locator("#lot-message")).to_contain_text(text["closed"], timeout=30_000)  # the close has answered
    expect(page.locator("#lot-none")).to_be_visible()
    expect(page.locator("#state")).to_have_text(text["stopped"], timeout=15_000)

    lot = next(item for item in _api(url, token, "/api/v1/lots?limit=5")["items"] if item["code"] == code)
    packout = _api(url, token, f"/api/v1/lots/{lot['id']}/packout")
    assert packout["fruit"] > 0 and sum(c["fruit"] for c in packout["cells"]) == packout["fruit"]
    cartons = _api(url, token, f"/api/v1/cartons?lot={lot['id']}")["items"]
    assert all(c["closed_at"] for c in cartons) and any(c["outlet"] == 1 and c["closed_by"].startswith("user:") for c in cartons)

    link = page.locator("#lot-list tr", has_text=code).locator(".packout-link")
    with page.context.expect_page() as opened:
        link.click()
    report = opened.value
    report.wait_for_load_state()
    expect(report.locator("h1")).to_have_text(text["packout"])
    expect(report.locator("svg")).to_be_visible()
    expect(report.locator("#packout tr").last).to_contain_text(str(packout["fruit"]))
    _shot(report, screenshots, f"packout-{lang}")
    report.close()


def test_start_a_lot_close_a_carton_close_the_lot_open_its_packout(
    line: tuple[str, str], browser: Browser, screenshots: Path
) -> None:
    url, token = line
    page = _page(browser, SCREEN)
    _log_in(page, url, SUPERVISOR, SUPERVISOR_PIN)
    expect(page.locator("#state")).to_have_text(TEXT["zh-CN"]["running"], timeout=30_000)
    _round(page, url, token, "zh-CN", "2026-1202-A", screenshots)
    page.click("#lang")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    _round(page, url, token, "en", "2026-1202-B", screenshots)
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_cartons_label_preview_reprint_and_its_lots_trace_view(
    line: tuple[str, str], browser: Browser, screenshots: Path
) -> None:
    url, token = line
    page = _page(browser, SCREEN)
    _log_in(page, url, SUPERVISOR, SUPERVISOR_PIN)
    page.click("#nav-lots")
    page.fill("#lot-start-code", "2026-1202-T")
    page.fill("#lot-start-grower", "赵六")
    page.fill("#lot-start-platform_trace_code", "5325-0001-T")  # as the platform issued it
    page.click("#lot-start-submit")
    expect(page.locator("#lot-code")).to_have_text("2026-1202-T", timeout=15_000)
    if page.locator("#state").inner_text() != TEXT["zh-CN"]["running"]:
        page.click("#nav-line")
        page.click("#start")
        page.click("#confirm-yes")
        expect(page.locator("#state")).to_have_text(TEXT["zh-CN"]["running"], timeout=15_000)
    page.click("#nav-outlets")
    expect(page.locator("#carton-fill-1")).not_to_have_text("0 / 0.00 kg", timeout=60_000)
    page.click("#carton-close-1")
    opened = page.locator("#cartons-closed tr").first.locator(".carton-open")
    expect(opened).to_be_visible(timeout=30_000)
    carton_id = opened.inner_text().lstrip("#")

    opened.click()  # the carton in the cartons panel: codes, label preview, reprint
    expect(page.locator("#panel-cartons")).to_be_visible()
    expect(page.locator("#carton-serial")).to_contain_text("line-1.", timeout=15_000)
    expect(page.locator("#carton-gtin")).to_have_text("19521234000010")
    expect(page.locator("#carton-link")).to_contain_text("/01/19521234000010/10/2026-1202-T/21/line-1.")
    # 100 mm at 8 dots/mm, once loaded; read by Playwright's own script (wait_for_function
    # polls through eval, which the HMI's Content-Security-Policy refuses)
    expect(page.locator("#carton-label")).to_have_js_property("naturalWidth", 800, timeout=30_000)
    page.click("#carton-reprint")
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm-yes")
    expect(page.locator("#carton-print-result")).to_contain_text("已打印", timeout=30_000)
    _shot(page, screenshots, "carton-zh-CN-1280x800")
    audit = _api(url, token, "/api/v1/audit?limit=20")["items"]
    assert any(a["action"] == "carton.label.print" and a["target"] == carton_id and a["outcome"] == "ok" for a in audit)

    lot = next(item for item in _api(url, token, "/api/v1/lots?limit=5")["items"] if item["code"] == "2026-1202-T")
    page.click("#nav-lots")
    page.click(f"#lot-trace-{lot['id']}")
    expect(page.locator("#lot-trace")).to_be_visible()
    expect(page.locator("#trace-grower")).to_contain_text("赵六")  # staff see the full name
    expect(page.locator("#trace-grower")).to_contain_text("赵*")  # and what labels show
    expect(page.locator("#trace-cartons")).to_contain_text("line-1.")
    expect(page.locator("#trace-lot")).to_contain_text("5325-0001-T")
    expect(page.locator("#trace-certs-none")).to_be_visible()  # no grower's 合格证 recorded for it
    expect(page.locator("#trace-pallets-none")).to_be_visible()  # its carton is on no pallet yet
    _shot(page, screenshots, "lot-trace-zh-CN-1280x800")
    assert page.errors == []  # type: ignore[attr-defined]
