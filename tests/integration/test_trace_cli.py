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


LABEL_JSON = REPO / "tests" / "unit" / "trace" / "label.json"


def test_label_command_writes_previews_and_zpl(tmp_path: Path) -> None:
    png, zpl, pdf = tmp_path / "l.png", tmp_path / "l.zpl", tmp_path / "l.pdf"
    result = subprocess.run([sys.executable, "-m", "api.cli", "trace", "label", str(LABEL_JSON), "--png", str(png),
                             "--zpl", str(zpl), "--pdf", str(pdf)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    uri = json.loads(result.stdout)["digital_link"]
    decoded = subprocess.run(["zbarimg", "-q", "--raw", str(png)], capture_output=True, text=True, timeout=60)
    assert decoded.stdout.splitlines() == [uri]
    assert zpl.read_text().startswith("^XA^CI28") and pdf.read_bytes().startswith(b"%PDF")


def test_label_command_names_the_file_and_field(tmp_path: Path) -> None:
    data = json.loads(LABEL_JSON.read_text(encoding="utf-8"))
    data["gtin"] = "16901234567898"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "api.cli", "trace", "label", str(bad)],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 2 and str(bad) in result.stderr and "AI (01)" in result.stderr
