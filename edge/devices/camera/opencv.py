"""Anything ``cv2.VideoCapture`` opens: a USB/V4L2 device, an RTSP/HTTP stream, a GStreamer pipeline, a video file.

A reader thread keeps only the **newest** frame, so a slow consumer always gets the present, never a queue of
the past.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from edge.devices.camera.base import CameraContext, Frame, bgr_to_rgb
from edge.errors import CameraError, CameraTimeout

log = logging.getLogger(__name__)


#: ``backend`` names of the config -> OpenCV ``apiPreference``.
OPENCV_BACKENDS = {"any": cv2.CAP_ANY, "v4l2": cv2.CAP_V4L2, "gstreamer": cv2.CAP_GSTREAMER,
                   "ffmpeg": cv2.CAP_FFMPEG}


class OpenCVCamera(CameraContext):
    """Any ``cv2.VideoCapture`` source, read by a background thread that keeps only the newest frame.

    Args:
        source: device index, device path, URL, video file or GStreamer pipeline.
        resolution: ``(width, height)`` to ask the device for; ``None`` = its default.
        backend: ``"any"``, ``"v4l2"``, ``"gstreamer"`` or ``"ffmpeg"`` (OpenCV's apiPreference).
        clock: monotonic seconds, for :attr:`Frame.time`.

    :meth:`read` returns the newest frame not returned before (skipping older ones) or waits for one. When
    the capture stops delivering (device unplugged, stream dropped, end of a video file), frames already
    captured are still returned, then :meth:`read` raises :class:`CameraError`.
    """

    def __init__(self, source: int | str, *, resolution: tuple[int, int] | None = None, backend: str = "any",
                 clock: Callable[[], float] = time.monotonic):
        if backend not in OPENCV_BACKENDS:
            raise CameraError(f"unknown OpenCV backend {backend!r}: one of {', '.join(OPENCV_BACKENDS)}")
        self.source_spec = source
        self.resolution = resolution
        self.backend = backend
        self.source = f"opencv:{source}"
        self._clock = clock
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._latest: tuple[np.ndarray, float, int] | None = None
        self._returned = -1
        self._captured = 0
        self._error: CameraError | None = None

    @property
    def captured(self) -> int:
        """Frames the reader thread has taken from the source since :meth:`open`."""
        with self._cond:
            return self._captured

    def open(self) -> None:
        if self._thread is not None:
            return
        capture = cv2.VideoCapture(self.source_spec, OPENCV_BACKENDS[self.backend])
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"cannot open camera {self.source_spec!r} (backend {self.backend})")
        if self.resolution is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.resolution[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.resolution[1])
        with self._cond:
            self._latest, self._returned, self._captured, self._error = None, -1, 0, None
        self._stop.clear()
        self._thread = threading.Thread(target=self._reader, args=(capture,), name=f"camera-{self.source}",
                                        daemon=True)
        self._thread.start()
        log.info("opened %s", self.source)

    def _reader(self, capture: cv2.VideoCapture) -> None:
        """The reader thread: owns ``capture``, keeps the newest frame, releases the capture when done."""
        try:
            while not self._stop.is_set():
                ok, bgr = capture.read()
                now = self._clock()
                with self._cond:
                    if not ok or bgr is None:
                        self._error = CameraError(f"{self.source} stopped delivering frames "
                                                  f"(after {self._captured})")
                        self._cond.notify_all()
                        return
                    self._latest = (bgr, now, self._captured)
                    self._captured += 1
                    self._cond.notify_all()
        except cv2.error as err:
            with self._cond:
                self._error = CameraError(f"{self.source}: capture failed: {err}")
                self._cond.notify_all()
        finally:
            capture.release()

    def read(self, timeout: float) -> Frame:
        with self._cond:
            if self._thread is None:
                raise CameraError(f"{self.source} is not open")

            def ready() -> bool:
                fresh = self._latest is not None and self._latest[2] > self._returned
                return fresh or self._error is not None

            if not self._cond.wait_for(ready, timeout):
                raise CameraTimeout(f"{self.source}: no new frame within {timeout:g} s")
            if self._latest is None or self._latest[2] <= self._returned:
                raise CameraError(str(self._error))
            bgr, when, index = self._latest
            self._returned = index
        return Frame(bgr_to_rgb(bgr, self.source), when, index, self.source)

    def close(self, *, join_timeout: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(join_timeout)
        if thread.is_alive():  # a blocking read of a dead network stream: the thread ends (and releases) later
            log.warning("%s: the reader thread is still blocked in a read; leaving it to end", self.source)
