"""The access control's two background threads: the badge reader and the access log's retention purge.

Both run until ``stop`` is set and never raise: a fault is logged and reported (``alarm``), and the work goes on.
:class:`edge.daemon.access.AccessControl` starts them (``start()``) and stops them (``close()``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from edge.errors import FacegateError
from edge.storage.access_log import AccessLog

log = logging.getLogger(__name__)

#: Seconds between two retention purges of the access log (the first runs at start).
PURGE_EVERY = 3600.0
#: Seconds the purge waits between two batches: the door's own writes and CPU come first.
PURGE_PAUSE = 0.05


def read_badges(open_reader: Callable[[], Any], put: Callable[[Any], None], alarm: Callable[[dict], None],
                stop: threading.Event) -> None:
    """Every read of the reader ``open_reader()`` opens goes to ``put``; a reader that fails is reported to
    ``alarm`` and opened again (1 s, 2 s, ... at most 30 s apart)."""
    backoff, reader = 1.0, None
    while not stop.is_set():
        try:
            if reader is None:
                reader = open_reader()
                backoff = 1.0
            read = reader.read(0.5)
            if read is not None:
                put(read)
        except FacegateError as err:
            log.error("badge reader: %s", err)
            alarm({"reason": "badge_reader_fault", "error": str(err)})
            if reader is not None:
                reader.close()
            reader = None
            stop.wait(backoff)
            backoff = min(2 * backoff, 30.0)
    if reader is not None:
        reader.close()


def purge_log(access_log: AccessLog, wall: Callable[[], datetime], retention_days: float,
              stop: threading.Event) -> None:
    """The records older than ``retention_days`` purged now and every :data:`PURGE_EVERY` seconds, in batches."""
    while not stop.is_set():
        try:
            access_log.purge(wall(), retention_days=retention_days, stop=stop, pause=PURGE_PAUSE)
        except FacegateError as err:
            log.error("access log purge: %s", err)
        stop.wait(PURGE_EVERY)
