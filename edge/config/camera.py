"""``[camera]``: one of three camera types, chosen by ``type`` (a pydantic discriminated union)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from edge.config.types import ExistingPath, Resolution, Section


class CameraBase(Section):
    """Settings of every camera type."""

    read_timeout_seconds: float = Field(2.0, gt=0, le=60, description="A frame not arriving within this many "
                                                                      "seconds is a camera fault.")
    retry_initial_seconds: float = Field(1.0, gt=0, le=600, description="First wait before reopening a faulty "
                                                                        "camera; doubles after each failure.")
    retry_max_seconds: float = Field(30.0, gt=0, le=3600, validate_default=True,
                                     description="Longest wait between reopening attempts.")

    @field_validator("retry_max_seconds")
    @classmethod
    def _max_above_initial(cls, value: float, info: ValidationInfo) -> float:
        initial = info.data.get("retry_initial_seconds")
        if initial is not None and value < initial:
            raise ValueError(f"retry_max_seconds ({value:g}) must be at least retry_initial_seconds ({initial:g})")
        return value


class Picamera2Section(CameraBase):
    """A Raspberry Pi camera module through picamera2 (libcamera)."""

    type: Literal["picamera2"] = Field(..., description="Raspberry Pi camera via picamera2.")
    resolution: Resolution = Field((640, 480), description="[width, height] of the frames, in pixels.")
    camera_num: int = Field(0, ge=0, le=16, description="Which camera, for boards with several (0 = the first).")


class OpenCVSection(CameraBase):
    """A USB/V4L2 camera, an RTSP/HTTP stream, a GStreamer pipeline or a video file through cv2.VideoCapture."""

    type: Literal["opencv"] = Field(..., description="Any source cv2.VideoCapture opens.")
    source: Annotated[int, Field(ge=0)] | Annotated[str, Field(min_length=1)] = Field(
        ..., description="Device index (0 = /dev/video0), a device path, an rtsp:// or http:// URL, a video file "
                         "or a GStreamer pipeline (with backend = \"gstreamer\").")
    resolution: Resolution | None = Field(None, description="[width, height] to ask the device for; default: "
                                                            "the device's own.")
    backend: Literal["any", "v4l2", "gstreamer", "ffmpeg"] = Field(
        "any", description="OpenCV capture backend (apiPreference).")


class ReplaySection(CameraBase):
    """Recorded frames: a folder of images (sorted by name) or a video file. For tests and demos."""

    type: Literal["replay"] = Field(..., description="Replay images or a video file.")
    path: ExistingPath = Field(..., description="A folder of images (read in name order) or a video file.")
    fps: float = Field(0.0, ge=0, le=1000, description="Frames per second to pace the replay at; 0 = as fast as "
                                                       "they are read.")
    loop: bool = Field(False, description="Start again at the first frame after the last.")


#: The camera section: one of the types above, chosen by ``type``.
CameraSection = Annotated[Picamera2Section | OpenCVSection | ReplaySection, Field(discriminator="type")]
