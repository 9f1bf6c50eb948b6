"""The durable outbox: every MQTT event is written here before it is published, and leaves only when acknowledged.

One SQLite file (WAL journal; mode 0600, as are its ``-wal`` and ``-shm`` companions) holds one row per pending
message: a sequence number (the order in which the messages were put), the event id, the topic, the payload
bytes, the QoS and the retain flag. A put is fsynced (``synchronous=FULL``: it survives a power cut); an
acknowledgement is not fsynced on its own (lost to a power cut, the event is merely sent twice). The publisher
puts a message, hands it to the broker, and calls :meth:`Outbox.ack` when the broker's PUBACK arrives; on a
restart whatever is still here is sent again. Delivery is therefore at-least-once: a receiver drops duplicates
by event id.

Bounds, so a long outage cannot fill the disk:

* ``max_events`` rows at most: putting one more drops the oldest, with a warning, counted in
  :attr:`OutboxCounters.dropped`.
* ``max_bytes`` (optional): the database file may not grow past it (SQLite ``max_page_count``); a write beyond
  it fails exactly like a full disk.

A write that fails (``database or disk is full``, an I/O error) never raises to the caller: it is logged,
counted in :attr:`OutboxCounters.write_errors`, and the message is kept in memory (at most
``max_memory_events``, oldest dropped and counted) and stays in :meth:`pending` until acknowledged; the next
successful write moves the kept messages to the file, in order. :attr:`Outbox.degraded` says whether any
pending message is held only in memory.

A file that cannot be opened at all when the outbox opens (a full or read-only disk) leaves the whole outbox in
memory (:attr:`Outbox.durable` is ``False``); :meth:`Outbox.reopen_file` tries the file again, at most every
:data:`RETRY_SECONDS`, and once it opens moves every pending message into it (same order, none lost, none twice)
and uses it from then on.

Thread-safe: one connection guarded by a lock (the publisher calls :meth:`ack` from the MQTT network thread).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.errors import OutboxError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq      INTEGER PRIMARY KEY,
    event_id TEXT    NOT NULL UNIQUE,
    topic    TEXT    NOT NULL,
    payload  BLOB    NOT NULL,
    qos      INTEGER NOT NULL,
    retain   INTEGER NOT NULL
)
"""
_WRITE_ERRORS = (sqlite3.Error, OSError)

#: Seconds between two attempts to open the file of an outbox that is in memory (:meth:`Outbox.reopen_file`).
RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class OutboxEntry:
    """One pending message. ``seq`` orders the messages (the order of :meth:`Outbox.put`)."""

    seq: int
    event_id: str
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(frozen=True)
class OutboxCounters:
    """Since the outbox was opened: messages dropped by a bound, failed writes, messages held only in memory."""

    dropped: int
    write_errors: int
    in_memory: int


