"""The scale registry and factory: one driver per lane, chosen by ``kind``, built without I/O."""

from __future__ import annotations

import pytest

from drivers.scales.driver import ContinuousScale, MtSicsScale
from drivers.scales.factory import create_scales, register_scale_kind, scale_kinds, url_opener
from drivers.scales.settings import SerialScaleSettings


def settings(**fields: object) -> SerialScaleSettings:
    return SerialScaleSettings.model_validate(
        {"kind": "toledo", "ports": ["socket://127.0.0.1:1"], **fields}
    )


def test_registry_has_the_three_protocols_and_refuses_duplicates() -> None:
    assert scale_kinds() == ["mt-sics", "toledo", "xk3190"]
    with pytest.raises(ValueError):
        register_scale_kind("toledo", lambda *args: None)  # type: ignore[arg-type,return-value]


def test_one_driver_per_lane_named_by_lane() -> None:
    ports = ["/dev/ttyUSB0", "socket://10.0.0.7:4001", "rfc2217://10.0.0.8:4002"]
    scales = create_scales(settings(kind="mt-sics", ports=ports), 3)
    assert [s.name for s in scales] == ["lane-1", "lane-2", "lane-3"]
    assert all(isinstance(s, MtSicsScale) for s in scales)
    assert all(isinstance(s, ContinuousScale) for s in create_scales(settings(kind="xk3190"), 1))
    with pytest.raises(ValueError, match="one port per lane"):
        create_scales(settings(ports=ports), 4)


def test_line_settings_reach_the_port() -> None:
    opener = url_opener(
        "lane-1", "/dev/ttyS0", settings(baudrate=4800, bytesize=7, parity="E", timeout_s=0.1)
    )
    assert opener.args == ("/dev/ttyS0",)
    assert opener.keywords == {
        "device": "lane-1",
        "baudrate": 4800,
        "read_timeout_s": 0.025,
        "bytesize": 7,
        "parity": "E",
        "stopbits": 1,
    }


def test_unknown_settings_fields_are_rejected() -> None:
    with pytest.raises(ValueError):
        settings(baud=9600)


def test_mtsics_mode_and_rates_reach_the_driver() -> None:
    (default,) = create_scales(settings(kind="mt-sics"), 1)
    assert isinstance(default, MtSicsScale) and default.mode == "stream"
    (polled,) = create_scales(
        settings(kind="mt-sics", mode="poll", poll_interval_s=0.05, command_timeout_s=2.0), 1
    )
    assert isinstance(polled, MtSicsScale) and polled.mode == "poll"
    assert (polled._poll_interval_s, polled._command_timeout_s) == (0.05, 2.0)
    with pytest.raises(ValueError):
        settings(kind="mt-sics", mode="push")
    with pytest.raises(ValueError):
        settings(poll_interval_s=0)
