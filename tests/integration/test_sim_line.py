"""``gradeline sim line`` as its own process, read by the line's real drivers.

The world is started through ``api.world.start_world`` and every device is reached through
the config ``line_config_for_world`` returns: the real ``ModbusPlc``, ``OpenCvCamera`` on the
MJPEG URL, the MT-SICS scale drivers (poll mode, ``SI``) and the Modbus sensor poller. What
they read is checked against the world's truth log, never against the world's internals.

No assertion depends on how fast this machine is: where a reading must be matched to a belt
position, the match uses the interval between sending the request and stamping the reply,
which contains the moment the world answered however loaded the machine is.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from api.config import LineConfig, parse_config
from api.world import WorldProcess, line_config_for_world, start_world
from drivers.camera import OpenCvCamera
from drivers.interfaces import OutletDecision, PlcStatus
from drivers.modbus.plc import ModbusPlc
from drivers.modbus.sensor import build_sensor_poller
from drivers.scales.factory import create_scales
from drivers.scales.settings import SerialScaleSettings
from simulators.world_cycle import cycle_renderer

SPEED = 8.0
FPS = 12.0
PITCH = Fraction(2, 3)
LANES = 2
OFFSET = -10


def small_config() -> LineConfig:
    # A small frame and cycle so the first start renders in a couple of seconds.
    return parse_config(
        {
            "line": {"lanes": LANES, "cups_per_second": SPEED, "scale_offset_cups": OFFSET},
            "camera": {
                "geometry": {"width_px": 320, "height_px": 128, "mm_per_px": 1.6, "fps": FPS}
            },
            "simulation": {"seed": 5, "world": {"cycle_cups": 16, "coldrooms": 2}},
        }
    )


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim-cache")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[WorldProcess]:
    truth = tmp_path_factory.mktemp("truth")
    with start_world(small_config(), truth, cache_dir=cache_dir, banner_timeout_s=120) as w:
        yield w


@pytest.fixture(scope="module")
def line(world: WorldProcess) -> LineConfig:
    return line_config_for_world(small_config(), world.banner)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    complete = text[: text.rfind("\n") + 1]  # a line being written may be cut short
    return [json.loads(line) for line in complete.splitlines()]


async def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def open_plc(line: LineConfig) -> ModbusPlc:
    device = line.plc.device
    assert device.kind == "modbus"
    return ModbusPlc.from_settings(device, lanes=LANES)


async def timed_status(plc: ModbusPlc) -> tuple[float, PlcStatus]:
    sent_t_s = time.monotonic()
    return sent_t_s, await plc.read_status()


# -- (a) the PLC -----------------------------------------------------------------------------


def test_plc_reads_contract_v2_trigger_pitch_and_a_belt_at_speed(
    world: WorldProcess, line: LineConfig
) -> None:
    async def main() -> list[tuple[float, PlcStatus]]:
        plc = open_plc(line)
        await plc.open()
        try:
            assert plc.identity is not None
            assert plc.identity.contract_version == 2
            assert plc.identity.lanes == LANES and plc.identity.outlets == 5
            assert plc.identity.camera_trigger_pitch_cups == pytest.approx(2 / 3, abs=1e-15)
            assert await plc.read_outlet_offsets_cups() == (6, 8, 10, 12, 14)
            samples = [await timed_status(plc)]
            first = samples[0][1].position_cups
            assert first is not None
            while (samples[-1][1].position_cups or 0.0) < first + 8:  # a second of belt
                await asyncio.sleep(0.05)
                samples.append(await timed_status(plc))
            return samples
        finally:
            await plc.close()

    samples = asyncio.run(asyncio.wait_for(main(), 30))
    started = world.banner.started_t_s
    for sent_t_s, status in samples:
        assert status.running and status.belt_speed_cups_per_s == pytest.approx(SPEED)
        assert status.position_cups is not None and status.camera_triggers is not None
        # The world answered between sending and stamping: the belt was at 8 cups/s since
        # started_t_s, give or take the register's 1/10000 cup.
        assert SPEED * (sent_t_s - started) - 1e-4 <= status.position_cups
        assert status.position_cups <= SPEED * (status.t_s - started) + 1e-4
        # registers 16-17 count the triggers at 2/3 cup exactly (to the fraction's resolution)
        exact = math.floor(Fraction(status.position_cups) / PITCH)
        assert status.camera_triggers in (exact - 1, exact, exact + 1)
    (s0, a), (s1, b) = samples[0], samples[-1]
    assert a.position_cups is not None and b.position_cups is not None
    moved = b.position_cups - a.position_cups
    assert moved / (b.t_s - s0) - 1e-3 <= SPEED <= moved / (s1 - a.t_s) + 1e-3


# -- (b) the camera --------------------------------------------------------------------------


def _decode_cycle(cache_path: Path, frames: int) -> np.ndarray:
    images = [
        cv2.imdecode(np.frombuffer((cache_path / f"frame-{j:05d}.jpg").read_bytes(), np.uint8), 1)
        for j in range(frames)
    ]
    return np.stack(images).astype(np.int16)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_camera_frames_arrive_per_trigger_with_the_right_content(
    world: WorldProcess, line: LineConfig
) -> None:
    banner = world.banner
    device = line.camera.device
    assert device.kind == "opencv"
    assert device.source == banner.camera.url and device.latency_s == banner.camera.latency_s

    # A client that connects and never reads: the world must drop its frames, not stall.
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    port = int(banner.camera.url.split(":")[2].split("/")[0])
    slow.connect(("127.0.0.1", port))
    slow.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: world\r\n\r\n")
    slow_port = slow.getsockname()[1]

    async def main() -> list[tuple[float, np.ndarray]]:
        camera = OpenCvCamera(device)
        await camera.open()
        try:
            return [((f := await camera.read()).t_s, f.image_bgr) for _ in range(40)]
        finally:
            await camera.close()

    try:
        got = asyncio.run(asyncio.wait_for(main(), 60))
        frames_log = world.truth_dir / "frames.jsonl"
        asyncio.run(
            wait_for(
                lambda: any(r.get("exposure_t_s", 0) >= got[-1][0] for r in read_jsonl(frames_log)),
                10,
                "the trigger log to catch up",
            )
        )
    finally:
        slow.close()
    records = read_jsonl(frames_log)
    triggers = [r for r in records if "trigger" in r]
    # client events (the world also logs its own stalls there, with no client)
    events = [r for r in records if "event" in r and "client" in r]
    slow_id = next(e["client"] for e in events if e["peer"].endswith(f":{slow_port}"))
    ours = {e["client"] for e in events if e["event"] == "connected" and e["client"] != slow_id}

    # Each frame is exactly one frame of the cycle: identify it by its pixels.
    cycle = _decode_cycle(Path(banner.cache["path"]), banner.frames_per_cycle)
    identified = []
    for _, image in got:
        distances = np.abs(cycle - image.astype(np.int16)).mean(axis=(1, 2, 3))
        order = np.argsort(distances)
        # The same JPEG, decoded by FFmpeg (its own YUV to BGR) instead of libjpeg: a level or two
        # apart, against tens for any other frame of the cycle.
        assert distances[order[0]] < 4.0
        assert distances[order[1]] > 5 * distances[order[0]]
        identified.append(int(order[0]))
    # The first frame is the trigger whose exposure matches its stamp among those showing
    # that cycle frame (they are a whole cycle, 2 s, apart). From there the client got every
    # trigger the world sent it, in order, each showing cycle frame m mod F: frames arrive at
    # the trigger rate, and the only ones missing are those the world logged as dropped for
    # this client (a starved test process reads late) or lost in a world stall.
    sent_to_us = [r for r in triggers if ours & set(r.get("clients", []))]
    first_t_s = got[0][0]
    start = min(
        (i for i, r in enumerate(sent_to_us) if r["cycle_frame"] == identified[0]),
        key=lambda i: abs(sent_to_us[i]["exposure_t_s"] - first_t_s),
    )
    matched = sent_to_us[start : start + len(got)]
    assert [r["trigger"] % banner.frames_per_cycle for r in matched] == identified
    by_number = {r["trigger"]: r for r in triggers}
    for earlier, later in zip(matched, matched[1:], strict=False):
        for missing in range(earlier["trigger"] + 1, later["trigger"]):
            record = by_number[missing]
            assert "lost" in record or ours & set(record["dropped_for"]), record
    for (t_s, _), record in zip(got, matched, strict=True):
        # the driver's stamp (arrival minus the configured latency) is never before exposure
        assert t_s >= record["exposure_t_s"] - 1e-3
        assert abs(record["exposure_t_s"] - t_s) < banner.frames_per_cycle / FPS / 2
    assert any(slow_id in r.get("dropped_for", []) for r in triggers)

    # The cached frame is the scene rendered at that trigger's position with the cycle's fruit.
    from api.world import world_plan

    spec = world_plan(small_config()).render_spec()
    renderer, fruit = cycle_renderer(spec)
    frame = identified[0]
    render = renderer.render(spec.cycle.frame_position_cups(frame), fruit.cup)
    neighbour = renderer.render(spec.cycle.frame_position_cups(frame + 1), fruit.cup)
    assert _mad(got[0][1], render) < 6.0  # JPEG at quality 92, decoded by FFmpeg
    assert _mad(got[0][1], neighbour) > 3 * _mad(got[0][1], render)


# -- (c) the scales --------------------------------------------------------------------------


def test_each_lane_scale_reads_its_own_cups_weights(world: WorldProcess, line: LineConfig) -> None:
    assert isinstance(line.scale, SerialScaleSettings) and line.scale.kind == "mt-sics"
    resolution_g = world.banner.scale.resolution_g
    half_width = small_config().simulation.world.scale_plateau_half_width_cups

    async def main() -> tuple[list[tuple[float, PlcStatus]], list[list[tuple[float, Any]]]]:
        plc = open_plc(line)
        scales = create_scales(line.scale, LANES)
        await plc.open()
        for scale in scales:
            await scale.open()
        readings: list[list[tuple[float, Any]]] = [[] for _ in scales]
        statuses = [await timed_status(plc)]
        start = statuses[0][1].position_cups or 0.0
        stop = asyncio.Event()

        async def poll(lane: int) -> None:
            # The driver's reader thread stamps each reading where it arrives; the indicator
            # sampled it at most one request-reply before (a few ms on loopback, 30 ms allowed).
            while not stop.is_set():
                readings[lane] += [(r.t_s - 0.03, r) for r in scales[lane].take_readings()]
                await asyncio.sleep(0.02)

        pollers = [asyncio.create_task(poll(lane)) for lane in range(LANES)]
        try:
            while (statuses[-1][1].position_cups or 0.0) < start + 20:
                await asyncio.sleep(0.1)
                statuses.append(await timed_status(plc))
        finally:
            stop.set()
            await asyncio.gather(*pollers)
            for scale in scales:
                await scale.close()
            await plc.close()
        return statuses, readings

    statuses, readings = asyncio.run(asyncio.wait_for(main(), 60))
    # The belt position at any moment, from the PLC alone: the least-late status reply (the
    # one with the largest position - speed * stamp) is the reference, as the line does it.
    ref_t, ref = max(
        ((s.t_s, s) for _, s in statuses),
        key=lambda ts: (ts[1].position_cups or 0.0) - SPEED * ts[0],
    )
    assert ref.position_cups is not None

    def position(t_s: float) -> float:
        return ref.position_cups + SPEED * (t_s - ref_t)  # type: ignore[operator]

    cups = {(c["lane"], c["cup_index"]): c for c in read_jsonl(world.truth_dir / "cups.jsonl")}
    noise_g = world.banner.scale.noise_g
    for lane, lane_readings in enumerate(readings):
        assert len(lane_readings) > 20
        matched: set[int] = set()
        for sent_t_s, reading in lane_readings:
            # The indicator sampled somewhere in [stamp - 30 ms, stamp]: on the cell's cup axis, where?
            lo = position(sent_t_s) - OFFSET
            hi = position(reading.t_s) - OFFSET
            cup = math.floor(lo + 0.5)
            if math.floor(hi + 0.5) != cup:
                continue  # the request spanned two cups
            lo_d, hi_d = lo - cup, hi - cup
            truth = cups.get((lane, cup))
            if truth is None:
                continue  # not yet at the camera when the log was read
            if -half_width < lo_d and hi_d < half_width:
                # on the plateau: that cup's own weight, stable, exactly what the log says
                assert reading.stable, (lane, cup, lo_d, hi_d)
                assert reading.weight_g == pytest.approx(truth["plateau_weight_g"], abs=1e-6)
                assert abs(reading.weight_g - truth["weight_g"]) <= resolution_g + 5 * noise_g
                matched.add(cup)
            elif hi_d < -half_width or lo_d > half_width:
                assert not reading.stable, (lane, cup, lo_d, hi_d)  # between two cups
        assert len(matched) >= 8, f"lane {lane}: matched cups {sorted(matched)}"


# -- (d) decisions through the real driver ---------------------------------------------------


def test_decisions_written_through_modbus_drop_at_their_outlets(
    world: WorldProcess, line: LineConfig
) -> None:
    drops_path = world.truth_dir / "drops.jsonl"

    async def main() -> set[tuple[int, int, int]]:
        plc = open_plc(line)
        await plc.open()
        beating = asyncio.Event()

        async def beat() -> None:
            while True:
                await plc.heartbeat()
                beating.set()
                await asyncio.sleep(0.2)

        beater = asyncio.create_task(beat())
        try:
            await beating.wait()
            status = await plc.read_status()
            first = status.cup_counter + 3  # 3 cups before outlet 1 at 6: well ahead
            decisions = [
                OutletDecision(lane, first + i, 1 + (i + lane) % 5)
                for lane in range(LANES)
                for i in range(8)
            ]
            await plc.write_decisions(decisions)
            expected = {(d.lane, d.cup_index, d.outlet) for d in decisions}
            last = first + 7

            def settled() -> bool:
                return any(
                    d["cup_index"] == last and d["lane"] == LANES - 1
                    for d in read_jsonl(drops_path)
                )

            await wait_for(settled, 20, "the decided cups to leave the chain")
            return expected
        finally:
            beater.cancel()
            await asyncio.gather(beater, return_exceptions=True)
            await plc.close()

    expected = asyncio.run(asyncio.wait_for(main(), 40))
    cups = {c for _, c, _ in expected}
    got = {
        (d["lane"], d["cup_index"], d["outlet"])
        for d in read_jsonl(drops_path)
        if d["cup_index"] in cups
    }
    assert got == expected  # each decided cup dropped once, at its outlet


# -- the cold rooms --------------------------------------------------------------------------


def test_cold_rooms_answer_the_sensor_poller(world: WorldProcess, line: LineConfig) -> None:
    assert [s.name for s in line.sensors] == ["room-1", "room-2"]

    async def main() -> list[float | None]:
        poller, buses = build_sensor_poller(line.sensors)
        try:
            out = []
            for sensor in poller.sensors:
                health = await poller.poll_once(sensor)
                assert health.last_reading is not None, health.last_error
                out.append(health.last_reading.temperature_celsius)
            return out
        finally:
            buses.close()

    temperatures = asyncio.run(asyncio.wait_for(main(), 20))
    assert all(t is not None and 0.0 <= t <= 30.0 for t in temperatures)


# -- (e) shutdown ----------------------------------------------------------------------------


def test_sigterm_exits_zero_with_complete_logs(tmp_path: Path, cache_dir: Path) -> None:
    truth = tmp_path / "truth"
    with start_world(small_config(), truth, cache_dir=cache_dir, banner_timeout_s=120) as world:
        assert world.banner.cache["rendered"] is False  # the module's world left it cached
        # Lines reach the files while the world runs, not only at exit.
        asyncio.run(
            wait_for(
                lambda: (
                    len(read_jsonl(truth / "cups.jsonl")) >= 4 * LANES
                    and len(read_jsonl(truth / "drops.jsonl")) >= LANES
                ),
                20,
                "truth lines while running",
            )
        )
        code = world.stop()
    assert code == 0
    for name in ("cups.jsonl", "drops.jsonl", "frames.jsonl"):
        text = (truth / name).read_text(encoding="utf-8")
        assert text.endswith("\n")
        json_lines = [json.loads(line) for line in text.splitlines()]  # every line whole
        assert json_lines, name
    cups = read_jsonl(truth / "cups.jsonl")
    drops = read_jsonl(truth / "drops.jsonl")
    triggers = [r["trigger"] for r in read_jsonl(truth / "frames.jsonl") if "trigger" in r]
    last_cup = max(c["cup_index"] for c in cups)
    for lane in range(LANES):
        # every cup to the end, each once, per lane; and each of them out of the chain once
        assert sorted(c["cup_index"] for c in cups if c["lane"] == lane) == list(
            range(last_cup + 1)
        )
        dropped = sorted(d["cup_index"] for d in drops if d["lane"] == lane)
        assert dropped == list(range(len(dropped)))
        assert last_cup - 14 - 1 <= dropped[-1] <= last_cup - 14 + 1  # last outlet at 14
    assert triggers == list(range(1, len(triggers) + 1))
    assert abs(triggers[-1] * PITCH - last_cup) <= 1.5
