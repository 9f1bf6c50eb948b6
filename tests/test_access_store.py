"""People's access data in the real SQLite store: the migration of an old store, the changes, export and import,
the daemon's reader (which sees another process's change at once), and ``facegate people`` subcommands."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from edge.cli import main
from edge.core.access import PersonAccess
from edge.errors import ExitCode, StoreError, StoreInputError
from edge.storage import sqlite as store_sqlite
from edge.storage.access_data import AccessReader, badge_fingerprint, read_groups
from tests.store_helpers import MODEL, REPO, content, open_store, same_content, sha, unit


def version_1_store(path: Path, rng) -> dict:
    """A store as facegate wrote it before access data (schema version 1), with two people."""
    conn = sqlite3.connect(path)
    conn.executescript(store_sqlite._SCHEMA)
    conn.executemany("INSERT INTO facegate_meta (key, value) VALUES (?, ?)", [
        ("format", "facegate-encodings"), ("schema_version", "1"), ("model_sha256", MODEL),
        ("embedding_size", "128"), ("created", "2024-05-01T10:00:00+00:00")])
    data = {"Ann": unit(rng, 2), "Bob": unit(rng, 1)}
    for pid, (name, vectors) in enumerate(data.items(), 1):
        conn.execute("INSERT INTO people (id, name, added, updated) VALUES (?, ?, ?, ?)",
                     (pid, name, "2024-05-01T10:00:00+00:00", "2024-05-01T10:00:00+00:00"))
        for v in vectors:
            conn.execute("INSERT INTO encodings (person_id, vector, source, quality, added) VALUES (?, ?, ?, ?, ?)",
                         (pid, store_sqlite.to_blob(v), None, None, "2024-05-01T10:00:00+00:00"))
    conn.commit()
    conn.close()
    return data


def test_an_old_store_opens_keeps_its_people_and_is_migrated(tmp_path, rng):
    path = tmp_path / "old.db"
    data = version_1_store(path, rng)
    assert read_groups(path) == set()  # read without writing: check-config on an old store
    with open_store(path) as store:
        names, matrix = store.matrix()
        assert names == ["Ann", "Ann", "Bob"]
        assert (matrix == [*data["Ann"], *data["Bob"]]).all()
        assert store.access.get("Ann") == PersonAccess("Ann")  # nobody has access data yet: enabled, always
        store.access.set_groups("Ann", ["staff"])
    meta = dict(sqlite3.connect(path).execute("SELECT key, value FROM facegate_meta"))
    assert meta["schema_version"] == "2"
    with open_store(path) as store:  # opened again: nothing to migrate, the data is there
        assert store.access.get("ann").groups == {"staff"}


def test_a_store_of_another_model_is_refused_before_any_migration(tmp_path, rng):
    path = tmp_path / "old.db"
    version_1_store(path, rng)
    before = sha(path)
    with pytest.raises(StoreError, match="made by model"):
        open_store(path, model_sha256="0" * 64)
    assert sha(path) == before


def test_access_data_is_set_read_and_follows_the_person(filled):
    path, _ = filled
    with open_store(path) as store:
        a = store.access
        assert a.set_groups("ann", ["Staff", "cleaning", "staff"]).groups == {"staff", "cleaning"}
        got = a.set_validity("Ann", valid_from="2025-02-01", valid_until=date(2025, 6, 30))
        assert (got.valid_from, got.valid_until) == (date(2025, 2, 1), date(2025, 6, 30))
        assert a.set_validity("Ann", valid_until=None).valid_from == date(2025, 2, 1)  # the other end kept
        assert not a.set_enabled("José Ñúñez", False).enabled
        assert a.add_badge("ANN", " 04A2B9C1 ") == "Ann"
        a.add_badge("Ann", "04A2B9C1")  # again: nothing changes
        store.rename("Ann", "Ann Smith")
        snap = a.snapshot()
        assert snap.person("Ann Smith").groups == {"staff", "cleaning"} and snap.badges == {"04A2B9C1": "Ann Smith"}
        assert snap.groups() == {"staff", "cleaning"}
        store.remove("Ann Smith")
        assert a.snapshot().badges == {}
        rows = sqlite3.connect(path).execute("SELECT COUNT(*) FROM person_groups").fetchone()[0]
        assert rows == 0  # the removed person's groups went with them


def test_bad_access_input_is_refused_and_changes_nothing(filled):
    path, _ = filled
    with open_store(path) as store:
        store.access.add_badge("Ann", "B-1")
        before = content(store), store.access.snapshot()
        for change, error, message in [
            (lambda: store.access.set_groups("Ann", ["bad group"]), StoreInputError, "not a group name"),
            (lambda: store.access.set_validity("Ann", valid_from="2025-13-01"), StoreInputError, "YYYY-MM-DD"),
            (lambda: store.access.set_validity("Ann", valid_from="2025-03-01", valid_until="2025-02-01"),
             StoreInputError, "before valid_from"),
            (lambda: store.access.add_badge("José Ñúñez", "B-1"), StoreError, "is Ann's already"),
            (lambda: store.access.add_badge("Ann", "has space"), StoreInputError, "not a badge id"),
            (lambda: store.access.remove_badge("B-2"), StoreError, "nobody has the badge"),
            (lambda: store.access.set_enabled("Nobody", False), StoreError, "is not enrolled"),
        ]:
            with pytest.raises(error, match=message):
                change()
        assert same_content(content(store), before[0]) and store.access.snapshot() == before[1]


def test_export_and_import_carry_the_access_data(filled, tmp_path):
    path, _ = filled
    with open_store(path) as store:
        store.access.set_groups("Ann", ["staff"])
        store.access.set_validity("Ann", valid_until="2025-06-30")
        store.access.set_enabled("李小龍", False)
        store.access.add_badge("Ann", "04A2B9C1")
        store.export(tmp_path / "staff.json")
        exported = store.access.snapshot()
    people = {p["name"]: p for p in json.loads((tmp_path / "staff.json").read_text())["people"]}
    assert people["Ann"]["groups"] == ["staff"] and people["Ann"]["badges"] == ["04A2B9C1"]
    assert people["Ann"]["valid_until"] == "2025-06-30" and people["李小龍"]["enabled"] is False
    with open_store(tmp_path / "fresh.db") as fresh:
        fresh.import_(tmp_path / "staff.json")
        assert fresh.access.snapshot() == exported


def test_an_import_without_access_fields_leaves_the_stores_access_data(filled, tmp_path):
    path, _ = filled
    with open_store(path) as store:
        store.export(tmp_path / "plain.json")
        document = json.loads((tmp_path / "plain.json").read_text())
        for person in document["people"]:  # an export from before access data
            for key in ("groups", "valid_from", "valid_until", "enabled", "badges"):
                del person[key]
        (tmp_path / "plain.json").write_text(json.dumps(document))
        store.access.set_groups("Ann", ["staff"])
        store.access.add_badge("Ann", "K1")
        store.import_(tmp_path / "plain.json", replace=True)
        assert store.access.get("Ann").groups == {"staff"} and store.access.snapshot().badges == {"K1": "Ann"}


def test_an_import_with_a_badge_of_someone_else_or_bad_access_data_imports_nothing(filled, tmp_path):
    path, _ = filled
    with open_store(path) as store:
        store.export(tmp_path / "all.json")
        document = json.loads((tmp_path / "all.json").read_text())
        store.access.add_badge("José Ñúñez", "K1")
        before = content(store), store.access.snapshot()
        only_ann = {**document, "people": [p for p in document["people"] if p["name"] == "Ann"]}
        only_ann["people"][0]["badges"] = ["K1"]
        (tmp_path / "steal.json").write_text(json.dumps(only_ann))
        with pytest.raises(StoreInputError, match="in the file is José Ñúñez's in the store: nothing was imported"):
            store.import_(tmp_path / "steal.json")
        for person_change, message in [({"groups": ["Not A Group"]}, "people[0].groups[0] is invalid"),
                                       ({"valid_from": "31.01.2025"}, "people[0].valid_from is not a date"),
                                       ({"valid_from": "2025-02-01", "valid_until": "2025-01-01"}, "before"),
                                       ({"enabled": "yes"}, "people[0].enabled")]:
            bad = {**document, "people": [{**document["people"][0], **person_change}]}
            (tmp_path / "bad.json").write_text(json.dumps(bad))
            with pytest.raises(StoreInputError, match=re.escape(message) if "[" in message else message):
                store.import_(tmp_path / "bad.json")
        twice = {**document, "people": [{**p, "badges": ["K9"]} for p in document["people"][:2]]}
        (tmp_path / "twice.json").write_text(json.dumps(twice))
        with pytest.raises(StoreInputError, match=r"people\[1\]\.badges: a badge of people\[0\] too"):
            store.import_(tmp_path / "twice.json")
        assert same_content(content(store), before[0]) and store.access.snapshot() == before[1]


def test_the_daemons_reader_sees_a_change_made_by_another_process_at_once(filled, tmp_path):
    path, _ = filled
    reader = AccessReader(path)
    assert reader.snapshot().person("Ann").enabled
    first = reader.snapshot()
    assert reader.snapshot() is first  # unchanged file: not read again
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
            "from tests.store_helpers import open_store\n"
            f"with open_store({str(path)!r}) as s: s.access.set_enabled('Ann', False)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert not reader.snapshot().person("Ann").enabled
    # replaced under it: the new file is read
    replacement = tmp_path / "new.db"
    with open_store(replacement) as other:
        other.add("Zoe", unit(np.random.default_rng(3), 1))
    replacement.replace(path)
    assert set(reader.snapshot().people) == {"Zoe"}
    path.unlink()
    with pytest.raises(StoreError, match="is not there"):
        reader.snapshot()
    reader.close()


def test_read_groups_reads_a_store_in_use_and_never_writes(filled):
    path, _ = filled
    with open_store(path) as store:
        store.access.set_groups("Ann", ["staff"])
        store.access.set_groups("李小龍", ["cleaning", "staff"])
        assert read_groups(path) == {"staff", "cleaning"}  # while the store is open (WAL)
    before = sha(path)
    assert read_groups(path) == {"staff", "cleaning"}
    assert sha(path) == before
    (path.parent / "junk.db").write_bytes(b"not sqlite at all" * 10)
    with pytest.raises(StoreError):
        read_groups(path.parent / "junk.db")


# -- facegate people ... -----------------------------------------------------------------------------------------


def cli(capsys, *argv: str) -> tuple[int, list[dict], str]:
    code = main([*argv])
    out = capsys.readouterr()
    return code, [json.loads(line) for line in out.out.splitlines() if line.startswith("{")], out.err + out.out


@pytest.fixture
def cli_store(tmp_path, weights_dir, rng) -> list[str]:
    """A store of the real int8 model's stamp with two people, and the options to use it."""
    card = json.loads((weights_dir / "facenet_int8.card.json").read_text())
    path = tmp_path / "people.sqlite"
    with open_store(path, model_sha256=card["sha256"]) as store:
        store.add("Ada Lovelace", unit(rng, 2))
        store.add("Bob", unit(rng, 1))
    return ["--store", str(path)]


