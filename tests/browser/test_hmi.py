"""The operator HMI in a real headless Chromium, against `gradeline run` (the simulated demo line)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture
def coldroom_port() -> Iterator[int]:
    """The cold-room simulator as its own process, as a real Modbus TCP peer of the line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "sim", "coldroom", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    port = int(json.loads(proc.stdout.readline())["port"])
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def base_url(tmp_path: Path, start_gradeline, coldroom_port: int) -> Iterator[str]:  # type: ignore[no-untyped-def]
    sensors = "".join(
        f'[[sensors]]\nname = "冷库-{i}"\nprofile = "xy-md02"\ndevice_id = {i}\npoll_interval_s = 0.5\n'
        f'transport = {{ kind = "tcp", host = "127.0.0.1", port = {coldroom_port} }}\n\n'
        for i in (1, 2)
    )
    proc, url = start_gradeline(f'[database]\nurl = "sqlite:///{tmp_path}/hmi.db"\n\n{sensors}')
    yield url
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


@pytest.fixture
def page() -> Iterator[Page]:
    assert os.path.exists(CHROMIUM), "Debian's chromium is needed: make test installs it"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser.new_page(locale="zh-CN")
        finally:
            browser.close()


def _total(page: Page) -> int:
    return int(page.locator("#fruit_total").inner_text())


def test_hmi_shows_live_counts_and_stops_the_line(base_url: str, page: Page) -> None:
    page.goto(base_url + "/")
    expect(page.locator("#state")).to_have_text("运行 Running", timeout=30_000)
    expect(page.locator("#lot")).to_have_text("DEMO-LOT-1")
    # The total rises on screen without a reload.
    page.wait_for_function("Number(document.querySelector('#fruit_total').textContent) > 0", timeout=30_000)
    first = _total(page)
    page.wait_for_function(
        f"Number(document.querySelector('#fruit_total').textContent) > {first}", timeout=30_000
    )
    expect(page.locator("#quality tr").first).to_be_visible()
    # Cold rooms polled over Modbus from the simulator process: 2.0 °C setpoint, 90 %RH.
    expect(page.locator("#coldrooms tr")).to_have_count(2, timeout=10_000)
    expect(page.locator("#coldrooms tr").first).to_contain_text("冷库-1")
    expect(page.locator("#coldrooms tr").first).to_contain_text("2.0 °C")
    expect(page.locator("#coldrooms tr").first).to_contain_text("90 %RH")

    page.on("dialog", lambda dialog: dialog.accept())  # the stop confirmation
    page.click("#stop")
    expect(page.locator("#state")).to_have_text("停止 Stopped", timeout=10_000)
    page.screenshot(path=str(Path(os.environ.get("HMI_SCREENSHOT", "/tmp/gradeline-hmi.png"))))
