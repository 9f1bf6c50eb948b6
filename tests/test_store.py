"""The encoding store on real SQLite files: durability, refusals, atomicity, other processes' changes."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edge.core.names import MAX_NAME_LENGTH, check_name
from edge.errors import FacegateError, StoreError, StoreInputError
from edge.storage.store import Entry, Person
from tests.store_helpers import MODEL, OTHER_MODEL, REPO, D, open_store, sha, unit

# -- round trip and file properties -----------------------------------------------------------------------


def test_round_trip_after_reopening(filled):
    path, data = filled
    with open_store(path, create=False) as store:
        assert store.model_sha256 == MODEL and store.embedding_size == D and store.path == path
        people = store.people()
        assert [p.name for p in people] == sorted(data)
        assert {p.name: p.encodings for p in people} == {n: len(e) for n, e in data.items()}
        for name, enc in data.items():
            got = store.encodings(name)
            assert got.dtype == np.float32 and got.shape == enc.shape and np.array_equal(got, enc)
            entries = store.entries(name)
            assert [e.source for e in entries] == [f"{name}/{i}.jpg" for i in range(len(enc))]
            assert [e.quality for e in entries] == [10.0 + i for i in range(len(enc))]
            assert all(isinstance(e, Entry) and e.name == name for e in entries)
        names, matrix = store.matrix()
        assert matrix.dtype == np.float32 and matrix.flags.c_contiguous and matrix.shape == (6, D)
        expected = np.concatenate(list(data.values()))
        assert np.array_equal(matrix, expected) and names == [n for n, e in data.items() for _ in e]


def test_float64_input_and_a_single_vector_are_stored_as_float32_rows(tmp_path, rng):
    one = unit(rng, 1, 16)[0].astype(np.float64)
    with open_store(tmp_path / "s.db", embedding_size=16) as store:
        (row,) = store.add("Ann", one)
        assert store.encodings("Ann").shape == (1, 16)
        assert np.array_equal(store.encodings("Ann")[0], one.astype(np.float32))
        assert [e.id for e in store.entries("Ann")] == [row]


def test_people_times_are_utc_iso8601(filled):
    path, _ = filled
    with open_store(path) as store:
        person = store.people()[0]
        assert isinstance(person, Person)
        for value in (person.added, person.updated, store.entries(person.name)[0].added):
            assert value.endswith("+00:00") and value[10] == "T"


def test_new_file_is_private_from_the_start(tmp_path, rng):
    path = tmp_path / "sub" / "store.db"
    old = os.umask(0)  # with no umask, only the store's own mode keeps others out
    try:
        with open_store(path) as store:
            store.add("Ann", unit(rng, 2))
            for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    finally:
        os.umask(old)


def test_wal_journal(filled):
    path, _ = filled
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_the_embedding_size_comes_from_the_caller(tmp_path, rng):
    with open_store(tmp_path / "s.db", embedding_size=512) as store:
        store.add("Ann", unit(rng, 2, 512))
        assert store.matrix()[1].shape == (2, 512)
        with pytest.raises(StoreError, match=r"shape \(k, 512\)"):
            store.add("Ann", unit(rng, 1, 128))


def test_empty_store(tmp_path):
    with open_store(tmp_path / "s.db", embedding_size=32) as store:
        names, matrix = store.matrix()
        assert names == [] and matrix.shape == (0, 32) and matrix.dtype == np.float32
        assert store.people() == []


# -- refusals when opening ---------------------------------------------------------------------------------


def test_a_store_of_another_model_is_refused_untouched(filled):
    path, _ = filled
    before = sha(path)
    with pytest.raises(StoreError) as err:
        open_store(path, model_sha256=OTHER_MODEL)
    message = str(err.value)
    assert MODEL[:12] in message and OTHER_MODEL[:12] in message and "never mixed" in message
    assert sha(path) == before


def test_embedding_size_mismatch_is_refused(filled):
    path, _ = filled
    with pytest.raises(StoreError, match="128 values.*makes 64"):
        open_store(path, embedding_size=64)


def test_missing_file_without_create(tmp_path):
    path = tmp_path / "none.db"
    with pytest.raises(StoreError, match="none.db does not exist"):
        open_store(path, create=False)
    assert not path.exists()


@pytest.mark.parametrize("bad", [{"model_sha256": "abc"}, {"embedding_size": 0}, {"embedding_size": 1.5}])
def test_bad_arguments(tmp_path, bad):
    with pytest.raises(StoreError):
        open_store(tmp_path / "s.db", **bad)


def test_unknown_schema_version_is_refused(filled):
    path, _ = filled
    conn = sqlite3.connect(path)
    conn.execute("UPDATE facegate_meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    before = sha(path)
    with pytest.raises(StoreError, match="schema version 99"):
        open_store(path)
    assert sha(path) == before


def _assert_refused_untouched(path: Path) -> None:
    before = sha(path)
    with pytest.raises(StoreError, match="is corrupt or not a facegate store.*left untouched"):
        open_store(path)
    assert sha(path) == before
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()


def test_random_bytes_are_refused_untouched(tmp_path, rng):
    path = tmp_path / "random.db"
    path.write_bytes(rng.bytes(10_000))
    _assert_refused_untouched(path)


def test_an_sqlite_header_with_garbage_is_refused_untouched(tmp_path):
    path = tmp_path / "zeros.db"
    path.write_bytes(b"SQLite format 3\x00" + bytes(5000))
    _assert_refused_untouched(path)


def test_a_truncated_store_is_refused_untouched(tmp_path, rng):
    path = tmp_path / "store.db"
    with open_store(path) as store:
        for i in range(40):
            store.add(f"person {i}", unit(rng, 5))
    data = path.read_bytes()
    assert len(data) > 100_000  # the encodings are in the main file, not only in the WAL
    path.write_bytes(data[: len(data) // 2])
    _assert_refused_untouched(path)


def test_a_damaged_page_inside_a_store_is_refused_untouched(tmp_path, rng):
    """The schema and the stamp read fine; only PRAGMA quick_check finds the broken page of encodings."""
    path = tmp_path / "store.db"
    with open_store(path) as store:
        for i in range(40):
            store.add(f"person {i}", unit(rng, 5))
    data = bytearray(path.read_bytes())
    page = 4096
    middle = (len(data) // page // 2) * page
    data[middle:middle + page] = rng.bytes(page)
    path.write_bytes(bytes(data))
    _assert_refused_untouched(path)


def test_another_sqlite_database_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY, payload BLOB)")
    conn.execute("INSERT INTO outbox (payload) VALUES (x'00ff')")
    conn.commit()
    conn.close()
    _assert_refused_untouched(path)


def test_an_empty_file_is_initialised_only_with_create(tmp_path, rng):
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(StoreError, match="empty file"):
        open_store(path, create=False)
    assert path.stat().st_size == 0
    with open_store(path) as store:
        store.add("Ann", unit(rng, 1))
    with open_store(path, create=False) as store:
        assert [p.name for p in store.people()] == ["Ann"]


# -- locks -------------------------------------------------------------------------------------------------


def test_a_writer_holding_the_lock_blocks_changes_not_reading(filled, rng):
    path, data = filled
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with open_store(path, timeout=0.2) as store:
            assert len(store.matrix()[0]) == 6  # WAL: the door keeps recognising during an enrolment
            start = time.monotonic()
            with pytest.raises(StoreError, match="is locked by another process") as err:
                store.add("Bob", unit(rng, 1))
            # not a performance figure: proves the 0.2 s timeout was used, not the 5 s default
            assert time.monotonic() - start < 4.0 and "0.2 s" in str(err.value)
            assert "Bob" not in {p.name for p in store.people()}
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with open_store(path) as store:  # the lock gone, the same change works
        store.add("Bob", unit(rng, 1))


def test_an_exclusively_locked_file_cannot_be_opened(filled):
    path, _ = filled
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        start = time.monotonic()
        with pytest.raises(StoreError, match="is locked by another process"):
            open_store(path, timeout=0.2)
        assert time.monotonic() - start < 4.0  # the given timeout, not the 5 s default
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# -- changes -----------------------------------------------------------------------------------------------


def test_add_to_an_existing_person_keeps_added_and_appends(filled, rng):
    path, data = filled
    with open_store(path) as store:
        first = store.people()[0]
        more = unit(rng, 2)
        ids = store.add(first.name, more)
        assert len(ids) == 2 and ids[0] > max(e.id for p in store.people() for e in store.entries(p.name)
                                              if e.id not in ids)
        person = next(p for p in store.people() if p.name == first.name)
        assert person.encodings == first.encodings + 2 and person.added == first.added
        assert np.array_equal(store.encodings(first.name)[-2:], more)


def test_remove_rename_and_their_errors(filled):
    path, data = filled
    with open_store(path) as store:
        assert store.remove("Ann") == 3
        assert "Ann" not in {p.name for p in store.people()}
        with pytest.raises(StoreError, match="'Ann' is not enrolled"):
            store.remove("Ann")
        with pytest.raises(StoreError, match="not enrolled"):
            store.encodings("Ann")
        with pytest.raises(StoreError, match="not enrolled"):
            store.entries("Ann")
        store.rename("李小龍", "Bruce Lee")
        assert np.array_equal(store.encodings("Bruce Lee"), data["李小龍"])
        with pytest.raises(StoreError, match="not enrolled"):
            store.rename("李小龍", "Somebody")
        with pytest.raises(StoreError, match="'José Ñúñez' is enrolled already"):
            store.rename("Bruce Lee", "José Ñúñez")
        store.rename("Bruce Lee", "  Bruce Lee ")  # the same name once stripped: nothing to do
        assert {p.name for p in store.people()} == {"Bruce Lee", "José Ñúñez"}
        names, _ = store.matrix()
        assert sorted(set(names)) == ["Bruce Lee", "José Ñúñez"]


def test_remove_encoding(filled):
    path, data = filled
    with open_store(path) as store:
        entries = store.entries("José Ñúñez")
        store.remove_encoding(entries[0].id)
        assert np.array_equal(store.encodings("José Ñúñez"), data["José Ñúñez"][1:])
        with pytest.raises(StoreError, match=f"no encoding has id {entries[0].id}"):
            store.remove_encoding(entries[0].id)
        with pytest.raises(StoreInputError, match="must be an integer"):
            store.remove_encoding("1")
        store.remove_encoding(entries[1].id)  # the last one: the person goes too
        assert "José Ñúñez" not in {p.name for p in store.people()}


@pytest.mark.parametrize("name", ["José Ñúñez", "李小龍", "Zoë O'Brien-Smith", "Анна", "x" * MAX_NAME_LENGTH])
def test_unicode_names_are_fine(tmp_path, rng, name):
    with open_store(tmp_path / "s.db") as store:
        store.add(name, unit(rng, 1))
    with open_store(tmp_path / "s.db") as store:
        assert [p.name for p in store.people()] == [name]


@pytest.mark.parametrize("name, problem", [
    ("", "must not be empty"), ("   \t ", "must not be empty"),
    ("bad\nname", "control characters"), ("tab\there", "control characters"), ("bell\x07", "control characters"),
    ("zero\u200bwidth", "control characters"), ("x" * (MAX_NAME_LENGTH + 1), f"at most {MAX_NAME_LENGTH}"),
    (None, "must be text"),
])
def test_bad_names_are_refused_with_the_reason(tmp_path, rng, name, problem):
    with open_store(tmp_path / "s.db") as store:
        with pytest.raises(StoreError, match=problem) as err:
            store.add(name, unit(rng, 1))
        assert "\n" not in str(err.value)
        # bad input, not a database problem: also a ValueError for callers that know nothing of facegate
        assert isinstance(err.value, StoreInputError) and isinstance(err.value, ValueError)
        with pytest.raises(ValueError, match=problem):
            check_name(name)
        assert store.people() == []


def test_names_are_stripped_and_nfc_normalised(tmp_path, rng):
    assert check_name("  Ann  ") == "Ann"
    composed, decomposed = "Jos\u00e9", "Jose\u0301"
    with open_store(tmp_path / "s.db") as store:
        store.add(decomposed, unit(rng, 1))
        store.add(composed + " ", unit(rng, 1))
        assert store.people() and [(p.name, p.encodings) for p in store.people()] == [(composed, 2)]


# -- matrix() and other writers ----------------------------------------------------------------------------


def test_matrix_sees_another_connections_changes(filled, rng):
    path, _ = filled
    with open_store(path) as daemon, open_store(path) as operator:
        names, first = daemon.matrix()
        assert daemon.matrix()[1] is first  # cached while nothing changes
        assert not first.flags.writeable
        new = unit(rng, 2)
        operator.add("Visitor", new)
        names, second = daemon.matrix()
        assert second.shape == (8, D) and names[-2:] == ["Visitor", "Visitor"]
        assert np.array_equal(second[-2:], new)
        operator.remove("Ann")
        names, third = daemon.matrix()
        assert third.shape == (5, D) and "Ann" not in names
        daemon.rename("Visitor", "Guest")  # and its own changes
        assert daemon.matrix()[0][-2:] == ["Guest", "Guest"]


def test_matrix_sees_another_process_enrolling(filled, rng):
    path, _ = filled
    new = unit(rng, 1)
    script = ("import sys, numpy as np; from edge.storage.store import EncodingStore\n"
              f"s = EncodingStore(sys.argv[1], model_sha256='{MODEL}', embedding_size={D}, create=False)\n"
              "s.add('Operator Added', np.frombuffer(bytes.fromhex(sys.argv[2]), np.float32)); s.close()\n")
    with open_store(path) as daemon:
        assert "Operator Added" not in daemon.matrix()[0]
        subprocess.run([sys.executable, "-c", script, str(path), new.tobytes().hex()], cwd=REPO, check=True)
        names, matrix = daemon.matrix()
        assert names[-1] == "Operator Added" and np.array_equal(matrix[-1], new[0])


# -- closing -----------------------------------------------------------------------------------------------


def test_close_twice_and_use_after_close(filled):
    path, _ = filled
    store = open_store(path)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="is closed"):
        store.matrix()
    with open_store(path) as again:
        pass
    with pytest.raises(StoreError, match="is closed"):
        again.people()
    assert issubclass(StoreError, FacegateError)