class Outbox:
    """A bounded, durable FIFO of messages waiting for the broker's acknowledgement.

    Args:
        path: the SQLite file; created (mode 0600) if missing, its directory too.
        max_events: rows kept at most; the oldest are dropped beyond it (warning, counted).
        max_bytes: the largest the database file may grow to, or ``None`` for no limit besides the disk.
        max_memory_events: messages kept in memory at most while the file cannot be written.
        retry_seconds: while the outbox is in memory, how often :meth:`reopen_file` tries the file again
            (default :data:`RETRY_SECONDS`). clock: monotonic seconds.

    A file that cannot be created or opened as an outbox (a full or read-only disk, another kind of file) does
    not stop the door: the outbox then lives in memory (:attr:`durable` is ``False``, :attr:`open_error` says
    why) until :meth:`reopen_file` succeeds, and the caller reports it.

    Raises:
        OutboxError: bad bounds.
    """

    def __init__(self, path: str | os.PathLike, *, max_events: int = 100_000, max_bytes: int | None = None,
                 max_memory_events: int = 10_000, retry_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if max_events < 1 or max_memory_events < 1:
            raise OutboxError(f"outbox bounds must be >= 1, got max_events={max_events} "
                                f"max_memory_events={max_memory_events}")
        self.path = Path(path)
        self.max_events = max_events
        self.max_memory_events = max_memory_events
        self.retry_seconds = RETRY_SECONDS if retry_seconds is None else retry_seconds
        self._max_bytes = max_bytes
        self._clock = clock
        self._next_retry = clock() + self.retry_seconds
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, OutboxEntry] = OrderedDict()  # event id -> entry, in seq order
        self._unacked_rows: set[str] = set()  # acknowledged, but the DELETE failed: never hand out again
        self._dropped = 0
        self._write_errors = 0
        #: Why the file could not be used (``None``: it is in use). Events are then kept in an in-memory database
        #: until :meth:`reopen_file` opens the file: delivered while the process runs, lost if it dies.
        self.open_error: str | None = None
        try:
            self._conn = self._open_file(max_bytes)
        except OutboxError as err:
            self.open_error = str(err)
            log.error("%s: events are kept in memory until it can be opened (lost if the process dies)", err)
            self._conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            self._conn.execute(_SCHEMA)
        self._rows = self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        self._next_seq = self._conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox").fetchone()[0]
        self._closed = False
        if self._rows:
            log.info("outbox %s: %d message(s) pending from before", self.path, self._rows)

    def _open_file(self, max_bytes: int | None) -> sqlite3.Connection:
        """The outbox file (created 0600 if missing), its journal and schema; OutboxError if it cannot be used
        (a full or read-only disk, a file that is not an outbox)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            os.chmod(self.path, 0o600)  # SQLite gives -wal and -shm the database file's mode
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as err:
            raise OutboxError(f"cannot open the outbox {self.path}: {err}") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(_SCHEMA)
            if max_bytes is not None:
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                pages = conn.execute("PRAGMA page_count").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count={max(pages, max_bytes // page_size)}")
        except sqlite3.Error as err:
            conn.close()
            raise OutboxError(f"{self.path} is not a usable outbox: {err}") from None
        return conn

    @property
    def durable(self) -> bool:
        """Whether pending events are in the file (``False``: the file could not be opened yet)."""
        return self.open_error is None

    def reopen_file(self, *, force: bool = False) -> int | None:
        """While the outbox is in memory: try its file again (at most every ``retry_seconds``; ``force``: now).

        Once the file opens, every pending message moves into it in one transaction (same order; messages a
        previous process left in the file follow them) and the file is used from then on. Never raises.

        Returns:
            How many messages moved, when the outbox has just become durable; ``None`` otherwise (still in
            memory, not due yet, durable already, or closed).
        """
        with self._lock:
            if self._closed or self.open_error is None:
                return None
            now = self._clock()
            if not force and now < self._next_retry:
                return None
            self._next_retry = now + self.retry_seconds
            try:
                conn = self._open_file(self._max_bytes)
            except OutboxError as err:
                self.open_error = str(err)
                log.debug("outbox still in memory: %s", err)
                return None
            try:
                moved = self._move_into(conn)
            except _WRITE_ERRORS as err:
                conn.close()
                log.debug("outbox %s: could not move the pending events into it (%s); still in memory", self.path, err)
                return None
            memory, self._conn = self._conn, conn
            memory.close()
            self.open_error = None
            self._rows = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            self._enforce_max_events()
        log.warning("outbox %s: opened at last; %d pending event(s) moved from memory into it: events are durable "
                    "again", self.path, moved)
        return moved

    # -- writing ---------------------------------------------------------------------------------------------

    def put(self, event_id: str, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> bool:
        """Add a message (a second put of the same ``event_id`` is ignored). Never raises on a storage error.

        Returns:
            ``True`` if the message is in the file, ``False`` if it is held only in memory (write failed).
        """
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        with self._lock:
            self._check_open()
            if event_id in self._memory:
                return False
            entry = OutboxEntry(self._next_seq, event_id, topic, data, int(qos), bool(retain))
            self._next_seq += 1
            try:
                self._write_memory_to_file()
                self._insert(entry)
            except _WRITE_ERRORS as err:
                self._write_errors += 1
                # once per failure spell: the log may live on the very disk that is full
                (log.debug if self._memory else log.error)(
                    "outbox %s: write failed (%s); keeping events in memory until it works again (%d held)",
                    self.path, err, len(self._memory) + 1)
                self._keep_in_memory(entry)
                return False
            self._retry_failed_deletes()
            self._enforce_max_events()
            return True

    def ack(self, event_id: str) -> None:
        """The broker has the message: forget it. Unknown ids are ignored. Never raises on a storage error."""
        with self._lock:
            if self._closed:
                return
            if self._memory.pop(event_id, None) is not None:
                return
            try:
                self._delete(event_id)
            except _WRITE_ERRORS as err:
                self._write_errors += 1
                if self._has_row(event_id):
                    self._unacked_rows.add(event_id)
                log.error("outbox %s: could not delete acknowledged event %s (%s)", self.path, event_id, err)

    # -- reading ---------------------------------------------------------------------------------------------

    def pending(self, limit: int = 1000, *, after: int = 0) -> list[OutboxEntry]:
        """Up to ``limit`` pending messages with ``seq > after``, oldest first (file and memory together)."""
        with self._lock:
            self._check_open()
            try:
                rows = self._conn.execute(
                    "SELECT seq, event_id, topic, payload, qos, retain FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after, limit + len(self._unacked_rows))).fetchall()
            except sqlite3.Error as err:
                log.error("outbox %s: read failed (%s)", self.path, err)
                rows = []
            entries = [OutboxEntry(seq, eid, topic, bytes(payload), qos, bool(retain))
                       for seq, eid, topic, payload, qos, retain in rows if eid not in self._unacked_rows]
            entries += [e for e in self._memory.values() if e.seq > after]
        entries.sort(key=lambda e: e.seq)
        return entries[:limit]

    def __len__(self) -> int:
        """Pending messages, in the file and in memory."""
        with self._lock:
            return self._rows - len(self._unacked_rows) + len(self._memory)

    @property
    def counters(self) -> OutboxCounters:
        with self._lock:
            return OutboxCounters(self._dropped, self._write_errors, len(self._memory))

    @property
    def degraded(self) -> bool:
        """Whether some pending message is held only in memory (lost if the process dies now)."""
        with self._lock:
            return bool(self._memory)

    # -- lifetime --------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file (idempotent). Messages held only in memory are lost, with a warning."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._memory:
                log.warning("outbox %s closed with %d message(s) held only in memory: they are lost",
                            self.path, len(self._memory))
            self._conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals (called with the lock held) ---------------------------------------------------------------

    def _move_into(self, conn: sqlite3.Connection) -> int:
        """Copy the pending rows of the in-memory database into the file ``conn``, in one transaction; rows a
        previous process left there are renumbered after them, so every sequence number stays unique and the
        rows not handed out yet stay after those that were (the sender's cursor). Returns the rows copied."""
        rows = self._conn.execute(
            "SELECT seq, event_id, topic, payload, qos, retain FROM outbox ORDER BY seq").fetchall()
        conn.execute("BEGIN IMMEDIATE")
        try:
            low, high = conn.execute("SELECT MIN(seq), MAX(seq) FROM outbox").fetchone()
            if low is not None:  # every new number above every old one: no collision while they move
                conn.execute("UPDATE outbox SET seq = seq + ?", (max(self._next_seq, high + 1) - low,))
            conn.executemany("INSERT OR IGNORE INTO outbox (seq, event_id, topic, payload, qos, retain) "
                             "VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        # never a number handed out before (the sender's cursor may be past rows acknowledged meanwhile)
        self._next_seq = max(self._next_seq, conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox").fetchone()[0])
        return len(rows)

    def _check_open(self) -> None:
        if self._closed:
            raise OutboxError(f"the outbox {self.path} is closed")

    def _insert(self, entry: OutboxEntry) -> None:
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO outbox (seq, event_id, topic, payload, qos, retain) VALUES (?, ?, ?, ?, ?, ?)",
            (entry.seq, entry.event_id, entry.topic, entry.payload, entry.qos, int(entry.retain)))
        self._rows += cur.rowcount

    def _delete(self, event_id: str) -> None:
        # no fsync of its own (see the module docstring); the next put's fsync of the WAL covers it
        self._conn.execute("PRAGMA synchronous=NORMAL")
        try:
            cur = self._conn.execute("DELETE FROM outbox WHERE event_id = ?", (event_id,))
        finally:
            self._conn.execute("PRAGMA synchronous=FULL")
        self._rows -= cur.rowcount

    def _has_row(self, event_id: str) -> bool:
        try:
            return self._conn.execute("SELECT 1 FROM outbox WHERE event_id = ?", (event_id,)).fetchone() is not None
        except sqlite3.Error:
            return True  # cannot tell: hide it from pending() rather than send it again and again

    def _write_memory_to_file(self) -> None:
        """Move the messages held in memory to the file, oldest first; stops at the first failure (raises)."""
        moved = 0
        while self._memory:
            event_id, entry = next(iter(self._memory.items()))
            self._insert(entry)
            del self._memory[event_id]
            moved += 1
        if moved:
            log.info("outbox %s: writing works again; %d event(s) moved from memory to the file", self.path, moved)

    def _retry_failed_deletes(self) -> None:
        for event_id in list(self._unacked_rows):
            try:
                self._delete(event_id)
            except _WRITE_ERRORS:
                return
            self._unacked_rows.discard(event_id)

    def _keep_in_memory(self, entry: OutboxEntry) -> None:
        self._memory[entry.event_id] = entry
        if len(self._memory) > self.max_memory_events:
            dropped, _ = self._memory.popitem(last=False)
            self._dropped += 1
            log.warning("outbox %s: more than %d messages held in memory; dropped the oldest (%s)",
                        self.path, self.max_memory_events, dropped)

    def _enforce_max_events(self) -> None:
        excess = self._rows - self.max_events
        if excess <= 0:
            return
        try:
            oldest = self._conn.execute("SELECT seq, event_id FROM outbox ORDER BY seq LIMIT ?", (excess,)).fetchall()
            cur = self._conn.execute("DELETE FROM outbox WHERE seq <= ?", (oldest[-1][0],))
        except _WRITE_ERRORS as err:
            self._write_errors += 1
            log.error("outbox %s: could not drop the oldest messages (%s)", self.path, err)
            return
        self._unacked_rows.difference_update(event_id for _, event_id in oldest)
        self._rows -= cur.rowcount
        self._dropped += cur.rowcount
        log.warning("outbox %s: more than %d messages pending; dropped the %d oldest (%d dropped so far)",
                    self.path, self.max_events, cur.rowcount, self._dropped)
