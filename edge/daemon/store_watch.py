"""The store the door admits from, followed on disk: deleted or replaced under a running daemon, it is noticed.

SQLite keeps reading the file it opened, even after that file is deleted or another is renamed over its name
(an operator pushing a new store, a restore from backup). Without a check the door would go on admitting the
people of a file that no longer exists. :class:`FollowedStore` checks the path's identity (device and inode) at
most every ``interval`` seconds: a replaced file is opened in its place (and refused, admitting nobody, if it is
not a usable store of this model); a deleted one admits nobody until a store is back. Each change is reported
once, as a one-line reason for an ``alarm`` event.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import StoreError

log = logging.getLogger(__name__)


class FollowedStore:
    """An encoding store that follows its path (see the module docstring); a database for the face pipeline.

    Args:
        path: the store file.
        open_store: ``open_store(path, create)`` opens it (an :class:`edge.storage.store.EncodingStore` of the
            model in use); ``create`` is true only at start.
        embedding_size: values per encoding (for the empty matrix while no store is usable).
        interval: seconds between two looks at the path.
        clock: monotonic seconds.
    """

    def __init__(self, path: str | os.PathLike, *, open_store: Callable[[Path, bool], Any], embedding_size: int,
                 interval: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self._open = open_store
        self._empty: tuple[list[str], np.ndarray] = ([], np.empty((0, embedding_size), np.float32))
        self.interval = interval
        self._clock = clock
        self._store: Any = self._open(self.path, True)  # at start a bad store is an error, as before
        self._identity = self._stat()
        self._next_check = self._clock() + interval

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def check(self) -> str | None:
        """Look at the path (at most every ``interval`` s); a one-line reason when the store changed, else None."""
        now = self._clock()
        if now < self._next_check:
            return None
        self._next_check = now + self.interval
        identity = self._stat()
        if identity == self._identity:
            return None
        self._identity = identity
        self._close_current()
        if identity is None:
            return f"the store {self.path} was deleted: nobody is admitted until it is back"
        try:
            self._store = self._open(self.path, False)
        except StoreError as err:
            return f"the store {self.path} was replaced by a file that is not usable ({err}): nobody is admitted"
        people = len(self._store.people())
        return f"the store {self.path} was replaced: reloaded, {people} people enrolled"

    def _close_current(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def usable(self) -> bool:
        """Whether a store is open (``False``: deleted or replaced by an unusable file: nobody is admitted)."""
        return self._store is not None

    def matrix(self) -> tuple[list[str], np.ndarray]:
        """The open store's encodings, or none at all while no usable store is there."""
        return self._store.matrix() if self._store is not None else self._empty

    def site_calibration(self) -> dict | None:
        return self._store.site_calibration() if self._store is not None else None

    def close(self) -> None:
        """Close the open store; idempotent."""
        self._close_current()

    def __enter__(self) -> FollowedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
