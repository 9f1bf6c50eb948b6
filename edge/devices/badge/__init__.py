"""Badge readers behind one small interface: ``read(timeout) -> BadgeRead | None`` and ``close()``; one module each.

==============  ==========================================================================================
``base``        :class:`BadgeReader` (the interface) and :class:`BadgeRead` (a badge id, or why the input was
                not one)
``keys``        Linux key codes to characters (US layout, as keyboard-wedge readers type), Enter ending a read
``keyboard``    a USB keyboard-wedge RFID / QR reader through the Linux input layer (evdev, grabbed
                exclusively so the console never sees the ids; evdev is imported when the reader opens)
``replay``      timed badge reads from a text file (tests, the demo)
==============  ==========================================================================================

Importing this package imports none of them. :func:`open_badge_reader` makes one from its config section.
"""

from __future__ import annotations

from typing import Any

from edge.devices.badge.base import BadgeRead, BadgeReader

__all__ = ["BadgeRead", "BadgeReader", "open_badge_reader"]


def open_badge_reader(section: Any) -> BadgeReader:
    """The reader of an ``[access.badge]`` section (:mod:`edge.config.access`), opened.

    Raises:
        BadgeReaderError: it cannot be opened. OptionalDependencyError: evdev is not installed.
    """
    if section.type == "evdev":
        from edge.devices.badge.keyboard import KeyboardWedgeReader

        return KeyboardWedgeReader(section.device, grab=section.grab, max_length=section.max_length)
    if section.type == "replay":
        from edge.devices.badge.replay import ReplayBadgeReader

        return ReplayBadgeReader(section.path)
    raise ValueError(f"unknown badge reader type {section.type!r}")
