"""OpenCvCamera against real video files written with cv2.VideoWriter, and capture doubles
for live-source failures a file cannot produce."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera import OpenCvCamera, OpenCvCameraSettings
from drivers.interfaces import Camera, DeviceDisconnected, DeviceError, EndOfStream

WIDTH, HEIGHT = 96, 64


def _write_video(path: Path, levels: list[int]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (WIDTH, HEIGHT))
    assert writer.isOpened(), "MJPG writer must be available in opencv-python-headless"
    for level in levels:
        image = np.full((HEIGHT, WIDTH, 3), level, np.uint8)
        image[:, : WIDTH // 2, 2] = 255 - level  # a two-tone frame, so colour order is checked too
        writer.write(image)
    writer.release()


def _settings(source: int | str) -> OpenCvCameraSettings:
    return OpenCvCameraSettings(kind="opencv", source=source, name="cam-test", read_timeout_s=5.0)


def test_reads_every_frame_of_a_file_then_end_of_stream(tmp_path: Path) -> None:
    levels = [20, 60, 100, 140, 180]
    video = tmp_path / "belt.avi"
    _write_video(video, levels)
    ticks = itertools.count(start=1000)
    camera = OpenCvCamera(_settings(str(video)), clock=lambda: float(next(ticks)))
    assert isinstance(camera, Camera)

    async def run() -> list:
        await camera.open()
        frames = []
        try:
            with pytest.raises(EndOfStream) as ended:
                while True:
                    frames.append(await camera.read())
            assert ended.value.device == "cam-test"
        finally:
            await camera.close()
        return frames

    frames = asyncio.run(run())
    assert [f.seq for f in frames] == list(range(len(levels)))
    assert [f.t_s for f in frames] == [1000.0 + i for i in range(len(levels))]
    for frame, level in zip(frames, levels, strict=True):
        assert frame.image_bgr.shape == (HEIGHT, WIDTH, 3)
        right = frame.image_bgr[:, WIDTH // 2 + 4 :].reshape(-1, 3).mean(axis=0)
        left_red = frame.image_bgr[:, : WIDTH // 2 - 4, 2].mean()
        # MJPG is lossy: a few levels of error, far less than the 40 between frames.
        assert np.allclose(right, level, atol=6)
        assert abs(left_red - (255 - level)) < 6


def test_the_exposure_time_is_the_arrival_stamp_less_the_latency(tmp_path: Path) -> None:
    video = tmp_path / "belt.avi"
    _write_video(video, [20, 60])
    ticks = itertools.count(start=1000)
    settings = OpenCvCameraSettings(kind="opencv", source=str(video), name="cam-test", latency_s=0.25)
    camera = OpenCvCamera(settings, clock=lambda: float(next(ticks)))

    async def run() -> list[float]:
        await camera.open()
        try:
            return [(await camera.read()).t_s for _ in range(2)]
        finally:
            await camera.close()

    assert asyncio.run(run()) == [999.75, 1000.75]


def test_construction_does_no_io(tmp_path: Path) -> None:
    calls: list[object] = []
    OpenCvCamera(_settings(str(tmp_path / "absent.avi")), capture_factory=lambda s: calls.append(s))
    assert calls == []


def test_missing_file_is_a_device_error(tmp_path: Path) -> None:
    camera = OpenCvCamera(_settings(str(tmp_path / "absent.avi")))
    with pytest.raises(DeviceError, match="absent.avi"):
        asyncio.run(camera.open())


def test_file_that_is_not_a_video_fails_to_open(tmp_path: Path) -> None:
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"this is not a video" * 10)
    camera = OpenCvCamera(_settings(str(junk)))
    with pytest.raises(DeviceError):
        asyncio.run(camera.open())


def test_read_before_open_is_an_error() -> None:
    camera = OpenCvCamera(_settings(0))
    with pytest.raises(DeviceError, match="before open"):
        asyncio.run(camera.read())


class _FakeCapture:
    """Stands in for a live device: delivers ``good`` frames, then the device fails."""

    def __init__(self, good: int, opened: bool = True) -> None:
        self.good = good
        self.opened = opened
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.good <= 0:
            return False, None
        self.good -= 1
        return True, np.zeros((4, 4), np.uint8)  # grey, as some USB cameras deliver

    def release(self) -> None:
        self.released = True


def test_live_device_failure_is_disconnected_not_end_of_stream() -> None:
    fake = _FakeCapture(good=2)
    camera = OpenCvCamera(_settings(0), capture_factory=lambda source: fake)

    async def run() -> None:
        await camera.open()
        first = await camera.read()
        assert first.image_bgr.shape == (4, 4, 3)  # grey converted to BGR
        await camera.read()
        with pytest.raises(DeviceDisconnected) as failed:
            await camera.read()
        assert not isinstance(failed.value, EndOfStream)
        await camera.close()

    asyncio.run(run())
    assert fake.released


def test_device_that_does_not_open_is_disconnected() -> None:
    fake = _FakeCapture(good=0, opened=False)
    camera = OpenCvCamera(_settings("rtsp://127.0.0.1:1/none"), capture_factory=lambda source: fake)
    with pytest.raises(DeviceDisconnected, match="could not open"):
        asyncio.run(camera.open())
    assert fake.released


def test_dev_path_is_a_live_device_not_a_file() -> None:
    fake = _FakeCapture(good=0)
    opened: list[object] = []

    def factory(source: int | str) -> _FakeCapture:
        opened.append(source)
        return fake

    camera = OpenCvCamera(_settings("/dev/video7"), capture_factory=factory)

    async def run() -> None:
        await camera.open()  # no "file does not exist" check for device paths
        with pytest.raises(DeviceDisconnected):
            await camera.read()
        await camera.close()

    asyncio.run(run())
    assert opened == ["/dev/video7"]


def test_a_stalled_stream_frees_the_camera_when_the_driver_gives_up_on_it() -> None:
    """An MJPEG stream that stops sending (the connection kept open): the read fails after the
    driver's read_timeout_s, and close() then returns promptly, because FFmpeg was given the
    same timeout instead of its own 30 s, which held the camera's thread, and with it close()
    and the process's exit."""
    from simulators.camera_server import MjpegStreamServer, mjpeg_part

    async def main() -> None:
        server = MjpegStreamServer()
        await server.start()
        ok, jpeg = cv2.imencode(".jpg", np.full((HEIGHT, WIDTH, 3), 90, np.uint8))
        assert ok
        sending = True

        async def feed() -> None:
            while sending:
                server.broadcast(mjpeg_part(jpeg.tobytes()))
                await asyncio.sleep(0.05)

        feeder = asyncio.create_task(feed())
        settings = OpenCvCameraSettings(kind="opencv", source=server.url("127.0.0.1"), name="cam-stall", read_timeout_s=1.0)
        camera = OpenCvCamera(settings)
        try:
            await camera.open()
            assert (await camera.read()).image_bgr.shape == (HEIGHT, WIDTH, 3)
            sending = False
            await feeder
            with pytest.raises(DeviceDisconnected):
                while True:  # frames already on their way may still arrive
                    await camera.read()
            await asyncio.wait_for(camera.close(), 10.0)  # FFmpeg's own timeout would hold it 30 s
        finally:
            sending = False
            await server.stop()

    asyncio.run(main())
