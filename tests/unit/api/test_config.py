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
    assert config.trace is not None and config.trace.company_prefix == "9521234"  # demo codes (GS1's 952: examples)


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
    with pytest.raises(ConfigError) as info:
        parse_config({"lots": {"carry_over_partial_cartons": True}})  # no [trace]: no one to issue the 合格证
    assert [i.field for i in info.value.issues] == ["lots.carry_over_partial_cartons"]


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


def test_coldchain_rooms_name_their_sensors_and_keep_their_band_ordered() -> None:
    sensor = {"name": "冷库-1", "profile": "xy-md02", "transport": {"kind": "tcp", "host": "127.0.0.1"}}
    with pytest.raises(ConfigError) as unknown:
        parse_config({"sensors": [sensor], "coldchain": {"rooms": [{"name": "冷库-1", "door_sensor": "门-1"}]}})
    assert [(i.field, i.message) for i in unknown.value.issues] == [
        ("coldchain.rooms[0]", "sensor '门-1' is not one of the [[sensors]]"),
    ]
    with pytest.raises(ConfigError) as band:
        parse_config({"sensors": [sensor], "coldchain": {"rooms": [{"name": "冷库-1", "temperature_high_c": -5.0}]}})
    assert band.value.issues[0].field == "coldchain.rooms[0]" and "low < setpoint < high" in band.value.issues[0].message
    config = parse_config({"sensors": [sensor], "recipe": "cherry"})
    rooms = config.coldchain.rooms_for([s.name for s in config.sensors])
    assert [r.name for r in rooms] == ["冷库-1"] and rooms[0].band("cherry").temperature_high_c == 1.5


def test_line_id_and_number_default_from_the_name_and_are_checked() -> None:
    assert (load_config(None).line.id, load_config(None).line.number) == ("line-1", 1)
    line = parse_config({"line": {"name": "3号线 East"}}).line
    assert (line.id, line.number) == ("3-east", 1)
    line = parse_config({"line": {"name": "Packing Line 4"}}).line
    assert (line.id, line.number) == ("packing-line", 1)  # cut to 12 characters
    assert parse_config({"line": {"id": "b-7"}}).line.number == 7
    with pytest.raises(ConfigError) as info:
        parse_config({"line": {"id": "line 1"}})
    assert "line.id" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_config({"line": {"number": 10}})
    assert "line.number" in str(info.value)


def test_outbox_is_a_path_and_the_line_writes_to_it() -> None:
    database = parse_config({"database": {"url": "postgresql+psycopg://u@h/db", "outbox": "var/outbox.db"}}).database
    assert database.line_url == "sqlite:///var/outbox.db"
    assert parse_config({}).database.line_url == parse_config({}).database.url
    with pytest.raises(ConfigError) as info:
        parse_config({"database": {"outbox": "sqlite:///var/outbox.db"}})
    assert "database" in str(info.value) and "outbox" in str(info.value)
