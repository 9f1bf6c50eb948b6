"""One person per name key in the store: case, white space and Unicode form do not make another person."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from edge.core.names import name_key
from edge.errors import StoreError, StoreInputError
from tests.store_helpers import D, content, open_store, same_content, unit

# -- one person per name key: case, white space and Unicode form do not make another person -------------


def test_name_key():
    assert name_key("  BEN   Affleck ") == name_key("ben affleck") == "ben affleck"
    assert name_key("\uff22\uff25\uff2e\u3000affleck") == "ben affleck"  # full-width letters, ideographic space
    assert name_key("Stra\u00dfe") == name_key("STRASSE") and name_key("Jose\u0301") == name_key("JOS\u00c9")
    assert name_key("ben_afflek") != name_key("ben afflek")  # only white space is white space
    with pytest.raises(StoreInputError, match="must not be empty"):
        name_key("   ")


@pytest.mark.parametrize("variant", ["ben  affleck", "BEN AFFLECK", "  Ben \u3000Affleck ", "\uff22en Affleck"])
def test_add_under_another_spelling_adds_to_the_person_keeping_their_spelling(tmp_path, rng, variant):
    first, more = unit(rng, 2), unit(rng, 3)
    with open_store(tmp_path / "s.db") as store:
        store.add("Ben Affleck", first)
        ids = store.add(variant, more)
        assert [(p.name, p.encodings) for p in store.people()] == [("Ben Affleck", 5)]
        assert np.array_equal(store.encodings(variant), np.concatenate([first, more]))
        assert [e.id for e in store.entries(variant)][-3:] == ids
        assert {e.name for e in store.entries(variant)} == {"Ben Affleck"}
        assert store.matrix()[0] == ["Ben Affleck"] * 5
        person = store.person(variant)
        assert person is not None and (person.name, person.encodings) == ("Ben Affleck", 5)
        assert store.person("Ben Afleck") is None


def test_lookups_remove_and_rename_find_a_person_by_key(filled):
    path, data = filled
    with open_store(path) as store:
        assert np.array_equal(store.encodings("  ann "), data["Ann"])
        assert np.array_equal(store.encodings("JOSE\u0301 ñÚÑEZ"), data["José Ñúñez"])
        store.rename("ANN", "Ann Smith")
        assert np.array_equal(store.encodings("ann smith"), data["Ann"])
        store.rename("ann   smith", "ANN SMITH")  # the same key: the person is respelt
        assert "ANN SMITH" in {p.name for p in store.people()}
        store.rename("Ann Smith", "ANN SMITH")  # already so spelt: nothing to do
        assert store.remove("ann smith") == 3
        assert {p.name for p in store.people()} == {"José Ñúñez", "李小龍"}


def test_rename_to_a_name_another_person_has_by_key_is_refused(filled):
    path, data = filled
    with open_store(path) as store:
        before = content(store)
        with pytest.raises(StoreError, match=r"^'ann' is enrolled already \(as 'Ann'\)$"):
            store.rename("李小龍", "ann")
        with pytest.raises(StoreError, match="'JOSÉ  ÑÚÑEZ' is enrolled already"):
            store.rename("Ann", "JOSÉ  ÑÚÑEZ")
        assert same_content(content(store), before)


def test_import_matches_people_by_key_and_keeps_the_stored_spelling(filled, tmp_path, rng):
    path, data = filled
    out = tmp_path / "staff.json"
    with open_store(path) as store:
        store.rename("Ann", "ANN  O'NEIL")
        store.export(out)
    with open_store(tmp_path / "other.db") as other:
        mine = unit(rng, 2)
        other.add("Ann O'Neil", mine)
        assert other.import_(out) == 6
        people = {p.name: p.encodings for p in other.people()}
        assert people == {"Ann O'Neil": 5, "José Ñúñez": 2, "李小龍": 1}
        assert np.array_equal(other.encodings("Ann O'Neil"), np.concatenate([mine, data["Ann"]]))
        assert other.import_(out, replace=True) == 6
        assert {p.name: p.encodings for p in other.people()} == {"Ann O'Neil": 3, "José Ñúñez": 2, "李小龍": 1}
        assert np.array_equal(other.encodings("ann o'neil"), data["Ann"])


def legacy_duplicates(path: Path) -> None:
    """Make ``filled``'s store one written before name keys: 'José Ñúñez' respelt 'ANN', beside 'Ann'."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE people SET name = 'ANN' WHERE name = 'José Ñúñez'")
    conn.close()


