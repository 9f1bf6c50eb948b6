"""People's access data in the encoding store: groups, a validity period, enabled or not, and badge ids.

The tables are schema version 2 of the store (:data:`edge.storage.sqlite.ACCESS_SCHEMA`; a version 1 file is
migrated when it is opened, keeping its people). Each row belongs to a person and goes with them: renamed, the
data stays; removed (or their last encoding removed), it goes too (``ON DELETE CASCADE``). A person without any
access data is enabled, in no group, always valid: what every enrolled person was before.

* **Groups**: lower-case names (:func:`edge.core.access.check_group`), a set per person.
* **Validity**: ``valid_from`` / ``valid_until``, ISO dates (``2025-06-30``) in the *site's* time zone (the door
  policy's ``timezone``), both inclusive: the access ends at the midnight after ``valid_until`` on the site's clock.
* **Enabled**: ``people disable NAME`` refuses the person at every door that follows this store file, at its next
  decision: the daemon reads the data again whenever the file changed (``PRAGMA data_version``, see
  :class:`AccessReader`), so within the time the door takes to see a face.
* **Badges**: badge ids (:func:`edge.core.access.check_badge_id`), each the badge of one person only. They are
  stored as read from the reader, in this file (mode 0600, as it holds biometric data already), so that a fleet
  can be provisioned from an export; the access log holds only a fingerprint (:func:`badge_fingerprint`).

:class:`AccessData` (``store.access``) reads and changes it, one transaction per call; :class:`AccessReader` is
the daemon's reader, which follows the file by its path; :func:`read_groups` reads the groups of a store without
writing anything (``facegate check-config``). Errors are :class:`edge.errors.StoreInputError` (bad input: nothing
is changed) and :class:`edge.errors.StoreError` (the file).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from edge.core.access import PersonAccess, check_badge_id, check_groups
from edge.errors import StoreError, StoreInputError
from edge.storage.sqlite import StoreFile, utc_now

log = logging.getLogger(__name__)

#: ``set_validity``'s "leave this end as it is".
KEEP: Any = object()


def badge_fingerprint(badge: str) -> str:
    """A badge id as the access log keeps it: 16 hex digits of its sha256. It tells two badges apart and matches
    ``facegate people list``'s fingerprints, but the log alone does not give the id back (pseudonymous, not secret:
    a short numeric id can be found again by trying them all)."""
    return hashlib.sha256(f"facegate-badge:{badge}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AccessSnapshot:
    """Everyone's access data at one moment: ``people`` by stored name (everyone enrolled, with defaults for those
    without a row) and ``badges``: badge id -> the name of its person."""

    people: Mapping[str, PersonAccess] = field(default_factory=dict)
    badges: Mapping[str, str] = field(default_factory=dict)

    def person(self, name: str) -> PersonAccess | None:
        return self.people.get(name)

    def badges_of(self, name: str) -> list[str]:
        return sorted(b for b, who in self.badges.items() if who == name)

    def groups(self) -> set[str]:
        """Every group someone is in."""
        return {g for p in self.people.values() for g in p.groups}


def read_snapshot(conn: sqlite3.Connection) -> AccessSnapshot:
    """Everyone's access data, inside a read transaction of ``conn`` (a store of schema version 1: defaults).

    Raises:
        StoreError: a stored date or flag is not one facegate writes (the file was edited by hand).
    """
    names = dict(conn.execute("SELECT id, name FROM people"))
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "person_access" not in tables:
        return AccessSnapshot({name: PersonAccess(name) for name in names.values()}, {})
    groups: dict[int, set[str]] = {}
    for pid, group in conn.execute("SELECT person_id, name FROM person_groups"):
        groups.setdefault(pid, set()).add(group)
    rows = {pid: (enabled, start, end) for pid, enabled, start, end in
            conn.execute("SELECT person_id, enabled, valid_from, valid_until FROM person_access")}
    people = {}
    for pid, name in names.items():
        enabled, start, end = rows.get(pid, (1, None, None))
        try:
            people[name] = PersonAccess(name, frozenset(groups.get(pid, ())), _date(start), _date(end),
                                        _flag(enabled))
        except ValueError as err:
            raise StoreError(f"the access data of {name!r} is corrupt ({err})") from None
    badges = {badge: names[pid] for badge, pid in conn.execute("SELECT badge_id, person_id FROM badges")
              if pid in names}
    return AccessSnapshot(people, badges)


def _date(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _flag(value: Any) -> bool:
    if value not in (0, 1):
        raise ValueError(f"enabled is {value!r}, not 0 or 1")
    return bool(value)


def check_date(value: Any, what: str) -> date | None:
    """A validity end: a :class:`~datetime.date`, an ISO date string, or ``None`` (open)."""
    if value is None or isinstance(value, date) and not hasattr(value, "hour"):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise StoreInputError(f"{what} must be a date YYYY-MM-DD, got {value!r}")


class AccessData:
    """The access data of one store (``store.access``), each call one transaction.

    Args:
        db: the store's file.
        person: ``person(conn, name) -> (id, stored name)``, the store's lookup by name key (raises StoreError for
            a name nobody has).
    """

    def __init__(self, db: StoreFile, person: Callable[[sqlite3.Connection, str], tuple[int, str]]):
        self._db = db
        self._person = person

    def snapshot(self) -> AccessSnapshot:
        with self._db.read() as conn:
            return read_snapshot(conn)

    def get(self, name: str) -> PersonAccess:
        """``name``'s access data (found by key, as every lookup). Raises StoreError if nobody has the name."""
        with self._db.read() as conn:
            _, stored = self._person(conn, name)
            found = read_snapshot(conn).person(stored)
        assert found is not None
        return found

    def set_groups(self, name: str, groups: Iterable[str]) -> PersonAccess:
        """Make ``name``'s groups exactly ``groups`` (none: in no group)."""
        try:
            clean = check_groups(groups)
        except ValueError as err:
            raise StoreInputError(str(err)) from None
        with self._db.write("change groups in") as conn:
            pid, stored = self._person(conn, name)
            _touch(conn, pid)
            conn.execute("DELETE FROM person_groups WHERE person_id = ?", (pid,))
            conn.executemany("INSERT INTO person_groups (person_id, name) VALUES (?, ?)",
                             [(pid, g) for g in sorted(clean)])
        log.info("store %s: %s's groups are now %s", self._db.path, stored, ", ".join(sorted(clean)) or "none")
        return self.get(stored)

    def set_validity(self, name: str, *, valid_from: Any = KEEP, valid_until: Any = KEEP) -> PersonAccess:
        """Set either end of ``name``'s validity (a date, an ISO date string, or ``None``: open); :data:`KEEP`
        leaves an end as it is.

        Raises:
            StoreInputError: not a date, or the period would end before it starts (nothing is changed).
        """
        with self._db.write("change the validity in") as conn:
            pid, stored = self._person(conn, name)
            now = read_snapshot(conn).person(stored) or PersonAccess(stored)
            start = now.valid_from if valid_from is KEEP else check_date(valid_from, "valid_from")
            end = now.valid_until if valid_until is KEEP else check_date(valid_until, "valid_until")
            try:
                replace(now, valid_from=start, valid_until=end)
            except ValueError as err:
                raise StoreInputError(str(err)) from None
            _touch(conn, pid)
            conn.execute("UPDATE person_access SET valid_from = ?, valid_until = ? WHERE person_id = ?",
                         (_iso(start), _iso(end), pid))
        log.info("store %s: %s is valid from %s until %s", self._db.path, stored, start or "always",
                 end or "always")
        return self.get(stored)

    def set_enabled(self, name: str, enabled: bool) -> PersonAccess:
        """Enable or disable ``name`` (a disabled person is refused at every door; their data stays)."""
        with self._db.write("enable or disable in") as conn:
            pid, stored = self._person(conn, name)
            _touch(conn, pid)
            conn.execute("UPDATE person_access SET enabled = ? WHERE person_id = ?", (int(bool(enabled)), pid))
        log.info("store %s: %s %s", self._db.path, stored, "enabled" if enabled else "disabled")
        return self.get(stored)

    def add_badge(self, name: str, badge: str) -> str:
        """Give ``name`` the badge ``badge``; returns the stored name. Adding it again does nothing.

        Raises:
            StoreInputError: not a badge id. StoreError: the badge is someone else's (nothing is changed).
        """
        clean = _badge(badge)
        with self._db.write("add a badge to") as conn:
            pid, stored = self._person(conn, name)
            owner = conn.execute("SELECT p.name, p.id FROM badges b JOIN people p ON p.id = b.person_id "
                                 "WHERE b.badge_id = ?", (clean,)).fetchone()
            if owner is not None and owner[1] != pid:
                raise StoreError(f"badge {badge_fingerprint(clean)} is {owner[0]}'s already: remove it from them "
                                 "first (facegate people unbadge BADGE)")
            conn.execute("INSERT OR IGNORE INTO badges (badge_id, person_id, added) VALUES (?, ?, ?)",
                         (clean, pid, utc_now()))
        log.info("store %s: badge %s added to %s", self._db.path, badge_fingerprint(clean), stored)
        return stored

    def remove_badge(self, badge: str) -> str:
        """Take the badge ``badge`` from whoever has it; returns their name. Raises StoreError if nobody has it."""
        clean = _badge(badge)
        with self._db.write("remove a badge from") as conn:
            owner = conn.execute("SELECT p.name FROM badges b JOIN people p ON p.id = b.person_id "
                                 "WHERE b.badge_id = ?", (clean,)).fetchone()
            if owner is None:
                raise StoreError(f"nobody has the badge {badge_fingerprint(clean)}")
            conn.execute("DELETE FROM badges WHERE badge_id = ?", (clean,))
        log.info("store %s: badge %s removed from %s", self._db.path, badge_fingerprint(clean), owner[0])
        return str(owner[0])


