"""A Raspberry Pi camera module through picamera2 (imported only in ``open()``, so this module imports anywhere).

picamera2's ``"RGB888"`` format is, despite its name, **B, G, R** in memory (the libcamera/DRM names count from
the most significant byte of a little-endian word; the picamera2 manual lists "RGB888 - 24 bits per pixel,
ordered [B, G, R]"), so the channels are reversed here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.devices.camera.base import CameraContext, Frame
from edge.errors import CameraError, CameraTimeout

log = logging.getLogger(__name__)

PICAMERA2_MISSING = ("picamera2 is not installed: on a Raspberry Pi `sudo apt install python3-picamera2` and "
                     "create the venv with --system-site-packages")


class Picamera2Camera(CameraContext):
    """A Raspberry Pi camera module through picamera2.

    Args:
        resolution: ``(width, height)`` of the frames in pixels.
        camera_num: which camera (0 = the first).
        clock: monotonic seconds, for :attr:`Frame.time`.
    """

    def __init__(self, *, resolution: tuple[int, int] = (640, 480), camera_num: int = 0,
                 clock: Callable[[], float] = time.monotonic):
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.camera_num = camera_num
        self.source = f"picamera2:{camera_num}"
        self._clock = clock
        self._camera: Any = None
        self._job: Any = None
        self._index = 0

    def open(self) -> None:
        if self._camera is not None:
            return
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise CameraError(PICAMERA2_MISSING) from None
        try:
            camera = Picamera2(self.camera_num)
        except (RuntimeError, IndexError, OSError) as err:
            raise CameraError(f"{self.source}: cannot open the camera: {err}") from None
        try:
            # "RGB888" is B, G, R in memory (see the module docstring).
            config = camera.create_video_configuration(main={"size": self.resolution, "format": "RGB888"})
            camera.configure(config)
            camera.start()
        except Exception as err:  # libcamera raises plain RuntimeError/ValueError for bad modes and busy cameras
            camera.close()
            raise CameraError(f"{self.source}: cannot start the camera at {self.resolution}: {err}") from None
        self._camera, self._job, self._index = camera, None, 0
        log.info("opened %s at %dx%d", self.source, *self.resolution)

    def read(self, timeout: float) -> Frame:
        if self._camera is None:
            raise CameraError(f"{self.source} is not open")
        try:
            if self._job is None:  # a job that timed out is waited for again, not abandoned
                self._job = self._camera.capture_array("main", wait=False)
            array = self._camera.wait(self._job, timeout=timeout)
        except TimeoutError:
            raise CameraTimeout(f"{self.source}: no frame within {timeout:g} s") from None
        except Exception as err:
            self._job = None
            raise CameraError(f"{self.source}: capture failed: {err}") from None
        self._job = None
        image = np.ascontiguousarray(array[:, :, 2::-1])  # B, G, R(, X) -> R, G, B
        frame = Frame(image, self._clock(), self._index, self.source)
        self._index += 1
        return frame

    def close(self) -> None:
        camera, self._camera, self._job = self._camera, None, None
        if camera is None:
            return
        try:
            camera.stop()
            camera.close()
        except Exception as err:  # closing a camera that failed: nothing more to do than log it
            log.warning("%s: error while closing: %s", self.source, err)
