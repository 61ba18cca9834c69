"""Real camera sources through cv2.VideoCapture: a device index, a video file or an RTSP URL.

Owns opening the source, reading frames off the event loop (one executor thread per camera,
because ``VideoCapture.read`` blocks), stamping them with a clock, and turning OpenCV's
silent failures (``read`` returning ``False``) into typed errors: ``EndOfStream`` when a
file is exhausted, ``DeviceError`` when a live source fails. Frames carry no belt position:
the runtime places them on the belt from the PLC's timing and camera trigger (see
``docs/plc-register-contract.md``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from drivers.interfaces import DeviceDisconnected, DeviceError, EndOfStream, Frame

__all__ = ["OpenCvCamera", "OpenCvCameraSettings"]


class OpenCvCameraSettings(BaseModel):
    """A real camera or recording through cv2.VideoCapture."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["opencv"] = Field(description="cv2.VideoCapture source.")
    source: int | str = Field(description="Device index or /dev path, video file path, or RTSP URL.")
    name: str = Field("camera-1", min_length=1, max_length=64, description="Camera name in logs and errors.")
    open_timeout_s: float = Field(
        10.0, gt=0, le=120, description="Longest wait for the source to open (RTSP handshakes can be slow)."
    )
    read_timeout_s: float = Field(
        5.0, gt=0, le=120, description="Longest wait for one frame before the camera counts as failed."
    )
    latency_s: float = Field(
        0.0, ge=0, le=2,
        description="Time from exposure to the frame's arrival (readout, transfer, decode); subtracted "
        "from the arrival stamp to give the exposure time.",
    )


Clock = Callable[[], float]
CaptureFactory = Callable[[int | str], "cv2.VideoCapture"]


def _is_stream_url(source: int | str) -> bool:
    return isinstance(source, str) and "://" in source


def _is_device_path(source: int | str) -> bool:
    return isinstance(source, str) and source.startswith("/dev/")


def _is_finite(source: int | str) -> bool:
    """A recording ends; a device (index or /dev path) or a network stream only fails."""
    return isinstance(source, str) and not _is_stream_url(source) and not _is_device_path(source)


def _default_capture(source: int | str, settings: OpenCvCameraSettings) -> cv2.VideoCapture:
    if _is_stream_url(source):
        # FFmpeg's own timeouts are 30 s. Bounded by the driver's, a stalled stream frees the
        # camera's thread when the driver gives up on a read, rather than holding it (and
        # close(), which releases the capture on that thread) for half a minute. Only FFmpeg
        # is given them: a backend that does not know a parameter refuses to open.
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, round(settings.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, round(settings.read_timeout_s * 1000),
        ]
        return cv2.VideoCapture(source, cv2.CAP_FFMPEG, params)
    return cv2.VideoCapture(source)


class OpenCvCamera:
    """``drivers.interfaces.Camera`` over ``cv2.VideoCapture``.

    Construction stores the settings only; ``open()`` does the I/O. ``clock`` stamps each
    frame's ``t_s`` (monotonic seconds by default); ``capture_factory`` lets tests hand in
    a capture double for failure modes a real file cannot produce.
    """

    def __init__(
        self,
        settings: OpenCvCameraSettings,
        *,
        clock: Clock = time.monotonic,
        capture_factory: CaptureFactory | None = None,
    ) -> None:
        self.name = settings.name
        self._settings = settings
        self._clock = clock
        self._capture_factory: CaptureFactory = capture_factory or (lambda source: _default_capture(source, settings))
        self._capture: cv2.VideoCapture | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._seq = 0

    @property
    def settings(self) -> OpenCvCameraSettings:
        return self._settings

    async def open(self) -> None:
        if self._capture is not None:
            return
        source = self._settings.source
        if _is_finite(source) and not Path(str(source)).is_file():
            raise DeviceError(self.name, f"video file {source!r} does not exist")
        # One thread per camera: VideoCapture is not safe to share between threads, and a
        # single worker keeps reads in order.
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"camera-{self.name}")
        loop = asyncio.get_running_loop()
        try:
            capture = await asyncio.wait_for(
                loop.run_in_executor(executor, self._capture_factory, source), self._settings.open_timeout_s
            )
        except TimeoutError as exc:
            executor.shutdown(wait=False, cancel_futures=True)
            raise DeviceDisconnected(self.name, f"source {source!r} did not open within "
                                     f"{self._settings.open_timeout_s:g} s") from exc
        except cv2.error as exc:
            executor.shutdown(wait=False, cancel_futures=True)
            raise DeviceError(self.name, f"OpenCV could not open {source!r}: {exc}") from exc
        if not capture.isOpened():
            capture.release()
            executor.shutdown(wait=False, cancel_futures=True)
            raise DeviceDisconnected(self.name, f"OpenCV could not open source {source!r}")
        self._capture = capture
        self._executor = executor
        self._seq = 0

    def _grab(self) -> tuple[bool, np.ndarray | None, float]:
        """One frame and its exposure time, stamped here on the camera's thread the moment the
        frame is decoded, so a busy event loop does not shift it."""
        assert self._capture is not None
        ok, image = self._capture.read()
        return bool(ok), image, self._clock() - self._settings.latency_s

    async def read(self) -> Frame:
        capture, executor = self._capture, self._executor
        if capture is None or executor is None:
            raise DeviceError(self.name, "read() before open()")
        loop = asyncio.get_running_loop()
        try:
            ok, image, t_s = await asyncio.wait_for(
                loop.run_in_executor(executor, self._grab), self._settings.read_timeout_s
            )
        except TimeoutError as exc:
            raise DeviceDisconnected(
                self.name, f"no frame within {self._settings.read_timeout_s:g} s"
            ) from exc
        except cv2.error as exc:
            raise DeviceError(self.name, f"OpenCV read failed: {exc}") from exc
        if not ok or image is None:
            if _is_finite(self._settings.source):
                raise EndOfStream(self.name, f"end of {self._settings.source!r} after {self._seq} frames")
            raise DeviceDisconnected(self.name, f"source {self._settings.source!r} delivered no frame")
        if image.ndim == 2:  # some devices deliver grey; the pipeline expects BGR
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        frame = Frame(image_bgr=image, t_s=t_s, seq=self._seq)
        self._seq += 1
        return frame

    async def close(self) -> None:
        capture, executor = self._capture, self._executor
        self._capture = None
        self._executor = None
        if executor is None:
            return
        if capture is not None:
            # Release on the camera's own thread, after any read still running there.
            await asyncio.get_running_loop().run_in_executor(executor, capture.release)
        executor.shutdown(wait=True)
