"""``gradeline sim scale`` as a separate process, read by the real driver."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from drivers.interfaces import WeightReading
from drivers.scales.factory import create_scale
from drivers.scales.settings import SerialScaleSettings


@pytest.fixture
def simulator_process(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[subprocess.Popen[str], dict[str, object]]]:
    protocol, where = request.param
    argv = [
        sys.executable,
        "-m",
        "api.cli",
        "sim",
        "scale",
        "--protocol",
        protocol,
        "--weight-g",
        "250.4",
    ]
    argv += ["--tcp", "0"] if where == "tcp" else ["--pty"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        endpoint = json.loads(proc.stdout.readline())  # the first line names the endpoint
        yield proc, endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def first_stable(url: str, kind: str, mode: str = "stream") -> WeightReading:
    scale = create_scale(
        "lane-1",
        url,
        SerialScaleSettings.model_validate({"kind": kind, "ports": [url], "mode": mode}),
    )
    await scale.open()
    try:
        async with asyncio.timeout(10):
            while True:
                stable = [r for r in scale.take_readings() if r.stable]
                if stable:
                    assert scale.is_up()
                    assert await scale.read_weight()  # the CLI tools' convenience agrees
                    return stable[0]
                await asyncio.sleep(0.02)
    finally:
        await scale.close()


@pytest.mark.parametrize(
    "simulator_process",
    [("toledo", "tcp"), ("mt-sics", "tcp"), ("mt-sics", "pty"), ("xk3190", "pty")],
    indirect=True,
    ids=["toledo-tcp", "mt-sics-tcp", "mt-sics-pty", "xk3190-pty"],
)
def test_cli_simulator_prints_its_endpoint_and_serves_the_driver(
    simulator_process: tuple[subprocess.Popen[str], dict[str, object]],
) -> None:
    proc, endpoint = simulator_process
    url = str(endpoint["url"])
    if "port" in endpoint:
        assert url == f"socket://127.0.0.1:{endpoint['port']}" and endpoint["port"] != 0
    else:
        assert url == endpoint["pty"] and url.startswith("/dev/")
    protocol = str(endpoint["protocol"])
    # MT-SICS streams after SIR by default; poll mode sends SI to the same simulator.
    modes = ["stream", "poll"] if protocol == "mt-sics" else ["stream"]
    for mode in modes:
        reading = asyncio.run(first_stable(url, protocol, mode))
        # MT-SICS here shows grams with 2 decimals; Toledo and XK3190 show kg with 3 (1 g steps).
        expected = 250.4 if protocol == "mt-sics" else 250.0
        assert reading.weight_g == pytest.approx(expected)
    proc.terminate()
    assert proc.wait(timeout=10) == 0


def test_cli_rejects_bad_arguments() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "api.cli",
            "sim",
            "scale",
            "--protocol",
            "toledo",
            "--tcp",
            "0",
            "--garbage-rate",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "garbage_rate" in result.stderr
