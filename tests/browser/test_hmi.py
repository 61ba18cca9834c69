"""The operator HMI in a real headless Chromium, against `gradeline run` (the simulated demo line).

Users are added with `gradeline user add` before the line starts, as on a real line PC. The
tests log in on the screen's PIN pad, watch the counts rise through the live feed (and check
the page does not poll), stop and start the line through its confirmation, switch to English
and back, and lock a user out with five wrong PINs. Screenshots at 1280x800 (the line's touch
screen) and 390x844 (a phone) go to ``var/screenshots/`` (or ``$HMI_SCREENSHOTS``); the run
prints the folder at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import gradeline_cli, launch_gradeline, stop_gradeline

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREEN = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SUPERVISOR, SUPERVISOR_PIN = "张三", "246810"
OPERATOR, OPERATOR_PIN = "li-si", "135790"
MIN_TOUCH_PX = 48


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("hmi")
    # The cold-room simulator as its own process, a real Modbus TCP peer of the line.
    coldroom = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "sim", "coldroom", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert coldroom.stdout is not None
    port = int(json.loads(coldroom.stdout.readline())["port"])
    sensors = "".join(
        f'[[sensors]]\nname = "冷库-{i}"\nprofile = "xy-md02"\ndevice_id = {i}\npoll_interval_s = 0.5\n'
        f'transport = {{ kind = "tcp", host = "127.0.0.1", port = {port} }}\n\n'
        for i in (1, 2)
    )
    config = tmp / "line.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp}/hmi.db"\n\n{sensors}', encoding="utf-8")
    gradeline_cli("user", "add", SUPERVISOR, "--role", "supervisor", "--pin-stdin", "--config", str(config), cwd=tmp, stdin=SUPERVISOR_PIN)
    gradeline_cli("user", "add", OPERATOR, "--role", "operator", "--pin-stdin", "--config", str(config), cwd=tmp, stdin=OPERATOR_PIN)
    line, url = launch_gradeline(config, tmp)
    try:
        yield url
    finally:
        stop_gradeline(line)
        coldroom.terminate()
        coldroom.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert os.path.exists(CHROMIUM), "Debian's chromium is needed: make test installs it"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def _page(browser: Browser, viewport: dict[str, int]) -> Page:
    page = browser.new_context(viewport=viewport, locale="zh-CN").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    return page


def _log_in(page: Page, base_url: str, user: str, pin: str) -> None:
    page.goto(base_url + "/")
    expect(page.locator("#login")).to_be_visible(timeout=15_000)
    page.fill("#login-user", user)
    for digit in pin:  # on the screen's PIN pad, as with gloves
        page.locator("#keypad button", has_text=re.compile(f"^{digit}$")).click()
    page.click("#login-submit")


def _shot(page: Page, screenshots: Path, name: str) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


def _small_touch_targets(page: Page) -> list[str]:
    return page.evaluate(
        """min => [...document.querySelectorAll('button, input, [role="button"]')]
            .filter(el => el.offsetParent !== null)
            .map(el => [el, el.getBoundingClientRect()])
            .filter(([, r]) => r.width < min || r.height < min)
            .map(([el, r]) => `${el.id || el.textContent.trim()}: ${Math.round(r.width)}x${Math.round(r.height)}`)""",
        MIN_TOUCH_PX,
    )


def _total(page: Page) -> int:
    return int(page.locator("#fruit_total").inner_text())


def test_log_in_watch_live_counts_stop_start_and_switch_language(base_url: str, browser: Browser, screenshots: Path) -> None:
    page = _page(browser, SCREEN)
    polled: list[str] = []
    page.on("request", lambda r: polled.append(r.url) if r.url.endswith("/api/v1/line") else None)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(base_url + "/")
    expect(page.locator("#login")).to_be_visible(timeout=15_000)
    _shot(page, screenshots, "login-1280x800")

    _log_in(page, base_url, SUPERVISOR, SUPERVISOR_PIN)
    expect(page.locator("#who")).to_contain_text(SUPERVISOR)
    expect(page.locator("#state")).to_have_text("运行", timeout=30_000)
    expect(page.locator("#lot")).to_have_text("DEMO-LOT-1")
    # The totals rise on screen, pushed by the live feed.
    expect(page.locator("#fruit_total")).not_to_have_text("0", timeout=30_000)
    first = _total(page)
    expect(page.locator("#fruit_total")).not_to_have_text(str(first), timeout=30_000)
    assert _total(page) > first
    expect(page.locator("#quality tr").first).to_be_visible()
    assert sockets and sockets[0].endswith("/api/v1/live")
    assert polled == []  # no polling: everything came over the WebSocket
    assert _small_touch_targets(page) == []
    _shot(page, screenshots, "line-1280x800")

    page.click("#nav-coldrooms")  # polled over Modbus from the simulator process: 2.0 °C, 90 %RH
    expect(page.locator("#coldrooms .room")).to_have_count(2, timeout=15_000)
    expect(page.locator("#coldrooms .room").first).to_contain_text("冷库-1")
    expect(page.locator("#coldrooms .room").first).to_contain_text("2.0 °C")
    expect(page.locator("#coldrooms .room").first).to_contain_text("90 %RH")
    assert _small_touch_targets(page) == []  # the move form too
    page.click("#nav-line")

    page.click("#stop")
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-title")).to_have_text("停止分选？")
    expect(page.locator("#confirm-interlocks")).to_contain_text("所有设备正常")
    _shot(page, screenshots, "confirm-stop-1280x800")
    page.click("#confirm-no")  # cancelling changes nothing
    expect(dialog).to_be_hidden()
    expect(page.locator("#state")).to_have_text("运行")
    page.click("#stop")
    page.click("#confirm-yes")
    expect(page.locator("#state")).to_have_text("停止", timeout=15_000)
    expect(page.locator("#start")).to_be_enabled()
    stopped_at = _total(page)
    page.click("#start")
    expect(page.locator("#confirm-title")).to_have_text("启动分选？")
    page.click("#confirm-yes")
    expect(page.locator("#state")).to_have_text("运行", timeout=15_000)
    expect(page.locator("#fruit_total")).not_to_have_text(str(stopped_at), timeout=30_000)

    page.click("#lang")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#state")).to_have_text("Running")
    expect(page.locator("#nav-line")).to_have_text("Line")
    expect(page.locator("#quality tr").first).to_contain_text("Extra")
    _shot(page, screenshots, "line-en-1280x800")
    page.click("#lang")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#state")).to_have_text("运行")
    expect(page.locator("#nav-line")).to_have_text("分选线")

    page.click("#nav-audit")  # the stop and the start, in the audit log under this user's name
    expect(page.locator("#audit-entries")).to_contain_text("line.stop", timeout=10_000)
    expect(page.locator("#audit-entries tr").first).to_contain_text("line.start")
    expect(page.locator("#audit-entries tr").first).to_contain_text(SUPERVISOR)
    _shot(page, screenshots, "audit-1280x800")
    assert page.errors == []  # type: ignore[attr-defined]


def test_phone_layout_fits_and_keeps_touch_targets(base_url: str, browser: Browser, screenshots: Path) -> None:
    page = _page(browser, PHONE)
    page.goto(base_url + "/")
    expect(page.locator("#login")).to_be_visible(timeout=15_000)
    assert _small_touch_targets(page) == []
    _shot(page, screenshots, "login-390x844")
    _log_in(page, base_url, SUPERVISOR, SUPERVISOR_PIN)
    expect(page.locator("#fruit_total")).not_to_have_text("0", timeout=30_000)
    for panel in ("line", "alarms", "audit"):
        page.click(f"#nav-{panel}")
        expect(page.locator(f"#panel-{panel}")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{panel} scrolls sideways"
        assert _small_touch_targets(page) == [], panel
    page.click("#nav-line")
    _shot(page, screenshots, "line-390x844")
    page.click("#stop")
    expect(page.locator("#confirm")).to_be_visible()
    _shot(page, screenshots, "confirm-stop-390x844")
    page.click("#confirm-no")
    assert page.errors == []  # type: ignore[attr-defined]


def test_five_wrong_pins_lock_the_user_out(base_url: str, browser: Browser, screenshots: Path) -> None:
    page = _page(browser, SCREEN)
    error = page.locator("#login-error")
    for attempt in range(1, 6):
        _log_in(page, base_url, OPERATOR, "000000")
        expect(error).to_be_visible()
        expect(error).to_have_attribute("data-status", "401" if attempt < 5 else "423")
    expect(error).to_have_text("该用户已被锁定（PIN 错误次数过多），请联系管理员解锁")
    _log_in(page, base_url, OPERATOR, OPERATOR_PIN)  # the right PIN no longer opens it
    expect(error).to_have_attribute("data-status", "423")
    expect(page.locator("#nav")).to_be_hidden()
    _shot(page, screenshots, "locked-1280x800")
