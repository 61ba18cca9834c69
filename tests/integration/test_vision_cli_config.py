"""``gradeline vision calibrate`` on synthetic references of known scale, and the in-place
TOML edit of the line config (comments and layout kept, result validated)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

from api.cli.vision import ConfigEditError, set_toml_values
from api.config import load_config

REPO = Path(__file__).resolve().parents[2]


def gradeline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def disc_image(path: Path, radius_px: float, size_wh: tuple[int, int] = (640, 480)) -> None:
    width, height = size_wh
    big = np.full((height * 4, width * 4, 3), 230, np.uint8)
    cv2.circle(big, (width * 2, height * 2), round(radius_px * 4), (60, 60, 60), -1, cv2.LINE_AA)
    cv2.imwrite(str(path), cv2.resize(big, size_wh, interpolation=cv2.INTER_AREA))


def checkerboard_image(path: Path, square_px: int, squares: tuple[int, int] = (10, 7), size_wh: tuple[int, int] = (640, 480)) -> None:
    width, height = size_wh
    image = np.full((height, width, 3), 255, np.uint8)
    x0 = (width - squares[0] * square_px) // 2
    y0 = (height - squares[1] * square_px) // 2
    for row in range(squares[1]):
        for col in range(squares[0]):
            if (row + col) % 2 == 0:
                x, y = x0 + col * square_px, y0 + row * square_px
                image[y : y + square_px, x : x + square_px] = 0
    cv2.imwrite(str(path), image)


CONFIG = """\
# Line 3 at the Mengzi packing center
[line]
name = "line-3"
lanes = 4  # four apple lanes

[camera.geometry]
width_px = 640
height_px = 480
mm_per_px = 0.8   # before calibration
fps = 12.0

