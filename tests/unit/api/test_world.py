"""api.world without a process: the config round trip, the world's plan, the pointed config."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from api.config import LineConfig, load_config, parse_config
from api.world import (
    PrinterEndpoint,
    WorldBanner,
    config_to_toml,
    line_config_for_world,
    world_plan,
)
from simulators.world_cycle import WorldConfigError


def rich_config() -> LineConfig:
    return parse_config(
        {
            "line": {"name": '线 A "east"', "lanes": 2, "cups_per_second": 10.0},
            "camera": {
                "geometry": {"width_px": 640, "height_px": 320, "fps": 12.5},
                "device": {"kind": "simulated", "noise_sigma": 1.5},
                "calibration": {
                    "camera_matrix": [[800.0, 0.0, 320.0], [0.0, 800.0, 160.0], [0.0, 0.0, 1.0]],
                    "dist_coeffs": [0.1, -0.05, 0.0, 0.0],
                },
            },
            "scale": {
                "kind": "toledo",
                "ports": ["/dev/ttyUSB0", "/dev/ttyUSB1"],
                "timeout_s": 0.5,
            },
            "outlets": [
                {"number": 1, "name": "特级 Extra", "offset_cups": 6, "quality_classes": ["extra"]},
                {"number": 2, "offset_cups": 9, "role": "cull"},
            ],
            "sensors": [
                {
                    "name": "cold-a",
                    "transport": {"kind": "tcp", "host": "10.0.0.5", "port": 502},
                    "device_id": 3,
                    "profile": "srth100",
                    "poll_interval_s": 2.0,
                },
                {
                    "name": "cold-b",
                    "transport": {"kind": "tcp", "host": "10.0.0.5", "port": 502},
                    "device_id": 4,
                    "profile": "srth100",
                },
            ],
            "simulation": {"seed": 9, "world": {"cycle_cups": 40, "camera_latency_s": 0.01}},
        }
    )


def test_config_round_trips_through_toml(tmp_path: Path) -> None:
    for config in (LineConfig(), rich_config()):
        text = config_to_toml(config)
        tomllib.loads(text)  # valid TOML
        path = tmp_path / "line.toml"
        path.write_text(text, encoding="utf-8")
        assert load_config(path) == config


def test_a_recipe_file_is_written_as_an_absolute_path(tmp_path: Path) -> None:
    recipe = tmp_path / "my-recipe.toml"
    config = parse_config({"recipe": str(recipe)})
    assert tomllib.loads(config_to_toml(config))["recipe"] == str(recipe.resolve())


def test_plan_takes_geometry_protocol_and_rooms_from_the_config() -> None:
    plan = world_plan(rich_config())
    assert plan.product == "apple" and plan.lanes == 2 and plan.cups_per_second == 10.0
    assert plan.outlet_offsets_cups == {1: 6, 2: 9}
    assert plan.scale_protocol == "toledo" and plan.scale_noise_g == 0.4
    assert plan.camera.noise_sigma == 1.5
    assert plan.coldrooms is not None and plan.coldrooms.layout == "srth100"
    assert [(r.name, r.unit_id) for r in plan.coldrooms.rooms] == [("cold-a", 3), ("cold-b", 4)]
    spec = plan.render_spec()  # 10 cups/s at 12.5 fps: a trigger every 4/5 cup
    assert (spec.pitch_numerator, spec.pitch_denominator, spec.cycle_cups, spec.frames) == (
        4,
        5,
        40,
        50,
    )
    demo = world_plan(LineConfig())
    assert demo.scale_protocol == "mt-sics" and demo.scale_noise_g == 0.4
    assert demo.coldrooms is not None and [r.unit_id for r in demo.coldrooms.rooms] == [1, 2, 3, 4]
    assert world_plan(parse_config({"simulation": {"world": {"coldrooms": 0}}})).coldrooms is None


def test_plan_refuses_sensors_it_cannot_simulate() -> None:
    config = parse_config(
        {
            "sensors": [
                {"name": "x", "transport": {"kind": "tcp", "host": "h"}, "profile": "xy-md02"},
                {"name": "y", "transport": {"kind": "tcp", "host": "h"}, "profile": "srth100"},
            ]
        }
    )
    with pytest.raises(WorldConfigError) as exc:
        world_plan(config)
    assert exc.value.field == "sensors"


def banner(scale_kind: str = "mt-sics", unit: str = "g") -> WorldBanner:
    return WorldBanner.model_validate(
        {
            "simulator": "line",
            "banner_version": 1,
            "pid": 1234,
            "started_t_s": 100.0,
            "truth_dir": "/tmp/truth",
            "lanes": 2,
            "cups_per_second": 10.0,
            "scale_offset_cups": -10,
            "outlets": {"1": 6, "2": 9},
            "camera_trigger_pitch_cups": 0.8,
            "camera_trigger_pitch": "4/5",
            "cycle_cups": 40,
            "frames_per_cycle": 50,
            "plc": {"host": "127.0.0.1", "port": 5020, "device_id": 1},
            "scale": {
                "kind": scale_kind,
                "ports": ["socket://127.0.0.1:7001", "socket://127.0.0.1:7002"],
                "unit": unit,
                "resolution_g": 0.1,
                "stream_hz": 100.0,
                "noise_g": 0.4,
            },
            "camera": {
                "url": "http://127.0.0.1:8081/stream.mjpg",
                "latency_s": 0.01,
                "fps": 12.5,
                "width_px": 640,
                "height_px": 320,
            },
            "coldrooms": {
                "host": "127.0.0.1",
                "port": 5021,
                "profile": "srth100",
                "unit_ids": [3, 4],
                "names": ["cold-a", "cold-b"],
            },
            "cache": {"path": "/tmp/c", "rendered": False, "seconds": 0.1},
            "something_newer": True,
        }
    )


def test_line_config_for_world_points_every_device_at_it() -> None:
    config = rich_config()
    line = line_config_for_world(config, banner("toledo", "kg"))
    plc = line.plc.device
    assert plc.kind == "modbus" and (plc.host, plc.port, plc.device_id) == ("127.0.0.1", 5020, 1)
    assert line.scale.kind == "toledo"
    assert line.scale.ports == ["socket://127.0.0.1:7001", "socket://127.0.0.1:7002"]
    assert line.scale.timeout_s == 0.5  # the config's own indicator settings are kept
    camera = line.camera.device
    assert camera.kind == "opencv"
    assert camera.source == "http://127.0.0.1:8081/stream.mjpg" and camera.latency_s == 0.01
    assert [(s.name, s.device_id, s.profile, s.poll_interval_s) for s in line.sensors] == [
        ("cold-a", 3, "srth100", 2.0),
        ("cold-b", 4, "srth100", 10.0),
    ]
    assert all(s.transport.kind == "tcp" and s.transport.port == 5021 for s in line.sensors)
    # everything else is the line's own
    assert line.outlets == config.outlets and line.camera.geometry == config.camera.geometry
    assert line.camera.calibration == config.camera.calibration and line.line == config.line


def test_line_config_for_a_simulated_demo_config() -> None:
    config = parse_config({"line": {"lanes": 2}})
    line = line_config_for_world(config, banner())
    assert line.scale.kind == "mt-sics" and len(line.scale.ports) == 2
    assert [s.name for s in line.sensors] == ["cold-a", "cold-b"]
    assert all(s.profile == "srth100" for s in line.sensors)
    with pytest.raises(ValueError, match="lanes"):
        line_config_for_world(LineConfig(), banner())  # 4 lanes against a 2-lane world


def test_the_demos_trace_prints_on_the_worlds_label_printer() -> None:
    demo = load_config(None).model_copy(update={"line": parse_config({"line": {"lanes": 2}}).line})
    assert world_plan(demo).label_printer and not world_plan(parse_config({})).label_printer  # no [trace]: none
    with_printer = banner().model_copy(update={"printer": PrinterEndpoint(host="127.0.0.1", port=9911, out_dir="/t")})
    trace = line_config_for_world(demo, with_printer).trace
    assert trace is not None and (trace.printer_host, trace.printer_port) == ("127.0.0.1", 9911)
    assert line_config_for_world(demo, banner()).trace == demo.trace  # an older world: no printer


def test_a_rooms_core_probe_sensor_is_served_as_its_probe() -> None:
    sensor = {"profile": "xy-md02", "transport": {"kind": "tcp", "host": "127.0.0.1"}}
    config = parse_config({
        "sensors": [{**sensor, "name": "预冷-1", "device_id": 1}, {**sensor, "name": "冷库-1", "device_id": 2},
                    {**sensor, "name": "探针-1", "device_id": 3}],
        "coldchain": {"rooms": [{"name": "预冷-1", "purpose": "precooling", "core_probes": ["探针-1"]}, {"name": "冷库-1"}]},
    })
    rooms = world_plan(config).coldrooms
    assert rooms is not None
    assert [(r.name, r.unit_id, [(p.name, p.unit_id) for p in r.core_probes]) for r in rooms.rooms] == [
        ("预冷-1", 1, [("探针-1", 3)]), ("冷库-1", 2, []),
    ]
    assert config_to_toml(config)  # still writable for the world's process


def test_a_rooms_door_contact_is_served_as_its_digital_input() -> None:
    sensor = {"transport": {"kind": "tcp", "host": "127.0.0.1"}}
    config = parse_config({
        "sensors": [{**sensor, "name": "冷库-1", "profile": "xy-md02", "device_id": 1},
                    {**sensor, "name": "冷库-1-门", "profile": "door-contact", "device_id": 9}],
        "coldchain": {"rooms": [{"name": "冷库-1", "door_sensor": "冷库-1-门"}]},
    })
    rooms = world_plan(config).coldrooms
    assert rooms is not None
    assert [(r.name, r.door_unit_id, r.door_name) for r in rooms.rooms] == [("冷库-1", 9, "冷库-1-门")]