def test_people_subcommands_set_and_show_access_data(capsys, cli_store, tmp_path):
    assert cli(capsys, "people", "groups", "ada lovelace", "staff", "cleaning", *cli_store, "--json")[1] == [{
        "name": "Ada Lovelace", "groups": ["cleaning", "staff"], "valid_from": None, "valid_until": None,
        "enabled": True, "badges": []}]
    code, lines, _ = cli(capsys, "people", "validity", "Ada Lovelace", "--from", "2025-01-01", "--until",
                         "2025-12-31", *cli_store, "--json")
    assert code == ExitCode.OK and (lines[0]["valid_from"], lines[0]["valid_until"]) == ("2025-01-01", "2025-12-31")
    assert cli(capsys, "people", "validity", "Ada Lovelace", "--from", "none", *cli_store, "--json")[1][0][
        "valid_from"] is None
    assert cli(capsys, "people", "badge", "Ada Lovelace", "04A2B9C1", *cli_store)[0] == ExitCode.OK
    assert cli(capsys, "people", "disable", "Bob", *cli_store)[0] == ExitCode.OK
    code, lines, _ = cli(capsys, "people", "list", *cli_store, "--json")
    listed = {r["name"]: r for r in lines if "name" in r}
    assert listed["Ada Lovelace"]["badges"] == [badge_fingerprint("04A2B9C1")]  # a fingerprint, never the id
    assert listed["Bob"]["enabled"] is False and listed["Ada Lovelace"]["encodings"] == 2
    code, _, text = cli(capsys, "people", "list", *cli_store)
    assert "Bob" in text and "DISABLED" in text and "04A2B9C1" not in text
    assert cli(capsys, "people", "enable", "bob", *cli_store, "--json")[1][0]["enabled"] is True
    assert cli(capsys, "people", "unbadge", "04A2B9C1", *cli_store)[0] == ExitCode.OK
    assert cli(capsys, "people", "show", "Ada Lovelace", *cli_store, "--json")[1][0]["badges"] == []


@pytest.mark.parametrize("argv, message", [
    (["people", "groups"], "usage: facegate people groups NAME"),
    (["people", "validity", "Bob"], "give --from or --until"),
    (["people", "validity", "Bob", "--until", "tomorrow"], "valid_until must be a date YYYY-MM-DD"),
    (["people", "disable", "Nobody"], "'Nobody' is not enrolled"),
    (["people", "badge", "Bob"], "usage: facegate people badge NAME BADGE_ID"),
    (["people", "unbadge", "NOPE"], "nobody has the badge"),
    (["people", "groups", "Bob", "two words"], "not a group name"),
])
def test_people_subcommands_refuse_bad_input_and_change_nothing(capsys, cli_store, argv, message):
    store = Path(cli_store[1])
    before = sha(store)
    code, _, text = cli(capsys, *argv, *cli_store)
    assert code == ExitCode.ERROR and message in text
    assert sha(store) == before
