"""A minimal progress display for long work: a live bar on a terminal, a few plain lines in logs."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts work done out of ``total`` and shows it on ``stream`` (standard error by default).

    On a terminal the line is redrawn in place; otherwise a line is written at every quarter, so CI logs
    stay short. Use as a context manager, calling :meth:`advance` (it is also a plain callable).
    """

    def __init__(self, total: int, label: str, *, stream: TextIO | None = None, enabled: bool = True):
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.done = 0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._next_quarter = 1
        self._start = time.monotonic()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def __call__(self, n: int = 1) -> None:
        self.advance(n)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled or self.total == 0:
            return
        elapsed = time.monotonic() - self._start
        if self._tty:
            width = 30
            filled = int(width * min(self.done, self.total) / self.total)
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                              f"{self.done}/{self.total} {elapsed:5.1f}s")
            self.stream.flush()
        elif self.done * 4 >= self._next_quarter * self.total:
            self._next_quarter = self.done * 4 // self.total + 1
            self.stream.write(f"{self.label}: {self.done}/{self.total} ({elapsed:.1f}s)\n")
            self.stream.flush()
