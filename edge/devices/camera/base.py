"""What every camera is: the :class:`Camera` protocol and the :class:`Frame` it returns.

Every camera returns frames whose ``image`` is ``(H, W, 3)`` uint8 **RGB** (never OpenCV's BGR), rows top to
bottom. ``close()`` may be called any number of times; a closed camera can be reopened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from edge.core.images import load_image
from edge.errors import FrameError, ImageError

if TYPE_CHECKING:
    from typing_extensions import Self


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


class CameraContext:
    """``with camera:`` opens it and closes it (a base for cameras that define ``open`` and ``close``)."""

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def bgr_to_rgb(bgr: np.ndarray, source: str) -> np.ndarray:
    """A camera's BGR (or grey / BGRA) uint8 frame as a new C-contiguous RGB array."""
    try:
        return load_image(bgr, array_order="BGR")
    except ImageError as err:
        raise FrameError(f"{source}: unusable frame: {err}") from None
