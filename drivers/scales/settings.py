"""Config models for serial weighing indicators (how to reach them, which protocol)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SerialScaleSettings(_Strict):
    """A serial weighing indicator, one per lane, reached through pyserial URLs."""

    kind: Literal["mt-sics", "toledo", "xk3190"] = Field(
        description="Indicator protocol: MT-SICS request/response, Toledo continuous, XK3190-A9 continuous."
    )
    ports: list[str] = Field(
        min_length=1,
        description="One pyserial URL per lane: /dev/ttyUSB0, socket://host:port, rfc2217://host:port.",
    )
    baudrate: int = Field(9600, ge=300, le=115200, description="Serial baud rate.")
    timeout_s: float = Field(
        0.3,
        gt=0,
        le=10,
        description="Freshness: the scale is up while a valid reading arrived within this long "
        "(a longer silence is a fault). Also how long an MT-SICS SI poll waits for its reply.",
    )
    mode: Literal["stream", "poll"] = Field(
        default="stream",
        description="MT-SICS only. 'stream': send SIR after every connect and read the balance's "
        "repeated S S/S D lines (no request per reading, so the rate is the balance's own). "
        "'poll': send SI every poll_interval_s, one request in flight, for balances without SIR. "
        "Toledo and XK3190 indicators always stream.",
    )
    poll_interval_s: float = Field(
        default=0.01,
        gt=0,
        le=10,
        description="MT-SICS 'poll' mode: time between SI requests. The next SI waits for the "
        "previous reply, so a slow link polls slower than this, never faster.",
    )
    command_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="MT-SICS zero/tare/clear-tare: how long to wait for the reply. Z and T wait "
        "on the balance for a stable weight first (about 3 s on many models).",
    )
    reading_buffer_size: int = Field(
        default=2000,
        ge=10,
        le=1_000_000,
        description="Readings kept for take_readings(); when the runtime does not take them, the "
        "oldest are dropped and counted (2000 is 20 s at 100 readings/s).",
    )
    unit: Literal["g", "kg"] = Field(
        default="kg",
        description="Unit the indicator displays, for formats whose frames carry none (XK3190-A9). "
        "Toledo frames carry kg/lb and MT-SICS replies carry their unit.",
    )
    stable_frames: int = Field(
        default=3,
        ge=1,
        le=50,
        description="Formats without a motion flag (XK3190-A9): the weight counts as stable once "
        "this many consecutive frames show the same value.",
    )
    reconnect_max_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Longest wait between reconnect attempts (backoff from 0.1 s).",
    )
    bytesize: Literal[7, 8] = Field(
        default=8,
        description="Data bits. Many Toledo-format indicators ship as 7E1; a 7-bit link read as 8N1 "
        "shows the parity bit as bit 7 and every frame is rejected. Ignored by socket:// (set it on the gateway).",
    )
    parity: Literal["N", "E", "O"] = Field(default="N", description="Parity: none, even, odd.")
    stopbits: Literal[1, 2] = Field(default=1, description="Stop bits.")
