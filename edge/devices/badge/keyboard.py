"""A USB keyboard-wedge badge reader (RFID or QR) through the Linux input layer, with evdev.

The reader is opened as its input device (``/dev/input/by-id/usb-...-event-kbd``: a stable name, unlike
``eventN``) and *grabbed* (``EVIOCGRAB``): while the daemon holds it, no console, login prompt or desktop receives
its keys, so badge ids are never typed into a shell. The key events are decoded by
:class:`edge.devices.badge.keys.KeyDecoder` (US layout, Enter ends a read; garbage becomes a read with a problem).

evdev (``pip install 'facegate[badge]'``; the C extension builds against the kernel headers, ``linux-libc-dev``) is
imported when the reader opens, never at import time: nothing else of facegate needs it. The service user needs
read access to the device (the ``input`` group, or a udev rule giving it to ``facegate``).
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable
from typing import Any

from edge.devices.badge.base import BadgeRead, BadgeReader
from edge.devices.badge.keys import KeyDecoder
from edge.errors import BadgeReaderError, OptionalDependencyError

log = logging.getLogger(__name__)


def _open_evdev(path: str) -> Any:
    try:
        import evdev
    except ImportError:
        raise OptionalDependencyError("the evdev badge reader needs the evdev package: pip install "
                                      "'facegate[badge]' (it builds against linux-libc-dev)") from None
    return evdev.InputDevice(path)


class KeyboardWedgeReader(BadgeReader):
    """A keyboard-wedge reader at ``device`` (an input event device path).

    Args:
        device: e.g. ``/dev/input/by-id/usb-Sycreader_RFID-event-kbd``.
        grab: take the device exclusively (default; see the module docstring).
        max_length: characters a badge id may have at most.
        open_device: ``open_device(path)`` -> an object with ``fd``, ``read()`` (an iterable of events with
            ``type``, ``code``, ``value``), ``grab()``, ``ungrab()`` and ``close()``: evdev's ``InputDevice``
            by default.
        clock: monotonic seconds.

    Raises:
        BadgeReaderError: the device cannot be opened or grabbed (missing, no permission, grabbed by another).
        OptionalDependencyError: evdev is not installed.
    """

    def __init__(self, device: str, *, grab: bool = True, max_length: int = 128,
                 open_device: Callable[[str], Any] | None = None, clock: Callable[[], float] = time.monotonic):
        self.device_path = str(device)
        self._clock = clock
        self._decoder = KeyDecoder(max_length=max_length)
        self._pending: list[BadgeRead] = []
        try:
            self._device: Any = (open_device or _open_evdev)(self.device_path)
        except OSError as err:
            raise BadgeReaderError(f"cannot open the badge reader {self.device_path}: {err.strerror or err}") from None
        self._grabbed = False
        if grab:
            try:
                self._device.grab()
                self._grabbed = True
            except OSError as err:
                self._device.close()
                raise BadgeReaderError(f"cannot grab the badge reader {self.device_path} (another program holds "
                                       f"it?): {err.strerror or err}") from None
        log.info("badge reader %s open%s", self.device_path, " (grabbed)" if grab else "")

    def read(self, timeout: float) -> BadgeRead | None:
        deadline = self._clock() + max(0.0, timeout)
        while True:
            if self._pending:
                return self._pending.pop(0)
            if self._device is None:
                raise BadgeReaderError(f"the badge reader {self.device_path} is closed")
            cut = self._decoder.flush(self._clock())
            if cut is not None:
                return cut
            remaining = deadline - self._clock()
            if remaining <= 0:
                return None
            try:
                ready, _, _ = select.select([self._device.fd], [], [], min(remaining, self._decoder.gap_seconds))
                if not ready:
                    continue
                events = list(self._device.read())
            except BlockingIOError:
                continue
            except OSError as err:  # ENODEV: unplugged
                raise BadgeReaderError(f"the badge reader {self.device_path} stopped: {err.strerror or err}") from None
            for event in events:
                found = self._decoder.feed(event.type, event.code, event.value, self._clock())
                if found is not None:
                    if found.problem:
                        log.warning("badge reader %s: %s", self.device_path, found.problem)
                    self._pending.append(found)

    def close(self) -> None:
        device, self._device = self._device, None
        if device is None:
            return
        try:
            if self._grabbed:
                device.ungrab()
        except OSError:
            pass  # unplugged: nothing left to release
        finally:
            device.close()
