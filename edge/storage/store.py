"""The encoding store: the door's database of enrolled people and their face encodings.

One SQLite file maps each person's name to one or more encodings (different photos, lighting, days). An
encoding is a 1-D vector of ``embedding_size`` float32 values with L2 norm 1, stored as a BLOB of float32
little-endian bytes. The store is *stamped* when it is created with the sha256 of the encoder model and its
embedding size; it refuses to open with any other model, because distances between encodings of two
different models mean nothing (a stranger could match).

Safety:

* A new file is created with mode 0600 before SQLite touches it (SQLite gives its ``-wal`` and ``-shm``
  companions the same mode); it holds biometric data.
* WAL journal, ``synchronous=FULL``: a committed change survives a power cut; readers (the door daemon) are
  never blocked by a writer (an operator enrolling someone).
* Every change is one transaction: it happens completely or not at all.
* Opening an existing file checks it is a facegate store of a known schema version, runs
  ``PRAGMA quick_check`` and compares the stamp before anything is written; a file that fails is left
  byte-for-byte untouched.
* :meth:`EncodingStore.matrix` is cached and re-read only when the file changed, whoever changed it
  (``PRAGMA data_version``), so a running daemon sees an enrolment made by another process at its next frame.

Names are stored NFC-normalised with surrounding white space stripped (see :func:`check_name`). Times are
UTC ISO-8601 strings (``2025-01-31T08:15:00+00:00``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import math
import os
import re
import sqlite3
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge.errors import StoreError
from edge.files import write_bytes_atomic

log = logging.getLogger(__name__)

STORE_FORMAT = "facegate-encodings"
SCHEMA_VERSION = 1
EXPORT_FORMAT = "facegate-encodings-export"
EXPORT_VERSION = 1
VECTOR_ENCODING = "base64-float32-le"
MAX_NAME_LENGTH = 100
NORM_TOLERANCE = 1e-3  # |L2 norm - 1| an encoding may have; float32 rounding is ~1e-7

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
# AUTOINCREMENT: an encoding id is never reused, so a stale id can never remove someone else's encoding.

# SQLite primary result codes (the low byte of an extended code)
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_NOTADB = 5, 6, 11, 26


@dataclass(frozen=True)
class Person:
    """An enrolled person: ``encodings`` is how many are stored; ``added`` / ``updated`` are UTC ISO-8601
    times of the first enrolment and of the last change (encodings added or removed, renamed)."""

    name: str
    encodings: int
    added: str
    updated: str


@dataclass(frozen=True)
class Entry:
    """One stored encoding without its vector: the store ``id``, the person's ``name``, where it came from
    (``source``, e.g. the photo's path, or ``None``), its ``quality`` (the caller's score, e.g. the sharpness
    of the face crop, or ``None``) and when it was ``added`` (UTC ISO-8601)."""

    id: int
    name: str
    source: str | None
    quality: float | None
    added: str


def check_name(name: str) -> str:
    """The stored form of a person's name: NFC-normalised, surrounding white space stripped.

    Unicode letters are fine (``"José Ñúñez"``, ``"李小龍"``).

    Raises:
        StoreError: not a string, empty, longer than :data:`MAX_NAME_LENGTH` characters, or containing a
            control / format / unassigned character (Unicode category ``C*``); the message says which.
    """
    if not isinstance(name, str):
        raise StoreError(f"name must be text, got {type(name).__name__}")
    clean = unicodedata.normalize("NFC", name).strip()
    if not clean:
        raise StoreError("name must not be empty")
    if len(clean) > MAX_NAME_LENGTH:
        raise StoreError(f"name must be at most {MAX_NAME_LENGTH} characters, got {len(clean)}")
    bad = next((ch for ch in clean if unicodedata.category(ch).startswith("C")), None)
    if bad is not None:
        raise StoreError(f"name must not contain control characters (found U+{ord(bad):04X})")
    return clean


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check_vectors(encodings, size: int, what: str = "encodings") -> np.ndarray:
    """``encodings`` ((k, size) or (size,), real numbers) as a (k, size) float32 array, k >= 1; each row must be
    finite with L2 norm 1 (within :data:`NORM_TOLERANCE`)."""
    try:
        array = np.asarray(encodings)
    except (ValueError, TypeError) as err:
        raise StoreError(f"{what} must be an array of numbers: {err}") from None
    if array.dtype.kind not in "fiu":
        raise StoreError(f"{what} must be real numbers, got dtype {array.dtype}")
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != size or array.shape[0] == 0:
        raise StoreError(f"{what} must have shape (k, {size}) or ({size},) with k >= 1, got {np.shape(encodings)}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        raise StoreError(f"{what}: row {int(np.argmin(finite))} holds a non-finite value (NaN or infinity)")
    norms = np.linalg.norm(array.astype(np.float64), axis=1)
    off = np.abs(norms - 1.0) > NORM_TOLERANCE
    if off.any():
        k = int(np.argmax(off))
        raise StoreError(f"{what}: row {k} has L2 norm {norms[k]:.4g}, not 1 (store L2-normalised encodings)")
    return array


def _to_blob(vector: np.ndarray) -> bytes:
    return vector.astype("<f4", copy=False).tobytes()


def _from_blobs(blobs: Sequence[bytes], size: int) -> np.ndarray:
    """(n, size) float32 from n little-endian float32 BLOBs; read-only (it shares the joined bytes)."""
    if any(len(b) != 4 * size for b in blobs):
        raise ValueError(f"a stored encoding is not {size} float32 values")
    array = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), size)
    return array.astype(np.float32, copy=False)  # a no-op on little-endian machines


class EncodingStore:
    """The encodings of everyone the door knows, in one SQLite file, stamped with the model that made them.

    Args:
        path: the SQLite file (conventionally ``*.db``).
        model_sha256: hex sha256 of the encoder model in use (its card's ``sha256``). A new store is stamped
            with it; an existing one must carry the same stamp.
        embedding_size: values per encoding (the model's output size, e.g. 128).
        create: create the file (and its folder) if missing; with ``False`` a missing file is an error.
        timeout: seconds to wait for another process's lock before giving up with :class:`StoreError`.

    Raises:
        StoreError: missing (with ``create=False``), not a facegate store or corrupt (the file is left
            untouched), of an unknown schema version, made by another model or embedding size, locked by
            another process for longer than ``timeout``, or not readable / creatable.

    Thread-safe (one connection behind a lock). Also a context manager that closes the store.
    """

    def __init__(self, path: str | os.PathLike, *, model_sha256: str, embedding_size: int, create: bool = True,
                 timeout: float = 5.0):
        self._path = Path(path)
        if not isinstance(model_sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", model_sha256):
            raise StoreError(f"model_sha256 must be 64 hex digits, got {model_sha256!r}")
        if isinstance(embedding_size, bool) or not isinstance(embedding_size, int) or embedding_size < 1:
            raise StoreError(f"embedding_size must be a positive integer, got {embedding_size!r}")
        self._model_sha256 = model_sha256.lower()
        self._embedding_size = embedding_size
        self._timeout = float(timeout)
        self._lock = threading.RLock()
        self._generation = 0  # this connection's commits (PRAGMA data_version counts only the others')
        self._cache: tuple[tuple[int, int], list[str], np.ndarray] | None = None
        self._conn: sqlite3.Connection | None = None
        self._prepare_file(create)
        try:
            self._conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None,
                                         check_same_thread=False)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open {self._path}: {err}") from None
        try:
            with self._sqlite_errors("open", opening=True):
                self._open(create)
        except BaseException:
            self._conn.close()
            self._conn = None
            raise
        log.debug("opened store %s (model %s, %d values)", self._path, self._model_sha256[:12], embedding_size)

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
        conn = self._conn
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
        if version != str(SCHEMA_VERSION):
            raise StoreError(f"{self._path} has store schema version {version}; this facegate reads version "
                             f"{SCHEMA_VERSION} only (use the facegate that wrote it)")
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

    def _tables(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _initialise(self) -> None:
        """Write the schema and the stamp in one transaction (another process may be doing the same)."""
        with self._write("create"):
            if self._tables():
                return
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.executemany(f"INSERT INTO {_META_TABLE} (key, value) VALUES (?, ?)", [
                ("format", STORE_FORMAT), ("schema_version", str(SCHEMA_VERSION)),
                ("model_sha256", self._model_sha256), ("embedding_size", str(self._embedding_size)),
                ("created", _now())])

    # -- plumbing ------------------------------------------------------------------------------------------

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
    def _write(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed if the block succeeds, rolled back on any exception."""
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
                self._generation += 1  # also after a failed commit: the cache must not be trusted

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: a consistent snapshot."""
        with self._lock, self._sqlite_errors("read"):
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def _person_id(self, conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise StoreError(f"{name!r} is not enrolled")
        return row[0]

    # -- properties, closing -------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    @property
    def model_sha256(self) -> str:
        """Lower-case hex sha256 of the model the store's encodings were made with."""
        return self._model_sha256

    @property
    def embedding_size(self) -> int:
        """Values per encoding."""
        return self._embedding_size

    def close(self) -> None:
        """Close the file; safe to call more than once. Any later call but :meth:`close` raises StoreError."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._cache = None

    def __enter__(self) -> EncodingStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EncodingStore({str(self._path)!r}, model {self._model_sha256[:12]}, {self._embedding_size} values)"

    # -- changes -------------------------------------------------------------------------------------------

    def add(self, name: str, encodings: np.ndarray, *, sources: Sequence[str | os.PathLike | None] | None = None,
            qualities: Sequence[float | None] | None = None) -> list[int]:
        """Store encodings of ``name`` (enrolled now if new), all in one transaction.

        Args:
            name: the person (see :func:`check_name`).
            encodings: (k, embedding_size) or (embedding_size,) real numbers, each row finite and L2-normalised;
                stored as float32.
            sources: k strings (e.g. the photo paths) or ``None`` entries; default all ``None``.
            qualities: k finite numbers (e.g. the face crop's sharpness) or ``None`` entries.

        Returns:
            The k new encoding ids, in row order.

        Raises:
            StoreError: a bad name, shape, value, or list length (nothing is stored); or the file cannot be
                written (nothing is stored).
        """
        clean = check_name(name)
        vectors = _check_vectors(encodings, self._embedding_size)
        k = len(vectors)
        sources = self._column(sources, k, "sources", _check_source)
        qualities = self._column(qualities, k, "qualities", _check_quality)
        now = _now()
        with self._write("add to") as conn:
            row = conn.execute("SELECT id FROM people WHERE name = ?", (clean,)).fetchone()
            if row is None:
                person = conn.execute("INSERT INTO people (name, added, updated) VALUES (?, ?, ?)",
                                      (clean, now, now)).lastrowid
            else:
                person = row[0]
                conn.execute("UPDATE people SET updated = ? WHERE id = ?", (now, person))
            ids = [conn.execute("INSERT INTO encodings (person_id, vector, source, quality, added) "
                                "VALUES (?, ?, ?, ?, ?)", (person, _to_blob(v), s, q, now)).lastrowid
                   for v, s, q in zip(vectors, sources, qualities, strict=True)]
        log.info("store %s: added %d encoding(s) of %s", self._path, k, clean)
        return ids

    @staticmethod
    def _column(values, k: int, what: str, check) -> list:
        if values is None:
            return [None] * k
        items = None if isinstance(values, (str, bytes, os.PathLike)) else _as_list(values)
        if items is None or len(items) != k:
            raise StoreError(f"{what} must be a list of {k} value(s), one per encoding")
        return [check(v, f"{what}[{i}]") for i, v in enumerate(items)]

    def remove(self, name: str) -> int:
        """Remove ``name`` and all their encodings; returns how many encodings were removed.

        Raises:
            StoreError: ``name`` is not enrolled, or the file cannot be written.
        """
        clean = check_name(name)
        with self._write("remove from") as conn:
            person = self._person_id(conn, clean)
            count = conn.execute("DELETE FROM encodings WHERE person_id = ?", (person,)).rowcount
            conn.execute("DELETE FROM people WHERE id = ?", (person,))
        log.info("store %s: removed %s (%d encoding(s))", self._path, clean, count)
        return count

    def remove_encoding(self, encoding_id: int) -> None:
        """Remove one encoding by its id (see :meth:`entries`). A person whose last encoding goes is removed too.

        Raises:
            StoreError: no encoding has that id, or the file cannot be written.
        """
        if isinstance(encoding_id, bool) or not isinstance(encoding_id, (int, np.integer)):
            raise StoreError(f"encoding id must be an integer, got {encoding_id!r}")
        with self._write("remove from") as conn:
            row = conn.execute("SELECT person_id FROM encodings WHERE id = ?", (int(encoding_id),)).fetchone()
            if row is None:
                raise StoreError(f"no encoding has id {encoding_id}")
            conn.execute("DELETE FROM encodings WHERE id = ?", (int(encoding_id),))
            left = conn.execute("SELECT COUNT(*) FROM encodings WHERE person_id = ?", row).fetchone()[0]
            if left:
                conn.execute("UPDATE people SET updated = ? WHERE id = ?", (_now(), row[0]))
            else:
                conn.execute("DELETE FROM people WHERE id = ?", row)
        log.info("store %s: removed encoding %d%s", self._path, encoding_id,
                 "" if left else " (the person's last: person removed)")

    def rename(self, old: str, new: str) -> None:
        """Rename a person (their encodings stay). Renaming to the same name does nothing.

        Raises:
            StoreError: ``old`` is not enrolled, ``new`` is enrolled already or not a valid name.
        """
        old_clean, new_clean = check_name(old), check_name(new)
        with self._write("rename in") as conn:
            person = self._person_id(conn, old_clean)
            if new_clean == old_clean:
                return
            if conn.execute("SELECT 1 FROM people WHERE name = ?", (new_clean,)).fetchone():
                raise StoreError(f"{new_clean!r} is enrolled already")
            conn.execute("UPDATE people SET name = ?, updated = ? WHERE id = ?", (new_clean, _now(), person))
        log.info("store %s: renamed %s to %s", self._path, old_clean, new_clean)

    # -- reading -------------------------------------------------------------------------------------------

    def people(self) -> list[Person]:
        """Everyone enrolled, sorted by name (code-point order)."""
        with self._read() as conn:
            rows = conn.execute("SELECT p.name, COUNT(e.id), p.added, p.updated FROM people p "
                                "LEFT JOIN encodings e ON e.person_id = p.id GROUP BY p.id ORDER BY p.name").fetchall()
        return [Person(*row) for row in rows]

    def encodings(self, name: str) -> np.ndarray:
        """``name``'s encodings: (k, embedding_size) float32, oldest first (a new, writable array).

        Raises:
            StoreError: ``name`` is not enrolled.
        """
        clean = check_name(name)
        with self._read() as conn:
            person = self._person_id(conn, clean)
            blobs = [r[0] for r in conn.execute("SELECT vector FROM encodings WHERE person_id = ? ORDER BY id",
                                                (person,))]
        return self._decode(blobs).copy()

    def entries(self, name: str) -> list[Entry]:
        """What is stored for ``name``, one :class:`Entry` per encoding, oldest first.

        Raises:
            StoreError: ``name`` is not enrolled.
        """
        clean = check_name(name)
        with self._read() as conn:
            person = self._person_id(conn, clean)
            rows = conn.execute("SELECT id, source, quality, added FROM encodings WHERE person_id = ? ORDER BY id",
                                (person,)).fetchall()
        return [Entry(i, clean, source, quality, added) for i, source, quality, added in rows]

    def matrix(self) -> tuple[list[str], np.ndarray]:
        """Every stored encoding at once, for a vectorised 1:N search.

        Returns:
            ``(names, matrix)``: ``names[i]`` is the person of row ``i``; ``matrix`` is (n, embedding_size)
            float32, C-contiguous and read-only (it is the cached copy: copy it before changing it). Rows are
            in the order the encodings were added. An empty store gives ``([], (0, embedding_size))``.

        The result is cached and read again from the file only when the file changed since, by this store
        or by any other connection or process.
        """
        with self._read() as conn:
            key = (conn.execute("PRAGMA data_version").fetchone()[0], self._generation)
            if self._cache is None or self._cache[0] != key:
                rows = conn.execute("SELECT p.name, e.vector FROM encodings e JOIN people p ON p.id = e.person_id "
                                    "ORDER BY e.id").fetchall()
                matrix = self._decode([r[1] for r in rows])
                matrix.flags.writeable = False
                self._cache = (key, [r[0] for r in rows], matrix)
                log.debug("store %s: loaded %d encoding(s)", self._path, len(rows))
            _, names, matrix = self._cache
        return list(names), matrix

    def _decode(self, blobs: Sequence[bytes]) -> np.ndarray:
        try:
            return _from_blobs(blobs, self._embedding_size)
        except ValueError as err:
            raise StoreError(f"{self._path} is corrupt: {err}") from None

    # -- export / import -----------------------------------------------------------------------------------

    def export(self, path: str | os.PathLike) -> int:
        """Write everything to a JSON file (atomically, mode 0600: it holds biometric data).

        The file is one object::

            {"format": "facegate-encodings-export", "version": 1, "exported": "<UTC ISO-8601>",
             "model_sha256": "<hex>", "embedding_size": 128, "vector_encoding": "base64-float32-le",
             "people": [{"name": "...", "added": "...", "updated": "...",
                         "encodings": [{"vector": "<base64>", "source": "..." | null,
                                        "quality": 1.5 | null, "added": "..."}]}]}

        where each ``vector`` is the standard base64 of the encoding's ``embedding_size`` float32
        little-endian values (exact: no decimal rounding).

        Returns:
            The number of encodings written.

        Raises:
            StoreError: ``path`` is the store itself, or cannot be written.
        """
        target = Path(path)
        if target.resolve() == self._path.resolve():
            raise StoreError(f"refusing to export over the store itself ({target})")
        with self._read() as conn:
            people = conn.execute("SELECT id, name, added, updated FROM people ORDER BY name").fetchall()
            rows = conn.execute("SELECT person_id, vector, source, quality, added FROM encodings "
                                "ORDER BY id").fetchall()
        by_person: dict[int, list[dict]] = {}
        for person, vector, source, quality, added in rows:
            by_person.setdefault(person, []).append({"vector": base64.b64encode(vector).decode("ascii"),
                                                     "source": source, "quality": quality, "added": added})
        document = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "exported": _now(),
                    "model_sha256": self._model_sha256, "embedding_size": self._embedding_size,
                    "vector_encoding": VECTOR_ENCODING,
                    "people": [{"name": name, "added": added, "updated": updated,
                                "encodings": by_person.get(person, [])} for person, name, added, updated in people]}
        try:
            write_bytes_atomic(target, json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8"),
                               mode=0o600)
        except OSError as err:
            raise StoreError(f"cannot write {target}: {err.strerror or err}") from None
        log.info("store %s: exported %d encoding(s) of %d people to %s", self._path, len(rows), len(people), target)
        return len(rows)

    def import_(self, path: str | os.PathLike, *, replace: bool = False) -> int:
        """Add the people of a file written by :meth:`export`, all in one transaction.

        Args:
            path: the export file.
            replace: a person already enrolled gets exactly the file's encodings (theirs are removed first).
                Without it (default) the file's encodings are added to theirs, except those already stored
                for them bit for bit (so importing the same file twice adds nothing the second time).

        Returns:
            The number of encodings added.

        Raises:
            StoreError: the file is missing, malformed, or from another model or embedding size (nothing is
                imported); or the store cannot be written (nothing is imported).
        """
        source = Path(path)
        people = _parse_export(source, self._model_sha256, self._embedding_size)
        now = _now()
        added = 0
        with self._write("import into") as conn:
            for person in people:
                row = conn.execute("SELECT id FROM people WHERE name = ?", (person.name,)).fetchone()
                known: set[bytes] = set()
                if row is None:
                    pid = conn.execute("INSERT INTO people (name, added, updated) VALUES (?, ?, ?)",
                                       (person.name, person.added or now, person.updated or now)).lastrowid
                elif replace:
                    pid = row[0]
                    conn.execute("DELETE FROM encodings WHERE person_id = ?", (pid,))
                    conn.execute("UPDATE people SET added = ?, updated = ? WHERE id = ?",
                                 (person.added or now, person.updated or now, pid))
                else:
                    pid = row[0]
                    known = {r[0] for r in conn.execute("SELECT vector FROM encodings WHERE person_id = ?", row)}
                    conn.execute("UPDATE people SET updated = ? WHERE id = ?", (now, pid))
                fresh = [(pid, blob, src, q, when or now) for blob, src, q, when in person.encodings
                         if blob not in known]
                conn.executemany("INSERT INTO encodings (person_id, vector, source, quality, added) "
                                 "VALUES (?, ?, ?, ?, ?)", fresh)
                added += len(fresh)
        log.info("store %s: imported %d encoding(s) of %d people from %s%s", self._path, added, len(people), source,
                 " (replacing)" if replace else "")
        return added


# -- checks of single values (add and import) -------------------------------------------------------------


def _as_list(values) -> list | None:
    try:
        return list(values)
    except TypeError:
        return None


def _check_source(value, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise StoreError(f"{what} must be a string or None, got {type(value).__name__}")
    return value


def _check_quality(value, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise StoreError(f"{what} must be a number or None, got {type(value).__name__}")
    if not math.isfinite(float(value)):
        raise StoreError(f"{what} must be finite, got {value}")
    return float(value)


def _check_time(value, what: str) -> str | None:
    """An ISO-8601 time as a UTC ISO-8601 string (a time without zone is taken as UTC), or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise StoreError(f"{what} must be an ISO-8601 time, got {type(value).__name__}")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise StoreError(f"{what} is not an ISO-8601 time: {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class _ImportedPerson:
    name: str
    added: str | None
    updated: str | None
    encodings: list[tuple[bytes, str | None, float | None, str | None]]  # (blob, source, quality, added)


def _parse_export(path: Path, model_sha256: str, size: int) -> list[_ImportedPerson]:
    """Read and check a whole export file (see :meth:`EncodingStore.export`) before anything is imported."""
    try:
        document = json.loads(path.read_bytes())
    except OSError as err:
        raise StoreError(f"cannot read {path}: {err.strerror or err}") from None
    except ValueError as err:
        raise StoreError(f"{path} is not a facegate export: not JSON ({err})") from None

    def bad(why: str) -> StoreError:
        return StoreError(f"{path} is not a valid facegate export: {why}")

    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise bad(f"format is not {EXPORT_FORMAT!r}")
    if document.get("version") != EXPORT_VERSION:
        raise bad(f"version {document.get('version')!r}, this facegate reads version {EXPORT_VERSION}")
    theirs = document.get("model_sha256")
    if not isinstance(theirs, str):
        raise bad("model_sha256 is missing")
    if theirs.lower() != model_sha256:
        raise StoreError(f"{path} holds encodings made by model {theirs[:12]}, this store holds model "
                         f"{model_sha256[:12]}; encodings from different models are never mixed")
    if document.get("embedding_size") != size:
        raise StoreError(f"{path} holds encodings of {document.get('embedding_size')!r} values, this store {size}")
    if document.get("vector_encoding") != VECTOR_ENCODING:
        raise bad(f"vector_encoding is not {VECTOR_ENCODING!r}")
    try:
        return _parse_people(document.get("people"), size)
    except StoreError as err:
        raise bad(str(err)) from None


def _parse_people(people, size: int) -> list[_ImportedPerson]:
    """The ``people`` list of an export file, checked; a StoreError names the first bad item."""
    if not isinstance(people, list):
        raise StoreError("people is not a list")
    parsed: list[_ImportedPerson] = []
    seen: set[str] = set()
    for i, person in enumerate(people):
        where = f"people[{i}]"
        if not isinstance(person, dict):
            raise StoreError(f"{where} is not an object")
        try:
            name = check_name(person.get("name"))
        except StoreError as err:
            raise StoreError(f"{where}: {err}") from None
        if name in seen:
            raise StoreError(f"{where}: {name!r} appears twice")
        seen.add(name)
        encodings = person.get("encodings")
        if not isinstance(encodings, list) or not encodings:
            raise StoreError(f"{where}.encodings must be a non-empty list")
        rows = []
        for j, item in enumerate(encodings):
            at = f"{where}.encodings[{j}]"
            if not isinstance(item, dict) or not isinstance(item.get("vector"), str):
                raise StoreError(f"{at} has no vector")
            try:
                blob = base64.b64decode(item["vector"], validate=True)
            except (binascii.Error, ValueError):
                raise StoreError(f"{at}.vector is not base64") from None
            if len(blob) != 4 * size:
                raise StoreError(f"{at}.vector is {len(blob)} bytes, not {size} float32 values")
            vector = _check_vectors(np.frombuffer(blob, "<f4"), size, f"{at}.vector")
            rows.append((_to_blob(vector[0]), _check_source(item.get("source"), f"{at}.source"),
                         _check_quality(item.get("quality"), f"{at}.quality"),
                         _check_time(item.get("added"), f"{at}.added")))
        parsed.append(_ImportedPerson(name, _check_time(person.get("added"), f"{where}.added"),
                                      _check_time(person.get("updated"), f"{where}.updated"), rows))
    return parsed
