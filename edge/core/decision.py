"""When does the door open? Pure decision logic over per-frame recognitions, with no I/O and no clock.

A single frame can be wrong (motion blur, a half-turned head), so the door opens only when the *same*
person wins ``votes_needed`` of the last ``votes_window`` frames, all within ``window_seconds``, with a
face of at least ``min_face_px``. After an unlock that person is in ``cooldown_seconds`` (no second
unlock while they walk through). Unknown faces are reported at most once per
``unknown_report_interval_seconds``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Sighting:
    """One frame's verdict on its largest face: who (``None`` = not in the database), how far, how big, the
    face's ``(d,)`` encoding (for fusing the frames of one approach), and the frame itself with that face (for the
    presentation-attack checks of :mod:`edge.core.presentation`, which look only at frames that voted)."""

    time: float  # seconds, monotonic
    identity: str | None
    distance: float
    face_px: float
    encoding: np.ndarray | None = field(default=None, repr=False)
    frame: np.ndarray | None = field(default=None, repr=False)  # (H, W, 3) uint8 RGB
    face: Any = field(default=None, repr=False)  # its edge.core.detect.Face


@dataclass(frozen=True)
class Decision:
    """What to do after a frame: ``unlock`` names the person to let in; ``report_unknown`` asks for an event."""

    unlock: str | None = None
    report_unknown: bool = False
    distance: float | None = None


class DoorDecider:
    """Turns a stream of :class:`Sighting` s into :class:`Decision` s (see the module docstring)."""

    def __init__(self, *, votes_needed: int = 2, votes_window: int = 3, window_seconds: float = 2.0,
                 min_face_px: float = 80.0, cooldown_seconds: float = 10.0,
                 unknown_report_interval_seconds: float = 10.0):
        if not 1 <= votes_needed <= votes_window:
            raise ValueError(f"need 1 <= votes_needed ({votes_needed}) <= votes_window ({votes_window})")
        self.votes_needed = votes_needed
        self.votes_window = votes_window
        self.window_seconds = window_seconds
        self.min_face_px = min_face_px
        self.cooldown_seconds = cooldown_seconds
        self.unknown_interval = unknown_report_interval_seconds
        self._recent: deque[Sighting] = deque(maxlen=votes_window)
        self._last_unlock: dict[str, float] = {}
        self._last_unknown_report = float("-inf")

    def observe(self, sighting: Sighting, *, confirm: Callable[[list[Sighting]], bool] | None = None) -> Decision:
        """Take one frame's sighting and say what to do.

        ``confirm`` is asked about the winning frames before an unlock (the daemon fuses their encodings and
        matches once more); ``False`` unlocks nothing, starts no cooldown and keeps the frames.
        """
        if sighting.face_px < self.min_face_px:
            return Decision()  # too far away to decide anything: neither a vote nor an unknown
        self._recent.append(sighting)
        if sighting.identity is None:
            if sighting.time - self._last_unknown_report >= self.unknown_interval:
                self._last_unknown_report = sighting.time
                return Decision(report_unknown=True, distance=sighting.distance)
            return Decision()
        votes = [s for s in self._recent
                 if s.identity == sighting.identity and sighting.time - s.time <= self.window_seconds]
        if len(votes) < self.votes_needed:
            return Decision()
        last = self._last_unlock.get(sighting.identity, float("-inf"))
        if sighting.time - last < self.cooldown_seconds:
            return Decision()
        if confirm is not None and not confirm(votes):
            return Decision()
        self._last_unlock[sighting.identity] = sighting.time
        self._recent.clear()
        return Decision(unlock=sighting.identity, distance=max(v.distance for v in votes))

    def no_face(self, now: float) -> None:
        """A frame without a usable face: it counts as a frame that voted for nobody."""
        self._recent.append(Sighting(now, None, float("inf"), 0.0))
