"""Cameras behind one small interface: ``open()``, ``read(timeout) -> Frame``, ``close()``.

Every camera returns :class:`Frame` s whose ``image`` is ``(H, W, 3)`` uint8 **RGB** (never OpenCV's BGR),
rows top to bottom. Three kinds:

* :class:`Picamera2Camera`: a Raspberry Pi camera module through picamera2 (imported only in ``open()``, so
  this module imports on any machine). picamera2's ``"RGB888"`` format is, despite its name, **B, G, R** in
  memory (the libcamera/DRM names count from the most significant byte of a little-endian word; the
  picamera2 manual lists "RGB888 - 24 bits per pixel, ordered [B, G, R]"), so the channels are reversed
  here.
* :class:`OpenCVCamera`: anything ``cv2.VideoCapture`` opens (USB/V4L2 device, RTSP/HTTP stream, GStreamer
  pipeline, video file). A reader thread keeps only the **newest** frame, so a slow consumer always gets
  the present, never a queue of the past.
* :class:`ReplayCamera`: a folder of images or a video file, optionally paced at ``fps`` like a live camera.

:class:`ResilientCamera` wraps any of them for the daemon: a fault (an error, or no frame for
``read_timeout`` seconds) is reported, the camera closed and reopened after an exponential back-off, and
frames flow again when the camera is back; :meth:`ResilientCamera.read_latest` never raises for a fault.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from edge.errors import FacegateError, ImageError
from edge.images import load_image
from edge.photoset import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

PICAMERA2_MISSING = ("picamera2 is not installed: on a Raspberry Pi `sudo apt install python3-picamera2` and "
                     "create the venv with --system-site-packages")

#: ``backend`` names of the config -> OpenCV ``apiPreference``.
OPENCV_BACKENDS = {"any": cv2.CAP_ANY, "v4l2": cv2.CAP_V4L2, "gstreamer": cv2.CAP_GSTREAMER,
                   "ffmpeg": cv2.CAP_FFMPEG}


class CameraError(FacegateError):
    """The camera cannot be opened, stopped delivering frames, or delivered a frame that cannot be used."""


class CameraTimeout(CameraError):
    """No new frame arrived within the timeout."""


class FrameError(CameraError):
    """One frame could not be used (a corrupt replay image); the camera itself is fine and goes on."""


class EndOfStream(CameraError):
    """The source has no more frames and never will (a replay without ``loop``, the end of a video file)."""


@dataclass(frozen=True)
class Frame:
    """One camera frame.

    Attributes:
        image: ``(H, W, 3)`` uint8, channels **R, G, B**, rows top to bottom.
        time: when it was captured, in seconds of the camera's clock (``time.monotonic`` by default).
        index: the frame's number since the camera was opened, counting every frame the source produced,
            so a jump (3 -> 7) means frames were skipped to stay current.
        source: what it came from (``"opencv:0"``, ``"picamera2:0"``, an image file's path...).
    """

    image: np.ndarray
    time: float
    index: int
    source: str


@runtime_checkable
class Camera(Protocol):
    """What every camera does. ``close()`` may be called any number of times; a closed camera can be reopened."""

    def open(self) -> None: ...

    def read(self, timeout: float) -> Frame:
        """The next frame not returned before, waiting at most ``timeout`` seconds.

        Raises:
            CameraTimeout: no new frame in time. CameraError: the camera failed. EndOfStream: no more frames.
        """
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Camera: ...

    def __exit__(self, *exc_info: object) -> None: ...


class _ContextManager:
    """``with camera:`` opens it and closes it."""

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _bgr_to_rgb(bgr: np.ndarray, source: str) -> np.ndarray:
    """A camera's BGR (or grey / BGRA) uint8 frame as a new C-contiguous RGB array."""
    try:
        return load_image(bgr, array_order="BGR")
    except ImageError as err:
        raise FrameError(f"{source}: unusable frame: {err}") from None


# -- picamera2 -----------------------------------------------------------------------------------------------------


class Picamera2Camera(_ContextManager):
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


# -- OpenCV --------------------------------------------------------------------------------------------------------


class OpenCVCamera(_ContextManager):
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
        return Frame(_bgr_to_rgb(bgr, self.source), when, index, self.source)

    def close(self, *, join_timeout: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(join_timeout)
        if thread.is_alive():  # a blocking read of a dead network stream: the thread ends (and releases) later
            log.warning("%s: the reader thread is still blocked in a read; leaving it to end", self.source)


# -- replay --------------------------------------------------------------------------------------------------------


class ReplayCamera(_ContextManager):
    """Recorded frames: every image under a folder (sorted by path) or a video file.

    Args:
        path: a folder (images in it and its sub-folders, in path order) or a video file.
        fps: pace like a live camera at this rate: frame ``i`` is due ``i / fps`` s after :meth:`open`, a read
            returns the newest due frame not returned yet (skipping frames a slow reader missed) or waits
            for the next. ``0``: every frame in order, as fast as they are read.
        loop: start again at the first frame after the last; without it the end raises :class:`EndOfStream`.
        clock, sleep: monotonic seconds and the way to wait (injectable for tests).

    An image file that cannot be decoded raises :class:`FrameError` for that frame; the next read goes on
    with the next file.
    """

    def __init__(self, path: str | Path, *, fps: float = 0.0, loop: bool = False,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if fps < 0:
            raise CameraError(f"replay fps must be 0 or more, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.loop = loop
        self.source = f"replay:{self.path}"
        self._clock, self._sleep = clock, sleep
        self._files: list[Path] | None = None
        self._video: cv2.VideoCapture | None = None
        self._opened = False
        self._start = 0.0
        self._next = 0  # index of the next frame to return
        self._position = 0  # video: the number, within the current pass, of the frame the capture reads next
        self._offset = 0  # video: the index of the current pass's first frame (looping)

    def open(self) -> None:
        if self._opened:
            return
        if self.path.is_dir():
            files = sorted(p for p in self.path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise CameraError(f"replay folder {self.path} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            self._files = files
        elif self.path.is_file():
            self._video = self._open_video()
        else:
            raise CameraError(f"replay source {self.path} does not exist")
        self._opened, self._next, self._position, self._offset = True, 0, 0, 0
        self._start = self._clock()

    def _open_video(self) -> cv2.VideoCapture:
        video = cv2.VideoCapture(str(self.path))
        if not video.isOpened():
            video.release()
            raise CameraError(f"cannot open video file {self.path}")
        return video

    def read(self, timeout: float) -> Frame:
        if not self._opened:
            raise CameraError(f"{self.source} is not open")
        index = self._next
        if self.fps > 0:
            due = self._start + index / self.fps
            wait = due - self._clock()
            if wait > timeout:
                self._sleep(timeout)
                raise CameraTimeout(f"{self.source}: next frame due in {wait:.3f} s, more than {timeout:g} s")
            if wait > 0:
                self._sleep(wait)
            index = max(index, int((self._clock() - self._start) * self.fps))  # the newest frame due
        self._next = index + 1
        if self._files is not None:
            return self._read_file(index)
        return self._read_video(index)

    def _wrap(self, index: int, count: int) -> int:
        if index < count:
            return index
        if not self.loop:
            raise EndOfStream(f"{self.source}: end of the replay after {count} frames")
        return index % count

    def _read_file(self, index: int) -> Frame:
        path = self._files[self._wrap(index, len(self._files))]
        try:
            image = load_image(path)
        except ImageError as err:
            raise FrameError(f"replay frame {index}: {err}") from None
        return Frame(image, self._clock(), index, str(path))

    def _read_video(self, index: int) -> Frame:
        while True:
            target = index - self._offset  # the frame's number within the current pass over the file
            while self._position < target and self._video.grab():  # skipped frames are not converted
                self._position += 1
            if self._position == target:
                ok, bgr = self._video.read()
                if ok:
                    self._position += 1
                    return Frame(_bgr_to_rgb(bgr, self.source), self._clock(), index, f"{self.source}#{index}")
            # the end of the file: self._position frames were in it
            if not self.loop or self._position == 0:
                raise EndOfStream(f"{self.source}: end of the video after {self._offset + self._position} frames")
            self._video.release()
            self._video = self._open_video()
            self._offset, self._position = self._offset + self._position, 0

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
        self._video, self._files, self._opened = None, None, False


# -- factory and resilience --------------------------------------------------------------------------------------


def open_camera(section: Any) -> Camera:
    """The camera a config section describes (an :mod:`edge.config` camera model), not yet opened."""
    kind = getattr(section, "type", None)
    if kind == "picamera2":
        return Picamera2Camera(resolution=tuple(section.resolution), camera_num=section.camera_num)
    if kind == "opencv":
        resolution = tuple(section.resolution) if section.resolution is not None else None
        return OpenCVCamera(section.source, resolution=resolution, backend=section.backend)
    if kind == "replay":
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

