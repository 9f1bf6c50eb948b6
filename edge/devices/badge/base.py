"""What every badge reader is: :class:`BadgeReader` and the :class:`BadgeRead` it returns.

A reader hands over what one badge swipe gave: a badge id (:func:`edge.core.access.check_badge_id`: 1..128
printable ASCII characters), or, when the input was not one (a key the layout does not know, a read too long or cut
off, a space inside), a :class:`BadgeRead` whose ``problem`` says why, never an exception: garbage from a reader is
reported, the door stays shut, and reading goes on. A reader that stops working (unplugged, no permission) raises
:class:`edge.errors.BadgeReaderError`; the daemon reports it and opens it again.

**Adding a backend** (Wiegand on GPIO, OSDP over RS-485): a module here with a class deriving from
:class:`BadgeReader`, its hardware library imported inside ``__init__`` or ``read`` (never at import time), whose
``read(timeout)`` waits at most ``timeout`` seconds and returns :func:`badge_read` of the id it decoded (Wiegand:
the 26/34/37-bit frame checked for parity, the card number as decimal text; OSDP: the ``osdp_RAW`` card data of a
secure-channel session, as hex), ``None`` when nothing came, and whose ``close()`` may be called more than once.
Then a config type for it in :mod:`edge.config.access` (a section class with its settings, added to the
``BadgeSection`` union) and a branch in :func:`edge.devices.badge.open_badge_reader`. Nothing else changes: the
daemon reads every reader the same way, from a thread (:mod:`edge.daemon.access`).
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass

from edge.core.access import check_badge_id


@dataclass(frozen=True)
class BadgeRead:
    """One swipe: ``badge`` (the checked id) or ``problem`` (why the input was not an id), at monotonic ``time``."""

    time: float
    badge: str | None = None
    problem: str | None = None


def badge_read(text: str, now: float | None = None) -> BadgeRead:
    """``text`` as a :class:`BadgeRead`: the checked id, or the problem (without echoing more than a few characters:
    a garbled read may still be most of someone's badge id)."""
    when = time.monotonic() if now is None else now
    try:
        return BadgeRead(when, badge=check_badge_id(text))
    except ValueError:
        return BadgeRead(when, problem=f"not a badge id ({len(text)} characters: 1..128 printable ASCII, no spaces)")


class BadgeReader(abc.ABC):
    """A badge reader (see the module docstring). Also a context manager that closes it."""

    @abc.abstractmethod
    def read(self, timeout: float) -> BadgeRead | None:
        """The next swipe, waiting at most ``timeout`` seconds; ``None`` if none came.

        Raises:
            BadgeReaderError: the reader stopped working (it may be opened again).
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the reader; safe to call more than once."""

    def __enter__(self) -> BadgeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
