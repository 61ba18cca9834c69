"""The HMI's strings: none in the markup, every key used exists in both languages, and no file from elsewhere."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

STATIC = Path(__file__).resolve().parents[3] / "api" / "static"
CATALOGUE = json.loads((STATIC / "hmi" / "messages.json").read_text(encoding="utf-8"))
SCRIPTS = sorted((STATIC / "hmi").rglob("*.js"))


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.keys: set[str] = set()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("data-i18n", "data-i18n-aria-label") and value:
                self.keys.add(value)
            if name in ("src", "href") and value:
                self.urls.append(value)

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


def test_both_languages_have_the_same_keys() -> None:
    assert set(CATALOGUE) == {"zh-CN", "en"}
    assert set(CATALOGUE["zh-CN"]) == set(CATALOGUE["en"])
    assert all(CATALOGUE["en"].values()) and all(CATALOGUE["zh-CN"].values())


def test_the_markup_holds_no_strings_only_catalogue_keys() -> None:
    page = _Text()
    page.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    assert page.text == []
    assert page.keys <= set(CATALOGUE["zh-CN"])
    assert all(url.startswith(("/assets/", "data:")) for url in page.urls), page.urls


def test_every_key_the_scripts_use_is_in_the_catalogue() -> None:
    used: set[str] = set()
    for script in SCRIPTS:
        source = script.read_text(encoding="utf-8")
        used |= set(re.findall(r"""\b(?:t|has)\("([\w.]+)"\s*[,)]""", source))
        used |= set(re.findall(r"""\b(?:i18n|nav):\s*"([\w.]+)\"""", source))
        assert "http://" not in source and "https://" not in source, f"{script.name} fetches from elsewhere"
    assert used, "found no keys: the pattern is out of date"
    assert used - set(CATALOGUE["zh-CN"]) == set()


def test_labels_built_from_values_are_in_the_catalogue() -> None:
    zh = CATALOGUE["zh-CN"]
    for prefix, values in {
        "state": ("running", "stopped", "starting"),
        "role": ("integrator", "operator", "supervisor", "admin"),
        "grade": ("extra", "class_i", "class_ii", "cull", "recheck", "none"),
        "confirm.start": ("title", "body"), "confirm.stop": ("title", "body"), "confirm.yes": ("start", "stop"),
        "event": ("line_started", "line_stopped", "device_fault", "device_returned"),
        "device": ("ok", "fault"),
    }.items():
        for value in values:
            assert f"{prefix}.{value}" in zh
