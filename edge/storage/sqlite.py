"""The SQLite file under the encoding store: its schema, the checks made when it is opened, and transactions.

:class:`StoreFile` owns the one connection of an :class:`edge.storage.store.EncodingStore` and implements the
file-level safety properties listed in :mod:`edge.storage.store`:

* a new file is created with mode 0600 before SQLite touches it (its ``-wal`` and ``-shm`` get the same mode);
* WAL journal and ``synchronous=FULL``;
* opening checks that the file is SQLite, is a facegate store of the known schema version, passes
  ``PRAGMA quick_check`` and carries the expected model stamp, all before anything is written (the switch to
  WAL comes last), so a file that fails is left byte-for-byte untouched;
* a file of schema version 1 (before people had access data) is then migrated to version 2 in one transaction:
  the access data tables (:data:`ACCESS_SCHEMA`) are added, every person and encoding stays;
* every change is one ``BEGIN IMMEDIATE`` transaction, rolled back on any exception;
* SQLite's exceptions become one-line :class:`edge.errors.StoreError` messages (locked, corrupt, other).

It knows nothing of people or encodings beyond the schema and the BLOB a vector is stored as (its float32
little-endian bytes: :func:`to_blob`, :func:`from_blobs`): the store's queries run on the connection that
:meth:`StoreFile.read` and :meth:`StoreFile.write` hand out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge.errors import StoreError

log = logging.getLogger(__name__)

STORE_FORMAT = "facegate-encodings"
SCHEMA_VERSION = 2
#: Versions this facegate opens: a version 1 file (before access data) is migrated to 2 when it is opened.
_MIGRATED_FROM = "1"

_SQLITE_MAGIC = b"SQLite format 3\x00"
_META_TABLE = "facegate_meta"
_SCHEMA = f"""
CREATE TABLE {_META_TABLE} (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE people (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    added   TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE encodings (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    vector    BLOB NOT NULL,
    source    TEXT,
    quality   REAL,
    added     TEXT NOT NULL
);
CREATE INDEX encodings_by_person ON encodings(person_id);
"""
#: Schema version 2: people's access data (:mod:`edge.storage.access_data`). Dates are ISO ``YYYY-MM-DD`` in the
#: site's time zone, both inclusive; a person without a ``person_access`` row is enabled with no validity.
ACCESS_SCHEMA = """
CREATE TABLE person_access (
    person_id   INTEGER PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    valid_from  TEXT,
    valid_until TEXT,
    updated     TEXT NOT NULL
);
CREATE TABLE person_groups (
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    PRIMARY KEY (person_id, name)
) WITHOUT ROWID;
CREATE TABLE badges (
    badge_id  TEXT PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    added     TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX badges_by_person ON badges(person_id);
"""
# AUTOINCREMENT: an encoding id is never reused, so a stale id can never remove someone else's encoding.

#: The meta table's keys written when a file is created: the stamp, never changed afterwards.
_STAMP_KEYS = frozenset({"format", "schema_version", "model_sha256", "embedding_size", "created"})

# SQLite primary result codes (the low byte of an extended code)
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_NOTADB = 5, 6, 11, 26


def utc_now() -> str:
    """The current time as a UTC ISO-8601 string to the second (``2025-01-31T08:15:00+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def to_blob(vector: np.ndarray) -> bytes:
    """The ``vector`` column's BLOB of one (d,) encoding: its d float32 little-endian values (4 d bytes)."""
    return vector.astype("<f4", copy=False).tobytes()


def from_blobs(blobs: Sequence[bytes], size: int) -> np.ndarray:
    """(n, size) float32 from n BLOBs of :func:`to_blob`; read-only (it shares the joined bytes).

    Raises:
        ValueError: a BLOB is not ``4 * size`` bytes.
    """
    if any(len(b) != 4 * size for b in blobs):
        raise ValueError(f"a stored encoding is not {size} float32 values")
    array = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), size)
    return array.astype(np.float32, copy=False)  # a no-op on little-endian machines

class StoreFile:
    """One facegate store file, opened with every check, then read and written one transaction at a time.

    Args:
        path: the SQLite file.
        model_sha256: lower-case hex sha256 of the encoder model: a new file is stamped with it, an existing
            one must carry it.
        embedding_size: values per encoding, stamped and checked the same way.
        create: create a missing file (and its folder); with ``False`` a missing file is an error.
        timeout: seconds to wait for another process's lock.

    Raises:
        StoreError: see :class:`edge.storage.store.EncodingStore`.

    Thread-safe: :meth:`read` and :meth:`write` hold one re-entrant lock for their whole block.
    """

    def __init__(self, path: Path, *, model_sha256: str, embedding_size: int, create: bool, timeout: float):
        self._path = path
        self._model_sha256 = model_sha256
        self._embedding_size = embedding_size
        self._timeout = timeout
        self._lock = threading.RLock()
        self._generation = 0  # this connection's commits (PRAGMA data_version counts only the others')
        self._conn: sqlite3.Connection | None = None
        self._prepare_file(create)
        try:
            self._conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open {path}: {err}") from None
        try:
            with self._sqlite_errors("open", opening=True):
                self._open(create)
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    @property
    def generation(self) -> int:
        """How many write transactions this connection has ended (committed or not) since it was opened."""
        return self._generation

    # -- opening -------------------------------------------------------------------------------------------

    def _prepare_file(self, create: bool) -> None:
        """Create a missing file with mode 0600; refuse a file that is not SQLite before SQLite opens it."""
        path = self._path
        if not path.exists():
            if not create:
                raise StoreError(f"{path} does not exist (enrol someone first, or check the path)")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
                log.info("created store %s", path)
            except FileExistsError:
                pass  # another process created it meanwhile: open it as an existing store
            except OSError as err:
                raise StoreError(f"cannot create {path}: {err.strerror}") from None
            return
        if not path.is_file():
            raise StoreError(f"{path} is not a file")
        try:
            with open(path, "rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
            mode = path.stat().st_mode
        except OSError as err:
            raise StoreError(f"cannot read {path}: {err.strerror}") from None
        if head and head != _SQLITE_MAGIC:
            raise StoreError(self._corrupt("not an SQLite file"))
        if mode & 0o007:
            log.warning("%s is readable by every user (mode %o): it holds biometric data, chmod 600 it",
                        path, mode & 0o777)

    def _corrupt(self, why: str) -> str:
        return f"{self._path} is corrupt or not a facegate store ({why}); it was left untouched"

    def _open(self, create: bool) -> None:
        conn = self._connection()
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=FULL")
        if not self._tables():
            if not create:
                raise StoreError(self._corrupt("an empty file"))
            self._initialise()
        elif _META_TABLE not in self._tables():
            raise StoreError(self._corrupt(f"no {_META_TABLE} table"))
        meta = dict(conn.execute(f"SELECT key, value FROM {_META_TABLE}").fetchall())
        if meta.get("format") != STORE_FORMAT:
            raise StoreError(self._corrupt(f"format {meta.get('format')!r}"))
        version = meta.get("schema_version")
        if version not in (str(SCHEMA_VERSION), _MIGRATED_FROM):
            raise StoreError(f"{self._path} has store schema version {version}; this facegate reads versions "
                             f"{_MIGRATED_FROM} and {SCHEMA_VERSION} only (use the facegate that wrote it)")
        problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise StoreError(self._corrupt(f"quick_check: {problems[0]}"))
        stored_model, stored_size = meta.get("model_sha256", ""), meta.get("embedding_size")
        if stored_model != self._model_sha256:
            raise StoreError(f"{self._path} holds encodings made by model {stored_model[:12]}, not by the model in "
                             f"use {self._model_sha256[:12]}; encodings from different models are never mixed "
                             "(re-enrol everyone into a new store, or use the matching model)")
        if stored_size != str(self._embedding_size):
            raise StoreError(f"{self._path} holds encodings of {stored_size} values, the model in use makes "
                             f"{self._embedding_size}; encodings of different sizes are never mixed")
        # only now, with every check passed, may the file change: a copy in rollback mode is switched to WAL
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("%s: cannot use the WAL journal (got %s); readers may wait for writers", self._path, mode)
        if version == _MIGRATED_FROM:
            self._migrate()

    def _migrate(self) -> None:
        """Version 1 -> 2: the access data tables, in one transaction (another process may be doing the same).
        Every person and encoding stays as it is; nobody has access data yet (enabled, no validity, no groups)."""
        with self.write("migrate") as conn:
            if meta_value(conn, "schema_version") != _MIGRATED_FROM:
                return
            _run_script(conn, ACCESS_SCHEMA)
            conn.execute(f"UPDATE {_META_TABLE} SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        log.info("%s: store schema migrated from version %s to %s (access data)", self._path, _MIGRATED_FROM,
                 SCHEMA_VERSION)

    def _tables(self) -> set[str]:
        return {r[0] for r in self._connection().execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _initialise(self) -> None:
        """Write the schema and the stamp in one transaction (another process may be doing the same)."""
        with self.write("create") as conn:
            if self._tables():
                return
            _run_script(conn, _SCHEMA + ACCESS_SCHEMA)
            conn.executemany(f"INSERT INTO {_META_TABLE} (key, value) VALUES (?, ?)", [
                ("format", STORE_FORMAT), ("schema_version", str(SCHEMA_VERSION)),
                ("model_sha256", self._model_sha256), ("embedding_size", str(self._embedding_size)),
                ("created", utc_now())])

    # -- transactions --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _sqlite_errors(self, doing: str, *, opening: bool = False) -> Iterator[None]:
        """Turn SQLite's exceptions into one-line :class:`StoreError` messages."""
        try:
            yield
        except sqlite3.Error as err:
            code = getattr(err, "sqlite_errorcode", None)
            primary = code & 0xFF if isinstance(code, int) else None
            text = str(err)
            if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or (primary is None and "locked" in text):
                raise StoreError(f"{self._path} is locked by another process (waited {self._timeout:g} s); "
                                 "try again") from None
            if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or (
                    primary is None and ("malformed" in text or "not a database" in text)):
                if opening:
                    raise StoreError(self._corrupt(text)) from None
                raise StoreError(f"{self._path} is corrupt ({text}); nothing was changed") from None
            raise StoreError(f"cannot {doing} {self._path}: {text}") from None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {self._path} is closed")
        return self._conn

    @contextlib.contextmanager
    def write(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed if the block succeeds, rolled back on any exception.

        ``doing`` completes the message of an unexpected SQLite error: ``"cannot <doing> <path>: ..."``.
        """
        with self._lock, self._sqlite_errors(doing):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
            finally:
                self._generation += 1  # also after a failed commit: a cache must not be trusted

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: a consistent snapshot."""
        with self._lock, self._sqlite_errors("read"):
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection; safe to call more than once. A later :meth:`read` / :meth:`write` raises."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Each statement of ``script`` inside the open transaction (``executescript`` would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid of the row an ``INSERT`` made (SQLite always gives one)."""
    if cursor.lastrowid is None:
        raise StoreError("SQLite reported no id for an inserted row")
    return cursor.lastrowid


def meta_value(conn: sqlite3.Connection, key: str) -> str | None:
    """The value of ``key`` in the store's meta table, or ``None`` if it has none (inside a read or write)."""
    row = conn.execute(f"SELECT value FROM {_META_TABLE} WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta_value(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Write ``key`` of the store's meta table (inside a :meth:`StoreFile.write`); the stamp's keys are refused."""
    if key in _STAMP_KEYS:
        raise StoreError(f"{key!r} is part of the store's stamp and is never changed")
    conn.execute(f"INSERT INTO {_META_TABLE} (key, value) VALUES (?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))
