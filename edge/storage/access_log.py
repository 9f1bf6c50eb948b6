"""The access log: every access decision a door made, in a local SQLite file, kept for a retention period.

Where: its own file, by default ``access-log.sqlite`` beside the encoding store (``[access] log_path``), apart
from the store (which is pushed to doors and replaced: the log must stay) and from the MQTT outbox (whose rows
leave once delivered: these stay for the retention period). Mode 0600, as are its ``-wal`` and ``-shm``: it says
who went in when.

One row per decision: ``time`` (UTC ISO-8601 to the millisecond, so that text order is time order), ``door``
(the device id), ``person`` (``NULL``: unknown), ``mode`` (``face`` or ``badge+face``), ``result`` (``granted`` or
``denied``), ``reason`` (a code of :mod:`edge.core.access`), ``distance`` and ``threshold`` (the face comparison,
if there was one), ``badge`` (the badge's fingerprint, :func:`edge.storage.access_data.badge_fingerprint`, never the
id itself) and ``event_id`` (the MQTT event that reported it, if any). No face images.

Durability: WAL journal with ``synchronous=FULL``: each decision is one transaction, fsynced before
:meth:`AccessLog.record` returns, so a record survives a power cut as well as a killed process (the audit trail of a
door that opened must not lose the opening; a door decides a few times a minute, so the fsync costs nothing that
matters). The retention purge deletes old rows in small batches (:meth:`AccessLog.purge_batch`, default 200 rows,
a few milliseconds each) with ``synchronous=NORMAL`` (a purge lost to a power cut is merely done again), so a
writer never waits for more than one batch.

A write that fails (a full disk) never raises to the door: :meth:`record` returns ``False`` and counts it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

from edge.errors import AccessLogError

log = logging.getLogger(__name__)

LOG_FORMAT = "facegate-access-log"
LOG_VERSION = "1"
#: Default retention of the access log, in days.
DEFAULT_RETENTION_DAYS = 30
#: Rows deleted per purge transaction (about 2 ms on a Raspberry Pi class CPU: a writer waits no longer).
PURGE_BATCH = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS access_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access_log (
    id        INTEGER PRIMARY KEY,
    time      TEXT NOT NULL,
    door      TEXT NOT NULL,
    person    TEXT,
    mode      TEXT NOT NULL,
    result    TEXT NOT NULL CHECK (result IN ('granted', 'denied')),
    reason    TEXT NOT NULL,
    distance  REAL,
    threshold REAL,
    badge     TEXT,
    event_id  TEXT
);
CREATE INDEX IF NOT EXISTS access_log_by_time ON access_log(time);
CREATE INDEX IF NOT EXISTS access_log_by_person ON access_log(person, time);
"""
_COLUMNS = ("time", "door", "person", "mode", "result", "reason", "distance", "threshold", "badge", "event_id")


