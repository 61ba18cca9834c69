"""The line config: one TOML file describing one grading line, validated by pydantic.

Application-level: it names devices, the API and the database, so it lives beside the
composition root (``api.compose``), not in the domain. The domain's own settings
(``OutletSettings``, ``ConfigIssue``) are in ``grading.config`` and re-exported here.

Owns the schema, loading and error reporting (``FILE: dotted.path: message``). Every field
has bounds and a description; unknown keys are errors so typos fail at start. No config file
means the built-in demo line: every device simulated, SQLite under ``./var/``, and a demo
``[trace]`` (``demo_trace``) so its cartons get codes and labels.
"""

from __future__ import annotations

import re
import tomllib
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, ValidationError, model_validator

from drivers.camera import OpenCvCameraSettings
from drivers.modbus.settings import ModbusSensorSettings, PlcModbusSettings
from drivers.scales.settings import SerialScaleSettings
from grading.coldchain.config import ColdchainSettings
from grading.config import ConfigIssue, OutletSettings
from grading.drift import DriftSettings
from grading.trace.codes import PrivacyLevel, ProductGtin, TraceConfig
from simulators.settings import (
    SimulatedCameraSettings,
    SimulatedPlcSettings,
    SimulatedScaleSettings,
    SimulationSettings,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _line_id_from(name: str) -> str:
    """A line id from a line name: lower case, runs of other characters as one "-", at most 12."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:12].strip("-")
    return slug or "line"


class LineSettings(_Strict):
    name: str = Field("line-1", min_length=1, max_length=64, description="Line name, used in metrics and records.")
    id: str = Field(
        "line-1", pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,11}$",
        description="The line's id, unique among the lines sharing one database: written on every record, part of "
        "its counters' names and of its carton serials (AI 21). Default: the name in lower case, other characters "
        "as '-'.",
    )
    number: int = Field(
        1, ge=1, le=9,
        description="The line's digit, unique among the lines sharing one database: the first digit of its SSCC "
        "serial references. Default: the last digit of the id (1 if it has none or it is 0).",
    )
    lanes: int = Field(4, ge=1, le=16, description="Number of singulated lanes.")
    cup_pitch_mm: float = Field(110.0, gt=10, le=500, description="Distance between cups along a lane.")
    cups_per_second: float = Field(
        8.0, gt=0, le=40, description="Belt speed in cups per second per lane (simulated belt; real belts report it)."
    )
    scale_offset_cups: int = Field(
        -10, le=-1, ge=-200,
        description="Where the load cell sits, in cups relative to the inspection point (camera exit); negative = upstream.",
    )
    weigh_window_cups: float = Field(
        0.25, gt=0, lt=0.5,
        description="A stable reading counts for a cup when the belt position puts the cup within this many cups "
        "of the load cell's centre.",
    )
    cpu_nice: int = Field(
        -5, ge=-20, le=19,
        description="Scheduling priority the line process asks for at start (a nice value; lower runs first), so "
        "the operator's browser or anything else on the PC cannot take the CPU its deadlines need. Below 0 needs "
        "CAP_SYS_NICE (root, or Nice= in its systemd unit); without it the line warns and runs at its own.",
    )
    weigh_consistency_g: float = Field(
        1.0, gt=0, le=100,
        description="A cup whose stable readings differ by more than this gets no weight (recheck): "
        "they cannot all be its own.",
    )

    @model_validator(mode="before")
    @classmethod
    def _derive_id(cls, data: object) -> object:
        if isinstance(data, dict):
            data = dict(data)
            if "id" not in data:
                data["id"] = _line_id_from(str(data.get("name", "line-1")))
            if "number" not in data:
                digits = re.findall(r"[1-9]", str(data["id"])[-1:])
                data["number"] = int(digits[0]) if digits else 1
        return data


class CameraGeometry(_Strict):
    width_px: int = Field(1280, ge=64, le=8192, description="Image width; the belt runs along x.")
    height_px: int = Field(640, ge=32, le=8192, description="Image height; lanes are horizontal bands.")
    fps: float = Field(12.0, gt=0, le=500, description="Frames per second.")
    mm_per_px: float = Field(0.8, gt=0.01, le=10, description="Scale at the belt plane, from calibration.")


class LensCalibration(_Strict):
    """Lens undistortion from a checkerboard calibration (``gradeline vision calibrate``)."""

    camera_matrix: list[list[float]] | None = Field(
        None, min_length=3, max_length=3, description="3x3 intrinsic matrix; None = no undistortion."
    )
    dist_coeffs: list[float] | None = Field(None, min_length=4, max_length=14, description="OpenCV distortion coefficients.")


SimOrOpenCvCamera = Annotated[SimulatedCameraSettings | OpenCvCameraSettings, Field(discriminator="kind")]
ScaleDevice = Annotated[SimulatedScaleSettings | SerialScaleSettings, Field(discriminator="kind")]
PlcDevice = Annotated[SimulatedPlcSettings | PlcModbusSettings, Field(discriminator="kind")]


class CameraSettings(_Strict):
    geometry: CameraGeometry = Field(default_factory=CameraGeometry, description="Image size, rate and scale.")
    device: SimOrOpenCvCamera = Field(default_factory=SimulatedCameraSettings, description="Where frames come from.")
    calibration: LensCalibration = Field(default_factory=LensCalibration, description="Lens undistortion.")


def _demo_outlets() -> list[OutletSettings]:
    return [
        OutletSettings(number=1, name="特级 Extra", offset_cups=6, quality_classes=["extra"]),
        OutletSettings(number=2, name="一级 Class I", offset_cups=8, quality_classes=["class_i"]),
        OutletSettings(number=3, name="二级 Class II", offset_cups=10, quality_classes=["class_ii"]),
        OutletSettings(number=4, name="复检 Recheck", offset_cups=12, role="recheck"),
        OutletSettings(number=5, name="次果 Cull", offset_cups=14, role="cull"),
    ]


class PlcSettings(_Strict):
    device: PlcDevice = Field(default_factory=SimulatedPlcSettings, description="How to reach the PLC.")
    poll_hz: float = Field(
        50.0, ge=1, le=1000,
        description="Status polls per second: the belt timing that places frames and weights on cups comes from them.",
    )
    decision_margin_cups: float = Field(
        1.0, ge=0, le=100, description="A decision must land this many cups before the first outlet, else it is late."
    )


class VisionRunSettings(_Strict):
    workers: int = Field(
        2, ge=1, le=16,
        description="Vision worker processes, off the line loop's GIL; each costs a pipeline's memory and a "
        "few seconds at start.",
    )
    split: Literal["lanes", "frames"] = Field(
        "lanes",
        description="lanes: every worker measures its own group of lanes of every frame (a frame takes "
        "1/workers of the time: lower latency); frames: each frame goes whole to one worker (throughput).",
    )


class DatabaseSettings(_Strict):
    url: str = Field(
        "sqlite:///var/gradeline.db",
        description="SQLAlchemy URL; sqlite:///path (WAL) or postgresql+psycopg://user@host/db.",
    )
    batch_size: int = Field(200, ge=1, le=10000, description="Rows per insert batch.")
    flush_interval_s: float = Field(0.25, gt=0, le=10, description="Longest time a row waits before it is written.")
    outbox: str | None = Field(
        None, min_length=1,
        description="Path of the line's local SQLite outbox. When set, records are committed there first and "
        "forwarded to the central database at url (PostgreSQL, shared by several lines) in order; during an outage "
        "the line keeps running on the outbox (docs/operations.md). Unset: records go to url directly.",
    )
    forward_batch_rows: int = Field(500, ge=1, le=10000, description="Outbox rows forwarded per central transaction.")

    @property
    def line_url(self) -> str:
        """The database the line itself writes and reads: its outbox if it has one, else ``url``."""
        return self.url if self.outbox is None else f"sqlite:///{self.outbox}"

    @model_validator(mode="after")
    def _check_outbox(self) -> DatabaseSettings:
        if self.outbox is not None and self.outbox.startswith(("sqlite:", "postgresql")):
            raise ValueError("outbox: a file path (e.g. var/outbox.db), not a URL")
        return self


def _networks(*cidrs: str) -> list[IPv4Network | IPv6Network]:
    return [ip_network(c) for c in cidrs]


class ApiSettings(_Strict):
    host: str = Field(
        "127.0.0.1", description="Address the API binds to; loopback unless a TLS reverse proxy is not on this PC."
    )
    port: int = Field(8080, ge=0, le=65535, description="TCP port (0 = any free port).")
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=lambda: _networks("127.0.0.1/32", "::1/128"),
        description="Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (client address, https).",
    )
    metrics_public_networks: list[IPvAnyNetwork] = Field(
        default_factory=lambda: _networks("127.0.0.0/8", "::1/128"),
        description="Client networks that may read /metrics without a token (Prometheus); others need an integrator token.",
    )


class AuthSettings(_Strict):
    session_hours: float = Field(12.0, gt=0, le=168, description="How long an HMI login lasts (one shift).")
    pin_failures_to_lock: int = Field(
        5, ge=1, le=100, description="Wrong PINs in a row that lock a user until an admin unlocks it."
    )
    address_failures_limit: int = Field(
        20, ge=1, le=100000, description="Wrong PINs from one client address, within the window, before it must wait."
    )
    address_window_s: float = Field(900.0, gt=0, le=86400, description="Window of the per-address limit.")
    credential_cache_s: float = Field(
        2.0, ge=0, le=60,
        description="How long a checked token or session is trusted before it is looked up again; "
        "a revoke or disable from the command line takes effect within this time.",
    )


class LotSettings(_Strict):
    code: str = Field("DEMO-LOT-1", min_length=1, max_length=40, description="Lot code of the lot being run.")
    grower: str = Field("演示果农 Demo grower", max_length=100, description="Grower name.")
    variety: str = Field("", max_length=64, description="Variety.")
    grower_id: str = Field("", max_length=40, description="Grower ID (e.g. the cooperative's member number).")
    origin_village: str = Field("", max_length=100, description="Village the fruit was grown in.")
    origin_plot: str = Field("", max_length=100, description="Plot (field) within the village.")


class LotsSettings(_Strict):
    carry_over_partial_cartons: bool = Field(
        False,
        description="At a lot switch, keep each packing outlet's partial carton open and top it up with the next "
        "lot's fruit (it then gets the packing center's own 合格证 listing both lots, docs/traceability.md); "
        "false: every open carton closes with its lot.",
    )


class SettlementSettings(_Strict):
    price_table: str | None = Field(
        None,
        description="Price table TOML (CNY per kg by quality and size class, and deductions) for settlements and "
        "what-if values; relative to this config file. None = the demo table (grading/lots/prices_demo.toml).",
    )


class LineConfig(_Strict):
    line: LineSettings = Field(default_factory=LineSettings, description="Conveyor geometry and speed.")
    camera: CameraSettings = Field(default_factory=CameraSettings, description="Camera and its geometry.")
    vision: VisionRunSettings = Field(default_factory=VisionRunSettings, description="How vision runs.")
    scale: ScaleDevice = Field(default_factory=SimulatedScaleSettings, description="Per-lane load cells.")
    plc: PlcSettings = Field(default_factory=PlcSettings, description="The PLC that fires the outlets.")
    outlets: list[OutletSettings] = Field(default_factory=_demo_outlets, min_length=1, description="Outlets (drops).")
    sensors: list[ModbusSensorSettings] = Field(
        default_factory=list, description="Cold-room temperature/humidity sensors polled over Modbus."
    )
    coldchain: ColdchainSettings = Field(
        default_factory=ColdchainSettings, description="Cold rooms, their bands and alarms, readings retention."
    )
    recipe: str = Field("apple", min_length=1, description="Built-in recipe name or path to a recipe TOML file.")
    lot: LotSettings = Field(default_factory=LotSettings, description="The lot the line starts on, when no lot is open on the line and this code is new.")
    lots: LotsSettings = Field(default_factory=LotsSettings, description="How lot switches treat open cartons.")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings, description="Where records are stored.")
    api: ApiSettings = Field(default_factory=ApiSettings, description="HTTP API.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="HMI logins, PIN lock-out, credential checks.")
    settlement: SettlementSettings = Field(default_factory=SettlementSettings, description="Grower settlement prices.")
    simulation: SimulationSettings = Field(
        default_factory=SimulationSettings, description="Simulated fruit flow (used by simulated devices only)."
    )
    drift: DriftSettings = Field(
        default_factory=DriftSettings, description="The drift alarm: grade mix against the lot's start, a lane against the others."
    )
    trace: TraceConfig | None = Field(
        None, description="GS1 codes, labels and the consumer resolver (docs/traceability.md); none: no codes."
    )

    @model_validator(mode="after")
    def _check_cross_fields(self) -> LineConfig:
        numbers = [o.number for o in self.outlets]
        if len(set(numbers)) != len(numbers):
            raise ValueError("outlets: outlet numbers must be unique")
        names = [s.name for s in self.sensors]
        if len(set(names)) != len(names):
            raise ValueError("sensors: sensor names must be unique")
        for i, room in enumerate(self.coldchain.rooms):
            for device in (room.air, room.door_sensor, *room.core_probes):
                if device is not None and device not in names:
                    raise ValueError(f"coldchain.rooms[{i}]: sensor {device!r} is not one of the [[sensors]]")
        if isinstance(self.scale, SerialScaleSettings) and len(self.scale.ports) != self.line.lanes:
            raise ValueError(f"scale.ports: needs one port per lane ({self.line.lanes}), got {len(self.scale.ports)}")
        stand_ins = [
            name for name, device in (("camera.device", self.camera.device), ("scale", self.scale))
            if isinstance(device, SimulatedCameraSettings | SimulatedScaleSettings)
        ]
        if stand_ins and not isinstance(self.plc.device, SimulatedPlcSettings):
            raise ValueError(
                f"{stand_ins[0]}: an in-process simulated device runs on the in-process simulated PLC's belt; "
                "with a real PLC use real devices (the simulated world: gradeline sim line)"
            )
        if self.vision.split == "lanes" and self.vision.workers > self.line.lanes:
            raise ValueError(f"vision.workers: {self.vision.workers} workers cannot split {self.line.lanes} lanes")
        lane_height = self.camera.geometry.height_px // self.line.lanes
        if lane_height < 16:
            raise ValueError("camera.geometry.height_px: too small for the number of lanes")
        if self.lots.carry_over_partial_cartons and (self.trace is None or not self.trace.packing_center):
            # a carton of two lots must carry the packing center's own 合格证, which names it
            raise ValueError(
                "lots.carry_over_partial_cartons: mixes lots in a carton, which then needs the packing center's "
                "own 合格证: configure [trace] with packing_center"
            )
        return self

    @property
    def first_outlet_offset_cups(self) -> int:
        return min(o.offset_cups for o in self.outlets)


# The demo's GS1 keys use GS1 prefix 952, which GS1 keeps for demonstrations and examples
# of its keys: no company can hold them, so a demo label can never be mistaken for (or collide
# with) a real product. 690-699 (GS1 China) would look real and may belong to someone.
DEMO_COMPANY_PREFIX = "9521234"
DEMO_LINK_BASE = "http://127.0.0.1:8080"


def demo_trace(digital_link_base: str = DEMO_LINK_BASE) -> TraceConfig:
    """The demo line's ``[trace]``: demo GS1 keys (prefix 952) for the demo outlets' carton kinds,
    the Digital Link on the demo's own server (``gradeline run`` sets the address it serves on),
    no printer of its own (the simulated world brings one)."""
    gtins = [
        ProductGtin(product="apple", quality_class=quality, size_class="*", gtin=gtin)
        for quality, gtin in (("extra", "19521234000010"), ("class_i", "19521234000027"),
                              ("class_ii", "19521234000034"))
    ]
    return TraceConfig(
        company_prefix=DEMO_COMPANY_PREFIX, packing_center_gln="9521234000006", digital_link_base=digital_link_base,
        grower_privacy=PrivacyLevel.masked, origin="演示县 (demo)", gtins=gtins, product_names={"apple": "苹果"},
        intake_gtins={"apple": "09521234000105"}, packing_center="演示分级包装中心 (demo)", contact="000-0000000",
    )


class ConfigError(Exception):
    """The config file is unreadable or invalid; carries every issue found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


_UNION_TAGS = {"simulated", "opencv", "mt-sics", "toledo", "xk3190", "modbus"}


def _dotted(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        elif item in _UNION_TAGS:
            continue  # discriminated-union branch name, not a key the user wrote
        else:
            parts.append(item)
    return ".".join(parts) or "(top level)"


def parse_config(data: dict[str, object], file: str = "<config>") -> LineConfig:
    try:
        return LineConfig.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            message = err["msg"]
            field = _dotted(tuple(err["loc"]))
            if field == "(top level)" and message.startswith("Value error, ") and ":" in message:
                field, _, message = message.removeprefix("Value error, ").partition(": ")
            issues.append(ConfigIssue(file, field, message))
        raise ConfigError(issues) from exc


def load_config(path: str | Path | None) -> LineConfig:
    """Load and validate ``path``; ``None`` gives the built-in demo line, with ``demo_trace``.
    A file without ``[trace]`` has no codes."""
    if path is None:
        return LineConfig(trace=demo_trace())
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(str(path), "(file)", exc.strerror or str(exc))]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigIssue(str(path), "(toml)", str(exc))]) from exc
    recipe = data.get("recipe")
    if isinstance(recipe, str) and (recipe.endswith(".toml") or "/" in recipe) and not Path(recipe).is_absolute():
        # A recipe file named in a config is relative to that config file, not to the working directory.
        data["recipe"] = str(path.parent / recipe)
    settlement = data.get("settlement")
    if isinstance(settlement, dict):
        table = settlement.get("price_table")
        if isinstance(table, str) and not Path(table).is_absolute():
            settlement["price_table"] = str(path.parent / table)
    return parse_config(data, str(path))


__all__ = ["ConfigError", "ConfigIssue", "LineConfig", "OutletSettings", "demo_trace", "load_config", "parse_config"]