def test_a_store_from_before_keys_with_two_people_of_one_key(filled, tmp_path, rng):
    path, data = filled
    legacy_duplicates(path)
    out = tmp_path / "staff.json"
    with open_store(path) as store:
        before = content(store)
        assert np.array_equal(store.encodings("Ann"), data["Ann"])  # the exact spelling still finds each
        assert np.array_equal(store.encodings("ANN"), data["José Ñúñez"])
        for call in (lambda: store.encodings("ann"), lambda: store.add("  ann", unit(rng, 1)),
                     lambda: store.remove("aNN"), lambda: store.rename("ann", "Zed"), lambda: store.person("ann"),
                     lambda: store.rename("Ann", "ann")):
            with pytest.raises(StoreError, match=r"(matches 2 people \('ANN', 'Ann'\)|enrolled already \(as 'ANN'\))"):
                call()
        assert same_content(content(store), before)
        store.export(out)
        store.rename("ANN", "Zed")  # the way out
        person = store.person("ann")
        assert person is not None and person.name == "Ann"
    with open_store(tmp_path / "fresh.db") as fresh:
        twice = r"people\[1\]\.name 'Ann' is the same person as people\[0\]\.name 'ANN'"
        with pytest.raises(StoreInputError, match=twice):
            fresh.import_(out)
        assert fresh.people() == []


@pytest.mark.parametrize("bad, problem", [
    (lambda r: unit(r, 2, 64), r"shape \(k, 128\)"),
    (lambda r: np.zeros((0, D), np.float32), r"shape \(k, 128\)"),
    (lambda r: unit(r, 2) * 2.0, "L2 norm 2"),
    (lambda r: np.array([["a"] * D]), "real numbers"),
])
def test_bad_encodings_are_refused(tmp_path, rng, bad, problem):
    with open_store(tmp_path / "s.db") as store:
        with pytest.raises(StoreInputError, match=problem):
            store.add("Ann", bad(rng))
        assert store.people() == []


def test_an_add_that_fails_on_its_last_encoding_adds_nothing(filled, rng):
    path, _ = filled
    with open_store(path) as store:
        before = content(store)
        encodings = unit(rng, 4)
        encodings[-1, 5] = np.nan
        with pytest.raises(StoreError, match="row 3 holds a non-finite value"):
            store.add("New Person", encodings)
        with pytest.raises(StoreError, match="row 3 holds a non-finite"):
            store.add("Ann", encodings)
        with pytest.raises(StoreInputError, match="sources must be a list of 4"):
            store.add("Ann", unit(rng, 4), sources=["a.jpg"] * 3)
        with pytest.raises(StoreInputError, match=r"qualities\[1\] must be finite"):
            store.add("Ann", unit(rng, 2), qualities=[1.0, float("inf")])
        with pytest.raises(StoreInputError, match=r"qualities\[0\] must be finite"):
            store.add("Ann", unit(rng, 1), qualities=[10**400])
        with pytest.raises(StoreInputError, match=r"sources\[0\] must be a string or None"):
            store.add("Ann", unit(rng, 1), sources=[3])
        assert same_content(content(store), before)


def test_a_failure_inside_the_transaction_rolls_everything_back(filled, rng):
    """The third INSERT of an add fails in SQLite itself (a trigger another program left): nothing stays."""
    path, _ = filled
    conn = sqlite3.connect(path)
    conn.execute("CREATE TRIGGER refuse_third BEFORE INSERT ON encodings "
                 "WHEN (SELECT COUNT(*) FROM encodings) >= 8 BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    conn.commit()
    conn.close()
    with open_store(path) as store:
        before = content(store)
        with pytest.raises(StoreError, match="disk says no"):
            store.add("New Person", unit(rng, 3))  # rows 7 and 8 go in, the 9th fails
        with pytest.raises(StoreError, match="disk says no"):
            store.add("Ann", unit(rng, 3))
        assert same_content(content(store), before)
    with open_store(path) as store:
        assert same_content(content(store), before)
