"""The simulated world as a process beside the line, and the line config that points at it.

Application level, beside the composition root: the demo and the benchmarks run the line's
real drivers against ``gradeline sim line`` (``simulators/world.py``) instead of in-process
stand-ins. This module owns

* ``world_plan``: what the world simulates, from a line config (geometry, speed, outlets,
  fruit, the scale protocol, the cold rooms);
* ``start_world``: spawn ``gradeline sim line`` as a subprocess, wait for its banner with a
  deadline, and stop it (SIGTERM, logs flushed) on exit;
* ``line_config_for_world``: the same line config with every device pointed at the world
  (``plc.device`` Modbus, ``scale`` the world's protocol on its ``socket://`` ports,
  ``camera.device`` OpenCV on the MJPEG URL, ``sensors`` on the world's cold rooms, and a
  ``[trace]`` that names no printer on the world's label printer);
* ``config_to_toml``: a line config written back as TOML, for the subprocess.

It holds no business rules and never reads the truth log: the benchmarks do.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import BaseModel, ConfigDict, Field

from api.config import LineConfig
from drivers.scales.settings import SerialScaleSettings
from simulators.coldroom import (
    LAYOUTS,
    ColdroomSimSettings,
    CoreProbeSettings,
    RoomSettings,
    ScenarioEvent,
)
from simulators.settings import SimulatedCameraSettings, SimulatedScaleSettings
from simulators.world import WorldPlan
from simulators.world_cycle import WorldConfigError

# -- the banner ------------------------------------------------------------------------------


class _Banner(BaseModel):
    # A newer world may say more; an older reader must still start against it.
    model_config = ConfigDict(extra="ignore", frozen=True)


class PlcEndpoint(_Banner):
    host: str
    port: int
    device_id: int = 1


class ScaleEndpoints(_Banner):
    kind: str
    ports: list[str]
    unit: str
    resolution_g: float
    stream_hz: float
    noise_g: float


class CameraEndpoint(_Banner):
    url: str
    latency_s: float
    fps: float
    width_px: int
    height_px: int


class ColdroomEndpoint(_Banner):
    host: str
    port: int
    profile: str
    unit_ids: list[int]
    names: list[str]


class PrinterEndpoint(_Banner):
    host: str
    port: int
    out_dir: str


class WorldBanner(_Banner):
    """The one JSON line ``gradeline sim line`` prints when it is up."""

    simulator: str = Field(pattern="^line$")
    banner_version: int
    pid: int
    started_t_s: float = Field(description="time.monotonic when the belt was at position 0.")
    truth_dir: str
    lanes: int
    cups_per_second: float
    scale_offset_cups: int
    outlets: dict[str, int]
    camera_trigger_pitch_cups: float
    camera_trigger_pitch: str
    cycle_cups: int
    frames_per_cycle: int
    plc: PlcEndpoint
    scale: ScaleEndpoints
    camera: CameraEndpoint
    coldrooms: ColdroomEndpoint | None
    printer: PrinterEndpoint | None = Field(None, description="The label printer, when the plan asked for one.")
    cache: dict[str, Any]
    faults: dict[str, Any] = Field(
        default_factory=dict, description="The simulated device faults and when they start (simulation.faults)."
    )


# -- config -> world -------------------------------------------------------------------------


def _coldrooms(config: LineConfig) -> ColdroomSimSettings | None:
    """Rooms for the config's ``[[sensors]]`` (same names and unit ids), else the demo's N rooms.
    A sensor listed as a room's core probe (``[[coldchain.rooms]] core_probes``) is a probe in
    that room, cooling a batch from 25 degC with a 30-minute time constant; a room's
    ``door_sensor`` (profile ``door-contact``) is its door contact.

    The scenario is the demo's: the first room's door opens at 30 s for a minute, the second
    room's compressor fails at 60 s and is repaired at 1860 s.
    """
    world = config.simulation.world
    if config.sensors:
        doors_of = {r.door_sensor: r.air for r in config.coldchain.rooms if r.door_sensor is not None}
        for s in config.sensors:
            if s.name in doors_of and (s.profile != "door-contact" or s.registers is not None):
                raise WorldConfigError(
                    "sensors", f"{s.name}: the simulated world serves door contacts as profile 'door-contact'"
                )
        measuring = [s for s in config.sensors if s.name not in doors_of]
        layouts = {s.profile for s in measuring}
        if any(s.registers is not None for s in measuring) or len(layouts) != 1:
            raise WorldConfigError(
                "sensors",
                "the simulated world serves rooms of one built-in profile; these sensors mix "
                "profiles or list inline registers",
            )
        layout = layouts.pop()
        if layout not in LAYOUTS:
            raise WorldConfigError(
                "sensors", f"profile {layout!r} is not simulated (one of {', '.join(LAYOUTS)})"
            )
        ids = [s.device_id for s in config.sensors]
        if len(set(ids)) != len(ids):
            raise WorldConfigError(
                "sensors", "the simulated rooms share one bus: unit ids must differ"
            )
        # A sensor that a configured room lists as a fruit-core probe is served as that room's
        # probe (a batch cooling from the hall's temperature); every other sensor is a room.
        probes_of: dict[str, str] = {}
        for room in config.coldchain.rooms:
            for probe in room.core_probes:
                probes_of[probe] = room.air
        by_name = {s.name: s for s in config.sensors}
        rooms = []
        door_of = {air: by_name[door] for door, air in doors_of.items() if door in by_name}
        for s in measuring:
            if s.name in probes_of:
                continue
            probes = [
                CoreProbeSettings(name=p, unit_id=by_name[p].device_id, initial_celsius=25.0, time_constant_s=1800.0)
                for p, air in probes_of.items() if air == s.name and p in by_name
            ]
            rooms.append(RoomSettings(
                name=s.name, unit_id=s.device_id, core_probes=probes,
                door_unit_id=door_of[s.name].device_id if s.name in door_of else None,
                door_name=door_of[s.name].name if s.name in door_of else None,
            ))
    else:
        if world.coldrooms == 0:
            return None
        layout = world.coldroom_layout
        rooms = [RoomSettings(name=f"room-{i}", unit_id=i) for i in range(1, world.coldrooms + 1)]
    events: list[ScenarioEvent] = [
        ScenarioEvent(at_s=30, unit_id=rooms[0].unit_id, action="door_open"),
        ScenarioEvent(at_s=90, unit_id=rooms[0].unit_id, action="door_close"),
    ]
    if len(rooms) >= 2:
        events += [
            ScenarioEvent(at_s=60, unit_id=rooms[1].unit_id, action="compressor_fail"),
            ScenarioEvent(at_s=1860, unit_id=rooms[1].unit_id, action="compressor_restore"),
        ]
    return ColdroomSimSettings.model_validate({"layout": layout, "rooms": rooms, "events": events})


def world_plan(config: LineConfig, *, host: str = "127.0.0.1") -> WorldPlan:
    """What ``gradeline sim line`` simulates for this line config."""
    from grading.recipe import load_recipe

    camera = config.camera.device
    scale = config.scale
    geometry = config.camera.geometry
    if isinstance(scale, SimulatedScaleSettings):
        protocol, noise_g = "mt-sics", scale.noise_g
    else:
        protocol, noise_g = scale.kind, config.simulation.world.scale_noise_g
    from simulators.fruit import PRODUCTS

    product = load_recipe(config.recipe).product
    if product not in PRODUCTS:
        raise WorldConfigError(
            "recipe", f"the simulated world grows {', '.join(PRODUCTS)} only; the recipe's product is {product!r}"
        )
    return WorldPlan(
        product=product,
        lanes=config.line.lanes,
        cup_pitch_mm=config.line.cup_pitch_mm,
        cups_per_second=config.line.cups_per_second,
        scale_offset_cups=config.line.scale_offset_cups,
        outlet_offsets_cups={o.number: o.offset_cups for o in config.outlets},
        width_px=geometry.width_px,
        height_px=geometry.height_px,
        mm_per_px=geometry.mm_per_px,
        fps=geometry.fps,
        camera=camera if isinstance(camera, SimulatedCameraSettings) else SimulatedCameraSettings(),
        simulation=config.simulation,
        scale_protocol=protocol,  # type: ignore[arg-type]  # a SerialScaleSettings kind
        scale_noise_g=noise_g,
        coldrooms=_coldrooms(config),
        host=host,
        # a line with [trace] but no printer of its own prints on the world's (the demo does)
        label_printer=config.trace is not None and config.trace.printer_host is None,
    )


# -- world -> config -------------------------------------------------------------------------


def line_config_for_world(config: LineConfig, banner: WorldBanner) -> LineConfig:
    """``config`` with the PLC, scales, camera and cold-room sensors of the running world."""
    if banner.lanes != config.line.lanes:
        raise ValueError(
            f"line.lanes: the config has {config.line.lanes} lanes, the world {banner.lanes}"
        )
    data = config.model_dump(mode="python")
    old_plc = config.plc.device
    plc = {} if old_plc.kind != "modbus" else old_plc.model_dump()
    plc.update(
        kind="modbus", host=banner.plc.host, port=banner.plc.port, device_id=banner.plc.device_id
    )
    data["plc"]["device"] = plc

    scale = {} if not isinstance(config.scale, SerialScaleSettings) else config.scale.model_dump()
    scale.update(kind=banner.scale.kind, ports=list(banner.scale.ports))
    if banner.scale.unit in ("g", "kg"):
        scale["unit"] = banner.scale.unit  # formats without a unit in their frames need it
    data["scale"] = scale

    old_camera = config.camera.device
    camera = {} if old_camera.kind != "opencv" else old_camera.model_dump()
    camera.update(kind="opencv", source=banner.camera.url, latency_s=banner.camera.latency_s)
    data["camera"]["device"] = camera

    rooms = banner.coldrooms
    if rooms is None:
        data["sensors"] = []
    else:
        transport: dict[str, Any] = {"kind": "tcp", "host": rooms.host, "port": rooms.port}
        by_name = {s.name: s for s in config.sensors}
        sensors = []
        for name, unit_id in zip(rooms.names, rooms.unit_ids, strict=True):
            base = by_name.get(name)
            sensor: dict[str, Any] = (
                base.model_dump() if base is not None else {"profile": rooms.profile}
            )
            sensor.update(name=name, device_id=unit_id, transport=transport)
            sensors.append(sensor)
        data["sensors"] = sensors
    if banner.printer is not None and data.get("trace") is not None and data["trace"]["printer_host"] is None:
        data["trace"].update(printer_host=banner.printer.host, printer_port=banner.printer.port)
    return LineConfig.model_validate(data)


# -- TOML ------------------------------------------------------------------------------------


def config_to_toml(config: LineConfig) -> str:
    """The config as a TOML line config that ``load_config`` reads back equal.

    Unset optional values (None) are left out, which is how TOML says "default". A recipe
    given as a file path is made absolute, since the file is read from elsewhere.
    """
    data = config.model_dump(mode="json", exclude_none=True)
    recipe = data.get("recipe")
    if isinstance(recipe, str) and (recipe.endswith(".toml") or "/" in recipe):
        data["recipe"] = str(Path(recipe).resolve())
    return "# Written by api.world.config_to_toml\n" + tomlkit.dumps(data)


# -- the process -----------------------------------------------------------------------------


class WorldProcess:
    """A running ``gradeline sim line``: its banner, truth dir and process."""

    def __init__(
        self, process: subprocess.Popen[bytes], banner: WorldBanner, truth_dir: Path, log_path: Path
    ) -> None:
        self.process = process
        self.banner = banner
        self.truth_dir = truth_dir
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        return ""

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, then wait for the world to flush its logs and exit; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def _read_banner(process: subprocess.Popen[bytes], timeout_s: float, log_path: Path) -> WorldBanner:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    received = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in received:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"gradeline sim line printed no banner within {timeout_s:g} s "
                    f"(its log: {log_path})"
                )
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                process.wait()
                tail = log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
                raise RuntimeError(
                    f"gradeline sim line exited ({process.returncode}) before its banner:\n{tail}"
                )
            received += chunk
    return WorldBanner.model_validate_json(received.split(b"\n", 1)[0])


@contextlib.contextmanager
def start_world(
    config: LineConfig,
    truth_dir: Path,
    *,
    cache_dir: Path | None = None,
    host: str = "127.0.0.1",
    banner_timeout_s: float = 300.0,
    stop_timeout_s: float = 30.0,
    cwd: Path | None = None,
    nice: int | None = -10,
) -> Iterator[WorldProcess]:
    """Run ``gradeline sim line`` for ``config`` while the block runs.

    The config is written to ``truth_dir/world-config.toml`` and the world's log (stderr) to
    ``truth_dir/world.log``. The banner may take a while on the first start of a geometry
    (the camera cycle is rendered, then cached), hence the generous default deadline.
    Leaving the block stops the world; an exit code other than 0 then raises, unless the
    block is already raising.
    """
    truth_dir.mkdir(parents=True, exist_ok=True)
    config_path = truth_dir / "world-config.toml"
    config_path.write_text(config_to_toml(config), encoding="utf-8")
    log_path = truth_dir / "world.log"
    command = [
        sys.executable,
        "-m",
        "api.cli",
        "sim",
        "line",
        "--config",
        str(config_path),
        "--truth-dir",
        str(truth_dir),
        "--host",
        host,
    ]
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    if nice is not None:
        # the devices it stands in for have processors of their own: ahead of the line
        command += ["--nice", str(nice)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            # Its own session: a Ctrl-C meant for the line does not stop the world under it
            # (the line stops it once its records are written). If the line dies, so does it.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    try:
        banner = _read_banner(process, banner_timeout_s, log_path)
    except BaseException:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
        raise
    assert process.stdout is not None
    process.stdout.close()  # the banner is all the world prints
    world = WorldProcess(process, banner, truth_dir, log_path)
    raised = True
    try:
        yield world
        raised = False
    finally:
        code = world.stop(stop_timeout_s)
        if code != 0 and not raised:
            raise RuntimeError(f"gradeline sim line exited with {code}:\n{world.log_tail()}")
