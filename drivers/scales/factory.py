"""Build the serial scale drivers for a line from ``SerialScaleSettings``: the registry by ``kind``.

Each indicator protocol registers a builder under its ``kind``; adding a protocol means one
parser module and one ``register_scale_kind`` call, nothing else changes. Building does no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from drivers.scales import toledo, xk3190
from drivers.scales.driver import Clock, ContinuousScale, MtSicsScale, SerialScale
from drivers.scales.settings import SerialScaleSettings
from drivers.scales.transport import ByteTransport, open_transport

ScaleBuilder = Callable[[str, str, SerialScaleSettings, Clock], SerialScale]

_BUILDERS: dict[str, ScaleBuilder] = {}


def register_scale_kind(kind: str, builder: ScaleBuilder) -> None:
    if kind in _BUILDERS:
        raise ValueError(f"scale kind {kind!r} is already registered")
    _BUILDERS[kind] = builder


def scale_kinds() -> list[str]:
    return sorted(_BUILDERS)


def read_timeout_s(settings: SerialScaleSettings) -> float:
    """How long one blocking read may wait. It bounds how late the reader thread notices a
    stop request, a queued zero/tare or a silent line; it never delays a stamp, because a
    read returns as soon as bytes arrive."""
    return min(0.05, settings.timeout_s / 4)


def url_opener(
    name: str, url: str, settings: SerialScaleSettings
) -> Callable[[], ByteTransport]:
    return partial(
        open_transport,
        url,
        device=name,
        baudrate=settings.baudrate,
        read_timeout_s=read_timeout_s(settings),
        bytesize=settings.bytesize,
        parity=settings.parity,
        stopbits=settings.stopbits,
    )


def _build_mtsics(name: str, url: str, settings: SerialScaleSettings, clock: Clock) -> SerialScale:
    return MtSicsScale(
        name,
        url_opener(name, url, settings),
        timeout_s=settings.timeout_s,
        mode=settings.mode,
        poll_interval_s=settings.poll_interval_s,
        command_timeout_s=settings.command_timeout_s,
        clock=clock,
        reconnect_max_s=settings.reconnect_max_s,
        buffer_size=settings.reading_buffer_size,
    )


def _build_toledo(name: str, url: str, settings: SerialScaleSettings, clock: Clock) -> SerialScale:
    return ContinuousScale(
        name,
        url_opener(name, url, settings),
        partial(toledo.framer, name),
        timeout_s=settings.timeout_s,
        clock=clock,
        stable_frames=settings.stable_frames,
        reconnect_max_s=settings.reconnect_max_s,
        buffer_size=settings.reading_buffer_size,
    )


def _build_xk3190(name: str, url: str, settings: SerialScaleSettings, clock: Clock) -> SerialScale:
    return ContinuousScale(
        name,
        url_opener(name, url, settings),
        partial(xk3190.framer, name, settings.unit),
        timeout_s=settings.timeout_s,
        clock=clock,
        stable_frames=settings.stable_frames,
        reconnect_max_s=settings.reconnect_max_s,
        buffer_size=settings.reading_buffer_size,
    )


register_scale_kind("mt-sics", _build_mtsics)
register_scale_kind("toledo", _build_toledo)
register_scale_kind("xk3190", _build_xk3190)


def create_scale(
    name: str, url: str, settings: SerialScaleSettings, *, clock: Clock = time.monotonic
) -> SerialScale:
    try:
        builder = _BUILDERS[settings.kind]
    except KeyError:
        raise ValueError(f"no scale driver registered for kind {settings.kind!r}") from None
    return builder(name, url, settings, clock)


def create_scales(
    settings: SerialScaleSettings, lanes: int, *, clock: Clock = time.monotonic
) -> list[SerialScale]:
    """One driver per lane, named ``lane-1``, ``lane-2``, ...; not yet opened."""
    if len(settings.ports) != lanes:
        raise ValueError(
            f"scale.ports: needs one port per lane ({lanes}), got {len(settings.ports)}"
        )
    return [
        create_scale(f"lane-{lane}", url, settings, clock=clock)
        for lane, url in enumerate(settings.ports, start=1)
    ]