[lot]
code = "LOT-7"
"""


def test_disc_calibration_updates_the_config_in_place(tmp_path: Path) -> None:
    image, config = tmp_path / "disc.png", tmp_path / "line.toml"
    disc_image(image, radius_px=160.0)
    config.write_text(CONFIG)

    result = gradeline("vision", "calibrate", str(image), "--disc-mm", "80", "--config", str(config), "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["method"] == "disc"
    assert report["mm_per_px"] == pytest.approx(80 / 320, rel=3e-3)
    assert report["changes"] == [
        {"key": "camera.geometry.mm_per_px", "old": "0.8", "new": report["changes"][0]["new"]}
    ]
    text = config.read_text()
    # Everything but the one value is as the user wrote it, comments and spacing included.
    assert text.replace(f"mm_per_px = {report['changes'][0]['new']}", "mm_per_px = 0.8") == CONFIG
    assert "# before calibration" in text
    assert load_config(config).camera.geometry.mm_per_px == pytest.approx(0.25, rel=3e-3)


def test_checkerboard_calibration_adds_the_lens_section(tmp_path: Path) -> None:
    image, config = tmp_path / "board.png", tmp_path / "line.toml"
    checkerboard_image(image, square_px=40)
    config.write_text(CONFIG)

    result = gradeline(
        "vision", "calibrate", str(image), "--checkerboard", "9x6", "--square-mm", "20", "--config", str(config)
    )

    assert result.returncode == 0, result.stderr
    assert "camera.calibration.camera_matrix: (not set) ->" in result.stdout
    loaded = load_config(config)
    assert loaded.camera.geometry.mm_per_px == pytest.approx(0.5, rel=2e-3)
    matrix = np.array(loaded.camera.calibration.camera_matrix)
    assert matrix.shape == (3, 3) and matrix[2, 2] == 1.0
    assert len(loaded.camera.calibration.dist_coeffs or []) == 5
    assert config.read_text().startswith(CONFIG.split("mm_per_px")[0])  # head of the file untouched

    # Calibrating again replaces the values where they stand instead of adding duplicates.
    again = gradeline(
        "vision", "calibrate", str(image), "--checkerboard", "9x6", "--square-mm", "25", "--config", str(config), "--json"
    )
    assert again.returncode == 0, again.stderr
    assert all(change["old"] is not None for change in json.loads(again.stdout)["changes"])
    assert load_config(config).camera.geometry.mm_per_px == pytest.approx(0.625, rel=2e-3)
    assert config.read_text().count("camera_matrix") == 1


def test_calibrate_refuses_to_touch_an_inline_table(tmp_path: Path) -> None:
    image, config = tmp_path / "disc.png", tmp_path / "line.toml"
    disc_image(image, radius_px=120.0)
    original = 'camera = { geometry = { mm_per_px = 0.8 } }\n'
    config.write_text(original)
    result = gradeline("vision", "calibrate", str(image), "--disc-mm", "50", "--config", str(config))
    assert result.returncode == 2
    assert "inline table" in result.stderr
    assert config.read_text() == original


def test_calibrate_without_reference_in_view_fails_cleanly(tmp_path: Path) -> None:
    image = tmp_path / "blank.png"
    cv2.imwrite(str(image), np.full((200, 300, 3), 128, np.uint8))
    result = gradeline("vision", "calibrate", str(image), "--checkerboard", "9x6", "--square-mm", "20")
    assert result.returncode == 1
    assert "blank.png" in result.stderr and "9x6" in result.stderr


def test_edit_replaces_a_multi_line_array_and_keeps_neighbours() -> None:
    text = (
        "[camera.calibration]\n"
        "camera_matrix = [\n"
        "  [1.0, 0.0, 2.0],  # row 1\n"
        "  [0.0, 1.0, 3.0],\n"
        "  [0.0, 0.0, 1.0],\n"
        "]\n"
        "dist_coeffs = [0.0, 0.0, 0.0, 0.0]  # none yet\n"
        "\n"
        "[api]\n"
        "port = 8080\n"
    )
    new, changes = set_toml_values(text, "camera.calibration", {"camera_matrix": [[5.0, 0.0, 1.0], [0.0, 5.0, 1.0], [0.0, 0.0, 1.0]]})
    data = tomllib.loads(new)
    assert data["camera"]["calibration"]["camera_matrix"][0] == [5.0, 0.0, 1.0]
    assert data["camera"]["calibration"]["dist_coeffs"] == [0.0, 0.0, 0.0, 0.0]
    assert data["api"]["port"] == 8080
    assert "# none yet" in new
    assert "# row 1" not in new  # the old value's inner comments go with it
    assert changes[0].old is not None and changes[0].old.startswith("[")
    assert changes[0].new == "[[5.0, 0.0, 1.0], [0.0, 5.0, 1.0], [0.0, 0.0, 1.0]]"


def test_edit_adds_a_missing_key_inside_its_section() -> None:
    text = "[camera.geometry]\nwidth_px = 640\n\n[api]\nport = 1\n"
    new, changes = set_toml_values(text, "camera.geometry", {"mm_per_px": 0.3})
    assert tomllib.loads(new) == {"camera": {"geometry": {"width_px": 640, "mm_per_px": 0.3}}, "api": {"port": 1}}
    assert new.index("mm_per_px") < new.index("[api]")
    assert changes[0].old is None


def test_edit_handles_dotted_keys_and_array_of_tables() -> None:
    text = '[[outlets]]\nnumber = 1\n\n[camera]\ngeometry.mm_per_px = 0.8  # dotted\n'
    new, _ = set_toml_values(text, "camera.geometry", {"mm_per_px": 0.5})
    data = tomllib.loads(new)
    assert data["camera"]["geometry"]["mm_per_px"] == 0.5
    assert data["outlets"] == [{"number": 1}]
    assert "# dotted" in new


def test_edit_refuses_inline_tables() -> None:
    with pytest.raises(ConfigEditError, match="inline table"):
        set_toml_values("[camera]\ngeometry = { mm_per_px = 0.8 }\n", "camera.geometry", {"mm_per_px": 0.5})


def test_measure_takes_scale_and_lens_from_the_config(tmp_path: Path) -> None:
    """Calibrate from a disc, then measure a fruit with that config: the sizes follow the
    calibrated scale, and the config's lens model is applied first."""
    disc, config, fruit = tmp_path / "disc.png", tmp_path / "line.toml", tmp_path / "fruit.png"
    disc_image(disc, radius_px=150.0)  # 60 mm disc -> 0.2 mm/px
    config.write_text(CONFIG + "\n[camera.calibration]\ncamera_matrix = [[640.0, 0.0, 319.5], [0.0, 640.0, 239.5], [0.0, 0.0, 1.0]]\ndist_coeffs = [0.0, 0.0, 0.0, 0.0, 0.0]\n")
    assert gradeline("vision", "calibrate", str(disc), "--disc-mm", "60", "--config", str(config)).returncode == 0

    image = np.full((480, 640, 3), 250, np.uint8)
    cv2.ellipse(image, (320, 240), (200, 150), 0, 0, 360, (40, 50, 200), -1, cv2.LINE_AA)
    cv2.imwrite(str(fruit), image)
    result = gradeline("vision", "measure", str(fruit), "--config", str(config), "--json")

    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[0])
    assert record["scale_source"] == str(config)
    assert record["mm_per_px"] == pytest.approx(0.2, rel=3e-3)
    assert record["diameter_major_mm"] == pytest.approx(400 * 0.2, rel=0.02)
    assert record["diameter_minor_mm"] == pytest.approx(300 * 0.2, rel=0.02)
