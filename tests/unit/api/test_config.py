"""Line config: defaults, validation, and the check-config command's error format."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.cli import main
from api.config import ConfigError, load_config, parse_config


def test_no_file_gives_the_simulated_demo_line() -> None:
    config = load_config(None)
    assert config.camera.device.kind == "simulated"
    assert config.scale.kind == "simulated"
    assert config.plc.device.kind == "simulated"
    assert config.database.url.startswith("sqlite:///var/")


def test_misspelt_key_and_negative_lanes_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "line.toml"
    bad.write_text("[line]\nlanes = -1\ncup_pich_mm = 100\n", encoding="utf-8")
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert f"{bad}: line.lanes: Input should be greater than or equal to 1" in err
    assert f"{bad}: line.cup_pich_mm: Extra inputs are not permitted" in err
    assert len(err) == 2


def test_nested_union_and_list_paths(tmp_path: Path) -> None:
    bad = tmp_path / "line.toml"
    bad.write_text(
        '[camera.device]\nkind = "simulated"\nnoise = 3\n\n'
        '[[outlets]]\nnumber = 1\noffset_cups = 0\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    fields = {i.field for i in info.value.issues}
    assert fields == {"camera.device.noise", "outlets[0].offset_cups"}


def test_toml_syntax_error_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[line\n", encoding="utf-8")
    assert main(["check-config", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"{bad}: (toml): ")


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml: (file): No such file or directory" in capsys.readouterr().err


def test_valid_file_exits_0(tmp_path: Path) -> None:
    good = tmp_path / "line.toml"
    good.write_text('[line]\nlanes = 2\n\n[lot]\ncode = "L-7"\n', encoding="utf-8")
    assert main(["check-config", str(good)]) == 0


def test_cross_field_rules() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"outlets": [{"number": 1, "offset_cups": 5}, {"number": 1, "offset_cups": 6}]})
    assert [(i.field, i.message) for i in info.value.issues] == [("outlets", "outlet numbers must be unique")]


def test_every_field_has_a_description() -> None:
    def walk(model: type, path: str) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            if not field.description:
                missing.append(f"{path}{name}")
        return missing

    from api import config as app_cfg
    from grading import config as domain_cfg

    missing = [
        m
        for cfg in (app_cfg, domain_cfg)
        for model in [getattr(cfg, n) for n in dir(cfg) if isinstance(getattr(cfg, n), type)]
        if hasattr(model, "model_fields") and model.__module__ == cfg.__name__
        for m in walk(model, model.__name__ + ".")
    ]
    assert missing == []


def test_the_api_is_safe_by_default() -> None:
    """Loopback only, proxies believed only on this PC, /metrics without a token only from loopback."""
    api = load_config(None).api
    assert api.host == "127.0.0.1"
    assert [str(n) for n in api.trusted_proxies] == ["127.0.0.1/32", "::1/128"]
    assert [str(n) for n in api.metrics_public_networks] == ["127.0.0.0/8", "::1/128"]