def utc_text(when: datetime) -> str:
    """An aware time as the log writes it: UTC, ISO-8601 to the millisecond (``2025-01-31T08:15:00.123+00:00``)."""
    if when.tzinfo is None:
        raise ValueError(f"{when.isoformat()} has no time zone")
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class AccessRecord:
    """One decision (see the module docstring). ``time`` is UTC ISO-8601 (:func:`utc_text`)."""

    time: str
    door: str
    person: str | None
    mode: str
    result: str
    reason: str
    distance: float | None = None
    threshold: float | None = None
    badge: str | None = None
    event_id: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class AccessLog:
    """The access log file (see the module docstring). Thread-safe: one connection behind a lock.

    Args:
        path: the SQLite file.
        create: create it (and its folder, mode 0600) if missing; ``False``: a missing file is an error (readers).
        timeout: seconds a write waits for another process's lock.

    Raises:
        AccessLogError: the file cannot be created or opened, or is not an access log.
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True, timeout: float = 5.0):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.write_errors = 0
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
                self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                             check_same_thread=False)
            else:
                self._conn = sqlite3.connect(f"file:{quote(str(self.path))}?mode=rw", uri=True, timeout=timeout,
                                             isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as err:
            raise AccessLogError(f"cannot open the access log {self.path}: {err}") from None
        try:
            self._open(create)
        except sqlite3.Error as err:
            self._conn.close()
            raise AccessLogError(f"{self.path} is not a usable access log: {err}") from None
        except AccessLogError:
            self._conn.close()
            raise
        self._closed = False

    def _open(self, create: bool) -> None:
        conn = self._conn
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not create and "access_log" not in tables:
            raise AccessLogError(f"{self.path} is not an access log (no access_log table)")
        if tables and "access_meta" not in tables:
            raise AccessLogError(f"{self.path} is not an access log (it is another SQLite file): left untouched")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        if create:
            with self._transaction() as c:
                for statement in _SCHEMA.split(";"):  # not executescript: it would commit the transaction
                    if statement.strip():
                        c.execute(statement)
                c.execute("INSERT OR IGNORE INTO access_meta (key, value) VALUES ('format', ?), ('version', ?)",
                          (LOG_FORMAT, LOG_VERSION))
        meta = dict(conn.execute("SELECT key, value FROM access_meta"))
        if meta.get("format") != LOG_FORMAT or meta.get("version") != LOG_VERSION:
            raise AccessLogError(f"{self.path} is not a facegate access log of version {LOG_VERSION} "
                                 f"(format {meta.get('format')!r}, version {meta.get('version')!r})")
        if create:
            os.chmod(self.path, 0o600)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            raise

    # -- writing ---------------------------------------------------------------------------------------------

    def record(self, record: AccessRecord) -> bool:
        """Write one decision (fsynced before it returns). Never raises on a storage error: returns ``False``,
        logs it and counts it in :attr:`write_errors`."""
        values = tuple(getattr(record, c) for c in _COLUMNS)
        with self._lock:
            if self._closed:
                log.error("access log %s is closed: a %s decision for %s was not written", self.path,
                          record.result, record.person or "an unknown person")
                self.write_errors += 1
                return False
            try:
                with self._transaction() as conn:
                    conn.execute(f"INSERT INTO access_log ({', '.join(_COLUMNS)}) VALUES "
                                 f"({', '.join('?' * len(_COLUMNS))})", values)
            except sqlite3.Error as err:
                self.write_errors += 1
                log.error("access log %s: a decision could not be written (%s): %s", self.path, err, record)
                return False
        return True

    def purge_batch(self, before: datetime, *, limit: int = PURGE_BATCH) -> int:
        """Delete up to ``limit`` of the oldest rows older than ``before`` (aware); returns how many went."""
        cutoff = utc_text(before)
        with self._lock:
            self._check_open()
            self._conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with self._transaction() as conn:
                    cur = conn.execute("DELETE FROM access_log WHERE id IN (SELECT id FROM access_log WHERE time < ? "
                                       "ORDER BY time LIMIT ?)", (cutoff, int(limit)))
                return cur.rowcount
            except sqlite3.Error as err:
                log.error("access log %s: purge failed (%s); it is tried again later", self.path, err)
                return 0
            finally:
                self._conn.execute("PRAGMA synchronous=FULL")

    def purge(self, now: datetime, *, retention_days: float = DEFAULT_RETENTION_DAYS, limit: int = PURGE_BATCH,
              stop: threading.Event | None = None, pause: float = 0.0) -> int:
        """Delete every row older than ``retention_days`` before ``now``, one batch at a time, waiting ``pause``
        seconds between batches (the lock is free then); ``stop`` ends it early. Returns how many rows went."""
        before = now - timedelta(days=retention_days)
        total = 0
        while stop is None or not stop.is_set():
            count = self.purge_batch(before, limit=limit)
            total += count
            if count < limit:
                break
            if pause > 0 and stop is not None:
                stop.wait(pause)
        if total:
            log.info("access log %s: %d record(s) older than %g days purged", self.path, total, retention_days)
        return total

    # -- reading ---------------------------------------------------------------------------------------------

    def query(self, *, person: str | None = None, since: datetime | None = None, until: datetime | None = None,
              result: str | None = None, reason: str | None = None, door: str | None = None,
              limit: int | None = None, newest_first: bool = False) -> list[AccessRecord]:
        """The records matching every filter given, oldest first (``newest_first``: the newest first).

        ``person`` matches the stored name exactly, or ``""`` for the unknown; ``since`` is inclusive, ``until``
        exclusive (both aware); ``limit`` keeps that many (from the side ``newest_first`` says).
        """
        where, args = [], []
        if person is not None:
            where.append("person IS NULL" if person == "" else "person = ?")
            args += [] if person == "" else [person]
        for column, op, value in (("time", ">=", since), ("time", "<", until)):
            if value is not None:
                where.append(f"{column} {op} ?")
                args.append(utc_text(value))
        for column, text in (("result", result), ("reason", reason), ("door", door)):
            if text is not None:
                where.append(f"{column} = ?")
                args.append(text)
        sql = (f"SELECT {', '.join(_COLUMNS)} FROM access_log" + (f" WHERE {' AND '.join(where)}" if where else "")
               + f" ORDER BY time {'DESC' if newest_first else 'ASC'}, id {'DESC' if newest_first else 'ASC'}")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            self._check_open()
            try:
                rows = self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as err:
                raise AccessLogError(f"cannot read the access log {self.path}: {err}") from None
        return [AccessRecord(*row) for row in rows]

    def __len__(self) -> int:
        with self._lock:
            self._check_open()
            return int(self._conn.execute("SELECT COUNT(*) FROM access_log").fetchone()[0])

    # -- lifetime --------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise AccessLogError(f"the access log {self.path} is closed")

    def close(self) -> None:
        """Close the file; idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> AccessLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
