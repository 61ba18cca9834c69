"""``gradeline trace parse`` as a user runs it: JSON out, exit 2 with the reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", "trace", "parse", *args], input=stdin,
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def test_parse_prints_ais_as_json() -> None:
    result = _run("https://trace.example.cn/01/16901234567899/10/YN%2F1/21/7?3103=012500&linkType=all")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert [(e["ai"], e["value"]) for e in out["elements"]] == [
        ("01", "16901234567899"), ("10", "YN/1"), ("21", "7"), ("3103", "012500")]
    assert out["form"] == "digital_link" and out["digital_link"]["other_query"] == {"linkType": "all"}


def test_parse_reads_gs_from_stdin_and_the_escape() -> None:
    raw = "]d20116901234567899" + "10ABC\x1d21X"
    for result in (_run("-", stdin=raw + "\n"), _run(raw.replace("\x1d", "\\x1d"))):
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["symbology"] == "]d2"


def test_invalid_exits_2_with_the_reason() -> None:
    result = _run("(01)16901234567898")
    assert result.returncode == 2
    assert "check digit" in result.stderr and json.loads(result.stdout)["valid"] is False
