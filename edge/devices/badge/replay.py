"""Badge reads replayed from a text file, at the times it gives: for tests and the demo.

One read per line, ``SECONDS TEXT``: ``SECONDS`` after the reader was opened (a number, non-decreasing), ``TEXT``
what the reader sent (the rest of the line, stripped: it may be garbage on purpose, which then comes out as a read
with a problem, as from a real reader). Blank lines and lines starting with ``#`` are skipped::

    # the demo's badge+face door
    1.0  04A2B9C1
    6.5  04A2B9C1
    9.0  ??garbage??

After the last read :meth:`ReplayBadgeReader.read` returns ``None`` (waiting its timeout, as a quiet reader does).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge.devices.badge.base import BadgeRead, BadgeReader, badge_read
from edge.errors import BadgeReaderError


def parse_replay(text: str, name: str = "<replay>") -> list[tuple[float, str]]:
    """``(seconds, text)`` of each read of a replay file's ``text``.

    Raises:
        BadgeReaderError: a line that is not ``SECONDS TEXT``, or times going backwards (``name:line: ...``).
    """
    reads: list[tuple[float, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        head, _, rest = stripped.partition(" ")
        try:
            seconds = float(head)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds < 0 or not rest.strip():
            raise BadgeReaderError(f"{name}:{number}: not 'SECONDS TEXT' with SECONDS a number >= 0")
        if reads and seconds < reads[-1][0]:
            raise BadgeReaderError(f"{name}:{number}: {seconds:g} s is before the line above ({reads[-1][0]:g} s)")
        reads.append((seconds, rest.strip()))
    return reads


class ReplayBadgeReader(BadgeReader):
    """The reads of a replay file (see the module docstring), each returned once its time has come.

    Args:
        path: the file.
        clock: monotonic seconds; the times count from when the reader is made.
        wait: ``wait(seconds)`` sleeps (a closed reader stops waiting at once).

    Raises:
        BadgeReaderError: the file cannot be read or is malformed.
    """

    def __init__(self, path: str | os.PathLike, *, clock: Callable[[], float] = time.monotonic,
                 wait: Callable[[float], object] | None = None):
        self.path = Path(path)
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise BadgeReaderError(f"cannot read the badge replay {self.path}: {err}") from None
        self._reads = parse_replay(text, str(self.path))
        self._clock = clock
        self._closed = threading.Event()
        self._wait = wait or self._closed.wait
        self._start = clock()
        self._next = 0

    def read(self, timeout: float) -> BadgeRead | None:
        if self._closed.is_set():
            raise BadgeReaderError(f"the badge replay {self.path} is closed")
        now = self._clock()
        if self._next >= len(self._reads):
            self._wait(max(0.0, timeout))
            return None
        due = self._start + self._reads[self._next][0]
        if due > now:
            if due - now > timeout:
                self._wait(max(0.0, timeout))
                return None
            self._wait(due - now)
        seconds, text = self._reads[self._next]
        self._next += 1
        return badge_read(text, self._start + seconds)

    def close(self) -> None:
        self._closed.set()
