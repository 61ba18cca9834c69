"""The encoder-triggered camera's timing, on a fake clock: which frame, exposed when, sent when."""

from __future__ import annotations

from typing import Any

import pytest

from simulators.camera_server import BroadcastResult, TriggeredCamera, TriggerSchedule, mjpeg_part
from simulators.plc import PlcModel


class FakeClock:
    def __init__(self) -> None:
        self.t_s = 50.0

    def __call__(self) -> float:
        return self.t_s


class FakeServer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def broadcast(self, part: bytes) -> BroadcastResult:
        self.parts.append(part)
        return BroadcastResult([1], [2] if len(self.parts) % 3 == 0 else [])


def model(clock: FakeClock, speed: float = 8.0, pitch: float = 2 / 3) -> PlcModel:
    return PlcModel(
        1, {1: 6}, speed, clock, camera_trigger_pitch_cups=pitch, watchdog_timeout_s=1e6
    )


def test_schedule_gives_each_trigger_its_exact_exposure_time() -> None:
    clock = FakeClock()
    schedule = TriggerSchedule(model(clock))
    assert schedule.next_number == 1
    assert schedule.next_exposure_t_s() == pytest.approx(50.0 + 1 / 12)
    clock.t_s = 50.0 + 3.5 / 12  # 8 cups/s, a trigger every 2/3 cup: 12 per second
    taken = schedule.take(clock.t_s)
    assert [t.number for t in taken] == [1, 2, 3]
    assert [t.exposure_t_s for t in taken] == pytest.approx([50 + 1 / 12, 50 + 2 / 12, 50 + 3 / 12])
    assert [t.position_cups for t in taken] == pytest.approx([2 / 3, 4 / 3, 2.0])
    assert schedule.take(clock.t_s) == []  # each trigger once
    # taking "by" an earlier time (exposure + latency not yet come) holds the frame back
    clock.t_s = 50.0 + 4.01 / 12
    assert schedule.take(50.0 + 3.9 / 12) == []
    assert [t.number for t in schedule.take(clock.t_s)] == [4]


def test_a_started_camera_serves_only_triggers_from_then_on() -> None:
    clock = FakeClock()
    plc = model(clock)
    clock.t_s += 1.0  # 12 triggers before the camera is up
    assert TriggerSchedule(plc).next_number == 13


def test_stopped_belt_triggers_nothing_and_a_speed_change_moves_the_next_trigger() -> None:
    clock = FakeClock()
    plc = model(clock, speed=8.0, pitch=1.0)
    schedule = TriggerSchedule(plc)
    clock.t_s = 50.1  # position 0.8
    plc.stop()
    assert schedule.next_exposure_t_s() is None
    clock.t_s = 60.0
    assert schedule.take(clock.t_s) == []
    plc.start()
    plc.set_speed(2.0)  # 0.2 cup to go at 2 cups/s
    assert schedule.next_exposure_t_s() == pytest.approx(60.1)
    clock.t_s = 61.0  # position 2.8
    taken = schedule.take(clock.t_s)
    assert [(t.number, round(t.exposure_t_s, 9)) for t in taken] == [(1, 60.1), (2, 60.6)]


def test_camera_sends_frame_m_mod_cycle_after_the_latency_and_logs_it() -> None:
    clock = FakeClock()
    plc = model(clock)
    server = FakeServer()
    logged: list[dict[str, Any]] = []
    frames = 24
    camera = TriggeredCamera(
        plc,
        server,  # type: ignore[arg-type]
        lambda m: (m % frames, mjpeg_part(b"frame %d" % (m % frames))),
        latency_s=0.005,
        on_frame=logged.append,
        clock=clock,
    )
    clock.t_s = 50.0 + 1 / 12 + 0.004  # trigger 1 exposed, its latency not yet over
    camera.send_due()
    assert server.parts == []
    clock.t_s = 50.0 + 1 / 12 + 0.005
    camera.send_due()
    assert server.parts == [mjpeg_part(b"frame 1")]
    clock.t_s = 50.0 + 30 / 12 + 0.006
    camera.send_due()
    assert len(server.parts) == 9  # triggers 2..30, but at most 8 overdue ones are sent
    assert server.parts[-1] == mjpeg_part(b"frame 6")  # trigger 30 is frame 30 mod 24
    sent = [r for r in logged if "lost" not in r]
    lost = [r for r in logged if "lost" in r]
    assert [r["trigger"] for r in sent] == [1, *range(23, 31)]
    assert [r["trigger"] for r in lost] == list(range(2, 23))
    assert sent[0]["exposure_t_s"] == pytest.approx(50 + 1 / 12)
    assert sent[0]["sent_t_s"] == pytest.approx(50 + 1 / 12 + 0.005)
    assert sent[0]["cycle_frame"] == 1 and sent[0]["clients"] == [1]
    assert sent[2]["dropped_for"] == [2]  # the fake server's slow client
    assert camera.frames_sent == 9 and camera.frames_lost == 21


def test_mjpeg_part_is_a_multipart_jpeg_part() -> None:
    part = mjpeg_part(b"\xff\xd8abc\xff\xd9")
    assert part == (
        b"--gradelineframe\r\nContent-Type: image/jpeg\r\nContent-Length: 7\r\n\r\n"
        b"\xff\xd8abc\xff\xd9\r\n"
    )
