"""Recorded frames for tests and demos: a folder of images or a video file, optionally paced like a live camera."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import cv2

from edge.core.images import IMAGE_SUFFIXES, load_image
from edge.devices.camera.base import CameraContext, Frame, bgr_to_rgb
from edge.errors import CameraError, CameraTimeout, EndOfStream, FrameError, ImageError

log = logging.getLogger(__name__)


class ReplayCamera(CameraContext):
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
        files = self._files or []
        path = files[self._wrap(index, len(files))]
        try:
            image = load_image(path)
        except ImageError as err:
            raise FrameError(f"replay frame {index}: {err}") from None
        return Frame(image, self._clock(), index, str(path))

    def _read_video(self, index: int) -> Frame:
        if self._video is None:
            raise CameraError(f"{self.source} is not open")
        while True:
            target = index - self._offset  # the frame's number within the current pass over the file
            while self._position < target and self._video.grab():  # skipped frames are not converted
                self._position += 1
            if self._position == target:
                ok, bgr = self._video.read()
                if ok:
                    self._position += 1
                    return Frame(bgr_to_rgb(bgr, self.source), self._clock(), index, f"{self.source}#{index}")
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
