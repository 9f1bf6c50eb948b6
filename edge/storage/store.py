"""The encoding store: the door's database of enrolled people and their face encodings.

(Why this file is near 500 lines: it is one class, :class:`EncodingStore`, each of whose methods is one
transaction on one connection behind one lock, with the matrix cache they all keep consistent; the SQLite file,
the input checks and the export format already live apart.)

One SQLite file maps each person's name to one or more encodings (different photos, lighting, days). An
encoding is a 1-D vector of ``embedding_size`` float32 values with L2 norm 1, stored as a BLOB of float32
little-endian bytes. The store is *stamped* when it is created with the sha256 of the encoder model and its
embedding size; it refuses to open with any other model, because distances between encodings of two
different models mean nothing (a stranger could match).

This module holds :class:`EncodingStore` (adding, removing, renaming, reading, the 1:N matrix, export and
import, the site calibration record); people's access data (groups, validity, enabled, badges: ``store.access``)
is :mod:`edge.storage.access_data`'s, carried by export and import. The checks of what a caller hands it are
:mod:`edge.storage.inputs`; the SQLite file (schema, opening checks, transactions) :mod:`edge.storage.sqlite`; the
export file format :mod:`edge.storage.transfer`; names :mod:`edge.core.names`.

Safety:

* A new file is created with mode 0600 before SQLite touches it (SQLite gives its ``-wal`` and ``-shm``
  companions the same mode); it holds biometric data. An export file is written all or nothing, mode 0600 too.
* WAL journal, ``synchronous=FULL``: a committed change survives a power cut; readers (the door daemon) are
  never blocked by a writer (an operator enrolling someone).
* Every change is one transaction: it happens completely or not at all. An import is checked whole before
  its transaction starts.
* Opening an existing file checks it is a facegate store of a known schema version, runs
  ``PRAGMA quick_check`` and compares the stamp before anything is written; a file that fails is left
  byte-for-byte untouched.
* :meth:`EncodingStore.matrix` is cached and re-read only when the file changed, whoever changed it
  (``PRAGMA data_version``), so a running daemon sees an enrolment made by another process at its next frame.
* The site calibration (``facegate calibrate --site``: the door's 1:N threshold measured on these people) is one
  JSON object under the key ``site_calibration`` of the meta table (no schema change). It names the people it was
  made for (:func:`edge.core.openset.people_key`); it is written only if the store still holds them, and the door
  uses it only while it does (:class:`edge.core.openset.OpenSetGallery`).

Errors: bad input (a name, an encoding's shape or values, a ``sources`` / ``qualities`` list, an encoding id,
an import file) raises :class:`edge.errors.StoreInputError`, which is also a ``ValueError``; a problem of the
file or the database raises :class:`edge.errors.StoreError`. Both are one-line messages.

Names are stored NFC-normalised with surrounding white space stripped (see
:func:`edge.core.names.check_name`). Two names with the same :func:`edge.core.names.name_key` (they differ
only in case, white space or Unicode form) are one person: every lookup finds a person by key (the exact
stored spelling first), adding under another spelling adds to the person found (who keeps their spelling),
and a rename or an import cannot make a second person of the same key. Keys are computed in Python inside
each transaction (no schema change: a schema version 1 file holds names only). A store written before keys
may hold two people of one key; a lookup that finds several is refused and names them (use the exact
spelling, or rename one). Times are UTC ISO-8601 strings (``2025-01-31T08:15:00+00:00``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.core.names import check_name, name_key
from edge.core.openset import people_key
from edge.errors import StoreError, StoreInputError
from edge.storage.access_data import AccessData, export_fields, import_fields
from edge.storage.inputs import NORM_TOLERANCE, check_column, check_quality, check_source, check_vectors
from edge.storage.sqlite import StoreFile, from_blobs, inserted_id, meta_value, set_meta_value, to_blob, utc_now
from edge.storage.transfer import read_export, write_export

log = logging.getLogger(__name__)

#: The meta table's key of the site calibration record.
SITE_CALIBRATION_KEY = "site_calibration"


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
        StoreInputError: ``model_sha256`` is not 64 hex digits or ``embedding_size`` not a positive integer.
        StoreError: missing (with ``create=False``), not a facegate store or corrupt (the file is left
            untouched), of an unknown schema version, made by another model or embedding size, locked by
            another process for longer than ``timeout``, or not readable / creatable.

    Thread-safe (one connection behind a lock). Also a context manager that closes the store.
    """

    def __init__(self, path: str | os.PathLike, *, model_sha256: str, embedding_size: int, create: bool = True,
                 timeout: float = 5.0):
        if not isinstance(model_sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", model_sha256):
            raise StoreInputError(f"model_sha256 must be 64 hex digits, got {model_sha256!r}")
        if isinstance(embedding_size, bool) or not isinstance(embedding_size, int) or embedding_size < 1:
            raise StoreInputError(f"embedding_size must be a positive integer, got {embedding_size!r}")
        self._path = Path(path)
        self._model_sha256 = model_sha256.lower()
        self._embedding_size = embedding_size
        self._cache: tuple[tuple[int, int], list[str], np.ndarray] | None = None
        self._db = StoreFile(self._path, model_sha256=self._model_sha256, embedding_size=embedding_size,
                             create=create, timeout=float(timeout))
        log.debug("opened store %s (model %s, %d values)", self._path, self._model_sha256[:12], embedding_size)

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

    @property
    def access(self) -> AccessData:
        """People's access data: groups, validity, enabled, badges (:mod:`edge.storage.access_data`)."""
        return AccessData(self._db, self._person)

    def close(self) -> None:
        """Close the file; safe to call more than once. Any later call but :meth:`close` raises StoreError."""
        self._db.close()
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
            name: the person (see :func:`edge.core.names.check_name`); a person enrolled under a name of the
                same key (``"ben  affleck"`` for ``"Ben Affleck"``) is added to, keeping their spelling.
            encodings: (k, embedding_size) or (embedding_size,) real numbers, each row finite and L2-normalised;
                stored as float32.
            sources: k strings (e.g. the photo paths) or ``None`` entries; default all ``None``.
            qualities: k finite numbers (e.g. the face crop's sharpness) or ``None`` entries.

        Returns:
            The k new encoding ids, in row order.

        Raises:
            StoreInputError: a bad name, shape, value, or list length (nothing is stored).
            StoreError: the name matches several people (a store from before name keys), or the file cannot
                be written (nothing is stored).
        """
        clean = check_name(name)
        vectors = check_vectors(encodings, self._embedding_size)
        k = len(vectors)
        sources = check_column(sources, k, "sources", check_source)
        qualities = check_column(qualities, k, "qualities", check_quality)
        now = utc_now()
        with self._db.write("add to") as conn:
            found = self._find(conn, clean)
            if found is None:
                person = inserted_id(conn.execute("INSERT INTO people (name, added, updated) VALUES (?, ?, ?)",
                                                  (clean, now, now)))
            else:
                person, clean = found
                conn.execute("UPDATE people SET updated = ? WHERE id = ?", (now, person))
            ids = [inserted_id(conn.execute("INSERT INTO encodings (person_id, vector, source, quality, added) "
                                            "VALUES (?, ?, ?, ?, ?)", (person, to_blob(v), s, q, now)))
                   for v, s, q in zip(vectors, sources, qualities, strict=True)]
        log.info("store %s: added %d encoding(s) of %s", self._path, k, clean)
        return ids

    def remove(self, name: str) -> int:
        """Remove ``name`` (found by key) and all their encodings; returns how many encodings were removed.

        Raises:
            StoreError: ``name`` is not enrolled, matches several people, or the file cannot be written.
        """
        clean = check_name(name)
        with self._db.write("remove from") as conn:
            person, clean = self._person(conn, clean)
            count = conn.execute("DELETE FROM encodings WHERE person_id = ?", (person,)).rowcount
            conn.execute("DELETE FROM people WHERE id = ?", (person,))
        log.info("store %s: removed %s (%d encoding(s))", self._path, clean, count)
        return count

    def remove_encoding(self, encoding_id: int) -> None:
        """Remove one encoding by its id (see :meth:`entries`). A person whose last encoding goes is removed too.

        Raises:
            StoreInputError: ``encoding_id`` is not an integer.
            StoreError: no encoding has that id, or the file cannot be written.
        """
        if isinstance(encoding_id, bool) or not isinstance(encoding_id, (int, np.integer)):
            raise StoreInputError(f"encoding id must be an integer, got {encoding_id!r}")
        with self._db.write("remove from") as conn:
            row = conn.execute("SELECT person_id FROM encodings WHERE id = ?", (int(encoding_id),)).fetchone()
            if row is None:
                raise StoreError(f"no encoding has id {encoding_id}")
            conn.execute("DELETE FROM encodings WHERE id = ?", (int(encoding_id),))
            left = conn.execute("SELECT COUNT(*) FROM encodings WHERE person_id = ?", row).fetchone()[0]
            if left:
                conn.execute("UPDATE people SET updated = ? WHERE id = ?", (utc_now(), row[0]))
            else:
                conn.execute("DELETE FROM people WHERE id = ?", row)
        log.info("store %s: removed encoding %d%s", self._path, encoding_id,
                 "" if left else " (the person's last: person removed)")

    def rename(self, old: str, new: str) -> None:
        """Rename a person (``old`` found by key; their encodings stay). Renaming to the stored name does nothing;
        to another spelling of the same key (``"ben affleck"`` to ``"Ben Affleck"``) respells the person.

        Raises:
            StoreInputError: ``old`` or ``new`` is not a valid name.
            StoreError: ``old`` is not enrolled or matches several people, or another person has ``new``'s key.
        """
        old_clean, new_clean = check_name(old), check_name(new)
        new_key = name_key(new_clean)
        with self._db.write("rename in") as conn:
            person, old_clean = self._person(conn, old_clean)
            if new_clean == old_clean:
                return
            taken = [n for i, n in conn.execute("SELECT id, name FROM people ORDER BY name")
                     if i != person and name_key(n) == new_key]
            if taken:
                same = "" if taken == [new_clean] else f" (as {', '.join(map(repr, taken))})"
                raise StoreError(f"{new_clean!r} is enrolled already{same}")
            conn.execute("UPDATE people SET name = ?, updated = ? WHERE id = ?", (new_clean, utc_now(), person))
        log.info("store %s: renamed %s to %s", self._path, old_clean, new_clean)

    def save_site_calibration(self, record: Mapping) -> None:
        """Store the site calibration ``record`` (a JSON object, see ``facegate calibrate --site``), replacing
        any earlier one, in one transaction.

        Raises:
            StoreInputError: ``record`` is not a JSON object of finite values, or has no ``people_key``.
            StoreError: the enrolled people are no longer those of its ``people_key`` (someone was enrolled or
                removed while it was measured: nothing is stored), or the file cannot be written.
        """
        if not isinstance(record, Mapping) or not isinstance(record.get("people_key"), str):
            raise StoreInputError("a site calibration must be a JSON object with a people_key")
        try:
            text = json.dumps(dict(record), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise StoreInputError(f"a site calibration must be plain JSON: {err}") from None
        with self._db.write("write the site calibration to") as conn:
            names = [r[0] for r in conn.execute("SELECT p.name FROM encodings e JOIN people p ON p.id = e.person_id")]
            if people_key(names) != record["people_key"]:
                raise StoreError(f"the people enrolled in {self._path} changed while the calibration was measured; "
                                 "nothing was stored: run it again")
            set_meta_value(conn, SITE_CALIBRATION_KEY, text)
        log.info("store %s: site calibration stored (threshold %s)", self._path, record.get("threshold"))

    # -- reading -------------------------------------------------------------------------------------------

    def site_calibration(self) -> dict | None:
        """The site calibration record stored by :meth:`save_site_calibration`, or ``None`` if there is none.

        A value that is not a JSON object (the file was edited by hand) is logged and taken as none: the door
        then derives its threshold from the model's reference strangers, as without a calibration.
        """
        with self._db.read() as conn:
            text = meta_value(conn, SITE_CALIBRATION_KEY)
        if text is None:
            return None
        try:
            record = json.loads(text, parse_constant=_no_constant)
        except ValueError as err:
            log.warning("store %s: the site calibration is not JSON (%s): ignored", self._path, err)
            return None
        if not isinstance(record, dict):
            log.warning("store %s: the site calibration is not a JSON object: ignored", self._path)
            return None
        return record


    def people(self) -> list[Person]:
        """Everyone enrolled, sorted by name (code-point order)."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT p.name, COUNT(e.id), p.added, p.updated FROM people p "
                                "LEFT JOIN encodings e ON e.person_id = p.id GROUP BY p.id ORDER BY p.name").fetchall()
        return [Person(*row) for row in rows]

    def encodings(self, name: str) -> np.ndarray:
        """``name``'s encodings: (k, embedding_size) float32, oldest first (a new, writable array).

        Raises:
            StoreError: ``name`` is not enrolled (by key), or matches several people.
        """
        clean = check_name(name)
        with self._db.read() as conn:
            person, _ = self._person(conn, clean)
            blobs = [r[0] for r in conn.execute("SELECT vector FROM encodings WHERE person_id = ? ORDER BY id",
                                                (person,))]
        return self._decode(blobs).copy()

    def entries(self, name: str) -> list[Entry]:
        """What is stored for ``name``, one :class:`Entry` per encoding (with the stored spelling), oldest first.

        Raises:
            StoreError: ``name`` is not enrolled (by key), or matches several people.
        """
        clean = check_name(name)
        with self._db.read() as conn:
            person, clean = self._person(conn, clean)
            rows = conn.execute("SELECT id, source, quality, added FROM encodings WHERE person_id = ? ORDER BY id",
                                (person,)).fetchall()
        return [Entry(i, clean, source, quality, added) for i, source, quality, added in rows]

    def person(self, name: str) -> Person | None:
        """The person ``name`` is (found by key, as every lookup: ``"BEN  affleck"`` finds ``"Ben Affleck"``), with
        their stored spelling; ``None`` if nobody enrolled has ``name``'s key.

        Raises:
            StoreInputError: ``name`` is not a valid name.
            StoreError: ``name`` matches several people (a store from before name keys).
        """
        clean = check_name(name)
        with self._db.read() as conn:
            found = self._find(conn, clean)
            if found is None:
                return None
            row = conn.execute("SELECT p.name, COUNT(e.id), p.added, p.updated FROM people p LEFT JOIN encodings e "
                               "ON e.person_id = p.id WHERE p.id = ? GROUP BY p.id", (found[0],)).fetchone()
        return Person(*row)

    def matrix(self) -> tuple[list[str], np.ndarray]:
        """Every stored encoding at once, for a vectorised 1:N search.

        Returns:
            ``(names, matrix)``: ``names[i]`` is the person of row ``i``; ``matrix`` is (n, embedding_size)
            float32, C-contiguous and read-only (it is the cached copy: copy it before changing it). Rows are
            in the order the encodings were added. An empty store gives ``([], (0, embedding_size))``.

        The result is cached and read again from the file only when the file changed since, by this store
        or by any other connection or process.
        """
        with self._db.read() as conn:
            key = (conn.execute("PRAGMA data_version").fetchone()[0], self._db.generation)
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
            return from_blobs(blobs, self._embedding_size)
        except ValueError as err:
            raise StoreError(f"{self._path} is corrupt: {err}") from None

    @staticmethod
    def _find(conn: sqlite3.Connection, name: str) -> tuple[int, str] | None:
        """``(id, stored name)`` of the person ``name`` (a checked name) is: the exact spelling, else the one
        person of the same key; ``None`` if nobody has it. Several of one key (a store from before keys) and
        none of them spelt exactly so: StoreError naming them."""
        row = conn.execute("SELECT id, name FROM people WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return row[0], row[1]
        key = name_key(name)
        found = [(i, n) for i, n in conn.execute("SELECT id, name FROM people ORDER BY name") if name_key(n) == key]
        if len(found) > 1:
            raise StoreError(f"{name!r} matches {len(found)} people ({', '.join(repr(n) for _, n in found)}): "
                             "give one's exact name, or rename one")
        return found[0] if found else None

    @classmethod
    def _person(cls, conn: sqlite3.Connection, name: str) -> tuple[int, str]:
        found = cls._find(conn, name)
        if found is None:
            raise StoreError(f"{name!r} is not enrolled")
        return found

    # -- export / import -----------------------------------------------------------------------------------

    def export(self, path: str | os.PathLike) -> int:
        """Write everything to a JSON file (atomically, mode 0600: it holds biometric data).

        The format (``facegate-encodings-export`` version 1: the stamp, then each person with their times and
        encodings, each vector the exact base64 of its float32 values) is :mod:`edge.storage.transfer`'s.

        Returns:
            The number of encodings written.

        Raises:
            StoreInputError: ``path`` is the store itself.
            StoreError: ``path`` cannot be written.
        """
        target = Path(path)
        if target.resolve() == self._path.resolve():
            raise StoreInputError(f"refusing to export over the store itself ({target})")
        with self._db.read() as conn:
            people = conn.execute("SELECT id, name, added, updated FROM people ORDER BY name").fetchall()
            rows = conn.execute("SELECT person_id, vector, source, quality, added FROM encodings "
                                "ORDER BY id").fetchall()
            access = export_fields(conn)
        write_export(target, model_sha256=self._model_sha256, embedding_size=self._embedding_size, people=people,
                     encodings=rows, access=access)
        log.info("store %s: exported %d encoding(s) of %d people to %s", self._path, len(rows), len(people), target)
        return len(rows)

    def import_(self, path: str | os.PathLike, *, replace: bool = False) -> int:
        """Add the people of a file written by :meth:`export`, all in one transaction.

        Args:
            path: the export file.
            replace: a person already enrolled gets exactly the file's encodings (theirs are removed first).
                Without it (default) the file's encodings are added to theirs, except those already stored
                for them bit for bit (so importing the same file twice adds nothing the second time).
                A person is matched by key (``"ben affleck"`` in the file is ``"Ben Affleck"`` in the store) and
                keeps the spelling stored.

        Returns:
            The number of encodings added.

        Raises:
            StoreInputError: the file is malformed (the message names the first bad item), from another
                model or embedding size, or names one person twice under names of one key; nothing is imported.
            StoreError: the file cannot be read, a name matches several people of the store, or the store
                cannot be written; nothing is imported.
        """
        source = Path(path)
        export = read_export(source, model_sha256=self._model_sha256, embedding_size=self._embedding_size,
                             norm_tolerance=NORM_TOLERANCE)
        first: dict[str, int] = {}
        for i, person in enumerate(export.people):
            j = first.setdefault(name_key(person.name), i)
            if j != i:
                raise StoreInputError(f"{source} is not a valid facegate export: people[{i}].name {person.name!r} "
                                      f"is the same person as people[{j}].name {export.people[j].name!r}")
        now = utc_now()
        added = 0
        with self._db.write("import into") as conn:
            access = []
            for person in export.people:
                found = self._find(conn, person.name)
                row = None if found is None else (found[0],)
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
                fresh = [(pid, e.vector, e.source, e.quality, e.added or now) for e in person.encodings
                         if e.vector not in known]
                conn.executemany("INSERT INTO encodings (person_id, vector, source, quality, added) "
                                 "VALUES (?, ?, ?, ?, ?)", fresh)
                added += len(fresh)
                access.append((pid, person.name if found is None else found[1], person.access_fields()))
            import_fields(conn, access)
        log.info("store %s: imported %d encoding(s) of %d people from %s%s", self._path, added, len(export.people),
                 source, " (replacing)" if replace else "")
        return added


def _no_constant(name: str) -> float:
    """``json.loads``'s hook for ``NaN`` and ``Infinity``, which a stored record never holds."""
    raise ValueError(f"{name} is not a number a record holds")
