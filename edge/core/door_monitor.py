"""Door alarms (forced, held open) from samples of the relay and the door contact: pure logic, no clock, no I/O."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class DoorMonitor:
    """Door alarms from samples of the relay and contact state; pure logic, no threads, no I/O.

    Call :meth:`update` often (every frame). Alarm reasons:

    * ``"door_forced"``: the door was seen opening while the relay was off and had not been seen on within
      ``grace_seconds`` (a contact that reports late, a sample that fell just after the pulse);
    * ``"door_held_open"``: the door has stayed open ``held_open_seconds`` since it was first seen open.

    Each is reported once per opening. A door already open at the first sample is not called forced (its
    opening was not seen), but its held-open time counts from that sample. ``door_open=None`` (no contact,
    unknown) forgets the current opening and reports nothing.

    Args:
        held_open_seconds: open longer than this is an alarm (> 0).
        grace_seconds: an opening this soon after the relay was last seen on is an entry, not forced (>= 0).
        clock: monotonic seconds, used when :meth:`update` gets no ``now``.
    """

    def __init__(self, *, held_open_seconds: float = 30.0, grace_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        if not held_open_seconds > 0:
            raise ValueError(f"held_open_seconds must be > 0, got {held_open_seconds!r}")
        if not grace_seconds >= 0:
            raise ValueError(f"grace_seconds must be >= 0, got {grace_seconds!r}")
        self.held_open_seconds = held_open_seconds
        self.grace_seconds = grace_seconds
        self.clock = clock
        self._last_relay_on = -math.inf
        self._was_open: bool | None = None
        self._opened_at: float | None = None
        self._held_reported = False

    def update(self, *, relay_on: bool, door_open: bool | None, now: float | None = None) -> list[str]:
        """Take one sample; return the alarm reasons it raises (usually ``[]``)."""
        now = self.clock() if now is None else now
        if relay_on:
            self._last_relay_on = now
        alarms: list[str] = []
        if door_open is None or not door_open:
            self._opened_at = None
            self._held_reported = False
        else:
            if self._opened_at is None:
                self._opened_at = now
                if self._was_open is False and now - self._last_relay_on > self.grace_seconds:
                    alarms.append("door_forced")
            if not self._held_reported and now - self._opened_at >= self.held_open_seconds:
                self._held_reported = True
                alarms.append("door_held_open")
        self._was_open = door_open
        for reason in alarms:
            log.warning("door alarm: %s", reason)
        return alarms