def _badge(badge: Any) -> str:
    try:
        return check_badge_id(badge)
    except ValueError as err:
        raise StoreInputError(str(err)) from None


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _touch(conn: sqlite3.Connection, pid: int) -> None:
    """The person's ``person_access`` row, created with the defaults if missing, marked as changed now."""
    conn.execute("INSERT INTO person_access (person_id, updated) VALUES (?, ?) "
                 "ON CONFLICT(person_id) DO UPDATE SET updated = excluded.updated", (pid, utc_now()))


# -- export and import (the store's export file carries the access data: edge.storage.transfer) ----------------


def export_fields(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Each person's access data as the export file writes it, by stored name (inside a read transaction)."""
    snapshot = read_snapshot(conn)
    return {name: {"groups": sorted(p.groups), "valid_from": _iso(p.valid_from), "valid_until": _iso(p.valid_until),
                   "enabled": p.enabled, "badges": snapshot.badges_of(name)} for name, p in snapshot.people.items()}


def import_fields(conn: sqlite3.Connection, people: Iterable[tuple[Any, str, Mapping[str, Any]]]) -> None:
    """Set the access data an import file gives (``(person id, stored name, fields)``, fields absent from the file
    ``None``), inside the import's write transaction: a field the file leaves out is left as it is.

    The badges of the people the file gives badges for are replaced first, so badges may move between them.

    Raises:
        StoreInputError: a badge of the file belongs to someone else of the store (the transaction rolls back).
    """
    items = list(people)
    for pid, _, fields in items:
        if fields.get("badges") is not None:
            conn.execute("DELETE FROM badges WHERE person_id = ?", (pid,))
    now = utc_now()
    for pid, name, fields in items:
        given = {k: fields.get(k) for k in ("groups", "valid_from", "valid_until", "enabled", "badges")}
        if all(v is None for v in given.values()):
            continue
        _touch(conn, pid)
        if given["groups"] is not None:
            conn.execute("DELETE FROM person_groups WHERE person_id = ?", (pid,))
            conn.executemany("INSERT INTO person_groups (person_id, name) VALUES (?, ?)",
                             [(pid, g) for g in sorted(set(given["groups"]))])
        for key in ("valid_from", "valid_until"):
            if given[key] is not None:
                conn.execute(f"UPDATE person_access SET {key} = ? WHERE person_id = ?", (given[key], pid))
        if given["enabled"] is not None:
            conn.execute("UPDATE person_access SET enabled = ? WHERE person_id = ?", (int(given["enabled"]), pid))
        for badge in given["badges"] or ():
            owner = conn.execute("SELECT p.name FROM badges b JOIN people p ON p.id = b.person_id "
                                 "WHERE b.badge_id = ?", (badge,)).fetchone()
            if owner is not None:
                raise StoreInputError(f"the badge {badge_fingerprint(badge)} of {name!r} in the file is "
                                      f"{owner[0]}'s in the store: nothing was imported")
            conn.execute("INSERT INTO badges (badge_id, person_id, added) VALUES (?, ?, ?)", (badge, pid, now))


# -- the daemon's reader, and check-config's -------------------------------------------------------------------


class AccessReader:
    """The access data of the store at ``path``, read again only when the file changed (the door asks at every
    decision: a change made by ``facegate people`` in another process is seen at the next one).

    It follows the path: a file replaced under it (another inode) is opened in its place. It opens the file
    read-write without creating it (SQLite's WAL needs that to read), and never writes.
    """

    def __init__(self, path: str | os.PathLike, *, timeout: float = 2.0):
        self.path = Path(path)
        self._timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._version: int | None = None
        self._snapshot: AccessSnapshot | None = None

    def snapshot(self) -> AccessSnapshot:
        """Everyone's access data now.

        Raises:
            StoreError: the file is not there, cannot be read, or holds corrupt access data.
        """
        try:
            st = self.path.stat()
        except OSError as err:
            self.close()
            raise StoreError(f"the store {self.path} is not there ({err.strerror})") from None
        identity = (st.st_dev, st.st_ino)
        try:
            if identity != self._identity or self._conn is None:
                self.close()
                self._conn = sqlite3.connect(f"file:{quote(str(self.path))}?mode=rw", uri=True,
                                             timeout=self._timeout, isolation_level=None, check_same_thread=False)
                self._identity = identity
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if self._snapshot is None or version != self._version:
                self._conn.execute("BEGIN")
                try:
                    self._snapshot = read_snapshot(self._conn)
                finally:
                    self._conn.execute("COMMIT")
                self._version = version
                log.debug("access data of %s read: %d people, %d badges", self.path, len(self._snapshot.people),
                          len(self._snapshot.badges))
        except sqlite3.Error as err:
            self.close()
            raise StoreError(f"cannot read the access data of {self.path}: {err}") from None
        return self._snapshot

    def close(self) -> None:
        """Close the connection (idempotent); the next :meth:`snapshot` opens it again."""
        if self._conn is not None:
            self._conn.close()
        self._conn, self._identity, self._version, self._snapshot = None, None, None, None


def read_groups(path: str | os.PathLike) -> set[str]:
    """Every group someone in the store at ``path`` is in, read without writing anything (no migration, no WAL
    switch): what ``facegate check-config`` compares a door's policy with. A store of schema version 1: none.

    Raises:
        StoreError: the file cannot be read as a store.
    """
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error as err:
        raise StoreError(f"cannot open {path}: {err}") from None
    try:
        conn.execute("BEGIN")
        return read_snapshot(conn).groups()
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the groups of {path}: {err}") from None
    finally:
        conn.close()
