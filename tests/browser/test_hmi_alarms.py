"""The alarm list and cold rooms in a real headless Chromium, against `gradeline run --world`
polling the world's cold rooms over Modbus TCP. Both rooms are configured with a high limit
below the simulator's 2 degC, so their high-temperature alarms raise after a 1 s on-delay; an
operator acknowledges one in Chinese and the other in English and sees each state change. The
first room is a pre-cooling room with a fruit-core probe: moving the lot into it on the screen
starts a batch, and its cooling progress shows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.test_hmi import _log_in, _page, _shot, browser  # noqa: F401  (the module's browser fixture)
from tests.conftest import gradeline_cli, launch_gradeline, stop_gradeline

pytestmark = pytest.mark.slow

OPERATOR, OPERATOR_PIN = "wang-wu", "864213"
ROOMS = ("冷库-1", "冷库-2")
PROBE = "探针-1"
DOOR = "冷库-1-门"


@pytest.fixture(scope="module")
def alarm_line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("hmi-alarms")
    # --world points these sensors at the world's cold rooms (same names and unit ids)
    sensors = "".join(
        f'[[sensors]]\nname = "{name}"\nprofile = "xy-md02"\ndevice_id = {i}\npoll_interval_s = 0.5\n'
        'transport = { kind = "tcp", host = "127.0.0.1" }\n\n'
        for i, name in enumerate((*ROOMS, PROBE), start=1)
    ) + (  # the first room's door contact, a digital-input module on the same bus
        f'[[sensors]]\nname = "{DOOR}"\nprofile = "door-contact"\ndevice_id = 4\npoll_interval_s = 0.5\n'
        'transport = { kind = "tcp", host = "127.0.0.1" }\n\n'
    )
    rooms = "".join(
        f'[[coldchain.rooms]]\nname = "{name}"\nsetpoint_c = 0.5\ntemperature_low_c = -1.0\ntemperature_high_c = 1.5\n'
        'alarms = { high_on_delay_s = 1.0, off_delay_s = 5.0 }\n'
        + (f'purpose = "precooling"\ncore_probes = ["{PROBE}"]\ndoor_sensor = "{DOOR}"\n' if name == ROOMS[0] else "") + "\n"
        for name in ROOMS
    )
    config = tmp / "line.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp}/hmi.db"\n\n{sensors}{rooms}', encoding="utf-8")
    gradeline_cli("user", "add", OPERATOR, "--role", "operator", "--pin-stdin", "--config", str(config), cwd=tmp, stdin=OPERATOR_PIN)
    line, url = launch_gradeline(config, tmp)
    try:
        yield url
    finally:
        stop_gradeline(line)


def test_acknowledge_an_alarm_in_chinese_and_in_english(alarm_line: str, browser: Browser, screenshots: Path) -> None:  # noqa: F811
    page = _page(browser, {"width": 1280, "height": 800})
    _log_in(page, alarm_line, OPERATOR, OPERATOR_PIN)
    expect(page.locator("#nav-alarms")).to_be_visible(timeout=15_000)

    # the cold rooms: each room's value against its band, out of band in the alarm colour
    page.click("#nav-coldrooms")
    room = page.locator('.room[data-room="冷库-2"]')
    expect(room).to_contain_text("°C", timeout=15_000)
    expect(room).to_contain_text("范围 -1 ~ 1.5 °C")
    expect(room.locator(".big .alarm")).to_be_visible()

    # the lot goes into the pre-cooling room: it shows there, and its batch's cooling progress
    page.fill("form.move input[name=lot]", "1")
    page.select_option("form.move select", "冷库-1")
    page.click("form.move button[type=submit]")
    expect(page.locator("form.move + p")).to_have_text("批次 1 已移至 冷库-1")
    precooling = page.locator('.room[data-room="冷库-1"]')
    expect(precooling).to_contain_text(re.compile("库门(关闭|开启)"))  # read from the contact (the world opens it at 30 s)
    expect(precooling).to_contain_text("库内批次：DEMO-LOT-1", timeout=10_000)
    expect(precooling.locator(".cooling")).to_contain_text("探针-1：果心", timeout=15_000)
    expect(precooling.locator(".cooling progress")).to_have_count(1)
    _shot(page, screenshots, "coldrooms-zh")

    page.click("#nav-alarms")
    first = page.locator('tr[data-alarm="冷库-2.temperature_high"]')
    expect(first).to_have_attribute("data-state", "unacknowledged", timeout=20_000)
    expect(first.locator(".state")).to_have_text("◆ 未确认")
    expect(first.locator(".prio")).to_have_text("高")
    _shot(page, screenshots, "alarms-zh")
    first.locator("button.ack").click()
    expect(first).to_have_attribute("data-state", "acknowledged")
    expect(first.locator(".state")).to_have_text("已确认")
    expect(first.locator("button.ack")).to_have_count(0)

    page.click("#lang")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    second = page.locator('tr[data-alarm="冷库-1.temperature_high"]')
    expect(second).to_have_attribute("data-state", "unacknowledged", timeout=20_000)
    expect(second.locator(".state")).to_have_text("◆ Unacknowledged")
    expect(second.locator("button.ack")).to_have_text("Acknowledge")
    second.locator("button.ack").click()
    expect(second).to_have_attribute("data-state", "acknowledged")
    expect(second.locator(".state")).to_have_text("Acknowledged")
    expect(first.locator(".state")).to_have_text("Acknowledged")
    _shot(page, screenshots, "alarms-en")
    page.click("#lang")  # leave the stored language as the next test expects it
    assert page.errors == []  # type: ignore[attr-defined]
