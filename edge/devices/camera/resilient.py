"""The daemon's camera: any :class:`~edge.devices.camera.base.Camera` kept going through faults, and the factory
that makes a camera from its config section.

A fault (an error, or no frame for ``read_timeout`` seconds) is reported, the camera closed and reopened after an
exponential back-off, and frames flow again when the camera is back; :meth:`ResilientCamera.read_latest` never
raises for a fault. The camera classes are imported only when a config asks for them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from edge.devices.camera.base import Camera, Frame
from edge.errors import CameraError, CameraTimeout, EndOfStream, FrameError

log = logging.getLogger(__name__)


def open_camera(section: Any) -> Camera:
    """The camera a config section describes (an :mod:`edge.config` camera model), not yet opened."""
    kind = getattr(section, "type", None)
    if kind == "picamera2":
        from edge.devices.camera.picamera2 import Picamera2Camera

        return Picamera2Camera(resolution=tuple(section.resolution), camera_num=section.camera_num)
    if kind == "opencv":
        from edge.devices.camera.opencv import OpenCVCamera

        resolution = tuple(section.resolution) if section.resolution is not None else None
        return OpenCVCamera(section.source, resolution=resolution, backend=section.backend)
    if kind == "replay":
        from edge.devices.camera.replay import ReplayCamera

        return ReplayCamera(section.path, fps=section.fps, loop=section.loop)
    raise CameraError(f"unknown camera type {kind!r}: picamera2, opencv or replay")


class ResilientCamera:
    """Keeps a camera going: faults are reported and the camera reopened with exponential back-off.

    A fault is a :class:`CameraError` from ``open`` or ``read``, or no frame for ``read_timeout`` seconds. On a
    fault: ``on_fault(error)`` is called, :attr:`faults` counts it, the camera is closed, and it is reopened
    after ``retry_initial`` seconds, then twice that after each further fault, at most ``retry_max``; the
    delay starts again at ``retry_initial`` after a frame arrives. A :class:`FrameError` (one unusable frame)
    is reported and counted the same way, but the camera stays open.

    Args:
        camera: the camera to keep going (reopened in place, so any :class:`Camera`).
        read_timeout: seconds without a frame that make a fault.
        retry_initial, retry_max: the back-off, in seconds.
        on_fault: called with each fault's :class:`CameraError` (exceptions it raises are logged).
        clock, sleep: monotonic seconds and the way to wait (injectable for tests).
    """

    def __init__(self, camera: Camera, *, read_timeout: float = 2.0, retry_initial: float = 1.0,
                 retry_max: float = 30.0, on_fault: Callable[[CameraError], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if not 0 < retry_initial <= retry_max:
            raise CameraError(f"need 0 < retry_initial ({retry_initial}) <= retry_max ({retry_max})")
        self.camera = camera
        self.read_timeout = read_timeout
        self.retry_initial, self.retry_max = retry_initial, retry_max
        self.on_fault = on_fault
        self._clock, self._sleep = clock, sleep
        self._is_open = False
        self._closed = False
        self._delay = retry_initial
        self._next_attempt = float("-inf")
        self._last_frame = 0.0
        self.faults = 0
        self.last_error: CameraError | None = None

    @classmethod
    def from_config(cls, section: Any, *, on_fault: Callable[[CameraError], None] | None = None,
                    **options: Any) -> ResilientCamera:
        """The camera of an :mod:`edge.config` camera section, with its timeout and back-off settings."""
        return cls(open_camera(section), read_timeout=section.read_timeout_seconds,
                   retry_initial=section.retry_initial_seconds, retry_max=section.retry_max_seconds,
                   on_fault=on_fault, **options)

    def open(self) -> None:
        """Open the camera now if possible; a failure is a fault (reported, retried later), never raised."""
        self._closed = False
        self._try_open()

    def read_latest(self, timeout: float | None = None) -> Frame | None:
        """The newest frame, or ``None`` if none came within ``timeout`` seconds (default ``read_timeout``).

        Never raises for a camera fault; raises :class:`CameraError` once :meth:`close` was called, and
        :class:`EndOfStream` when the source has no more frames (a replay without ``loop``).
        """
        if self._closed:
            raise CameraError(f"{_name(self.camera)} is closed")
        timeout = self.read_timeout if timeout is None else timeout
        if not self._is_open:
            wait = self._next_attempt - self._clock()
            if wait > 0:
                self._sleep(min(wait, timeout))
                if self._clock() < self._next_attempt:
                    return None
            if not self._try_open():
                return None
        until_fault = self.read_timeout - (self._clock() - self._last_frame)
        try:
            frame = self.camera.read(max(0.0, min(timeout, until_fault)))
        except EndOfStream:
            raise
        except FrameError as err:
            log.warning("camera frame skipped: %s", err)
            self._report(err)
            return None
        except CameraTimeout as err:
            if self._clock() - self._last_frame >= self.read_timeout:
                self._fault(CameraTimeout(f"{_name(self.camera)}: no frame for {self.read_timeout:g} s ({err})"))
            return None
        except CameraError as err:
            self._fault(err)
            return None
        self._last_frame = self._clock()
        self._delay = self.retry_initial
        return frame

    def _try_open(self) -> bool:
        try:
            self.camera.open()
        except CameraError as err:
            self._fault(err)
            return False
        self._is_open = True
        self._last_frame = self._clock()
        return True

    def _report(self, error: CameraError) -> None:
        self.faults += 1
        self.last_error = error
        if self.on_fault is not None:
            try:
                self.on_fault(error)
            except Exception:  # reporting must never stop the camera
                log.exception("the camera fault callback failed")

    def _fault(self, error: CameraError) -> None:
        log.warning("camera fault %d: %s (reopening in %.1f s)", self.faults + 1, error, self._delay)
        self._report(error)
        self._close_camera()
        self._next_attempt = self._clock() + self._delay
        self._delay = min(self._delay * 2, self.retry_max)

    def _close_camera(self) -> None:
        self._is_open = False
        try:
            self.camera.close()
        except Exception:  # a broken camera may fail to close too; it is reopened from scratch anyway
            log.exception("closing %s failed", _name(self.camera))

    def close(self) -> None:
        """Close the camera; later :meth:`read_latest` calls raise. Idempotent."""
        self._closed = True
        self._close_camera()

    def __enter__(self) -> ResilientCamera:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _name(camera: Any) -> str:
    return getattr(camera, "source", type(camera).__name__)
