"""Real camera sources through cv2.VideoCapture: a device index, a video file or an RTSP URL."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OpenCvCameraSettings(BaseModel):
    """A real camera or recording through cv2.VideoCapture."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["opencv"] = Field(description="cv2.VideoCapture source.")
    source: int | str = Field(description="Device index, video file path or RTSP URL.")
