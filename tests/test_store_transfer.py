"""The store's export file: a round trip, merge and replace, and every malformed file refused with nothing changed."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import numpy as np
import pytest

from edge.errors import StoreError, StoreInputError
from edge.storage.store import EncodingStore
from tests.store_helpers import MODEL, OTHER_MODEL, D, content, open_store, same_content, sha, unit

# -- export / import ---------------------------------------------------------------------------------------


def test_export_import_round_trip(filled, tmp_path):
    path, data = filled
    out = tmp_path / "staff.json"
    with open_store(path) as store:
        assert store.export(out) == 6
        original = content(store)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    document = json.loads(out.read_text("utf-8"))
    assert document["model_sha256"] == MODEL and document["embedding_size"] == D
    first = document["people"][0]["encodings"][0]["vector"]
    assert np.array_equal(np.frombuffer(base64.b64decode(first), "<f4"), data["Ann"][0])
    with open_store(tmp_path / "fresh.db") as fresh:
        assert fresh.import_(out) == 6
        copy = content(fresh)
        assert copy[0] == original[0] and copy[1] == original[1] and np.array_equal(copy[2], original[2])
        assert [[(e.source, e.quality, e.added) for e in es] for es in copy[3]] == \
               [[(e.source, e.quality, e.added) for e in es] for es in original[3]]
        assert fresh.import_(out) == 0  # the same encodings again: nothing new
        assert [p.encodings for p in fresh.people()] == [p.encodings for p in original[0]]


def test_import_merges_or_replaces(filled, tmp_path, rng):
    path, data = filled
    out = tmp_path / "staff.json"
    with open_store(path) as store:
        store.export(out)
    with open_store(tmp_path / "other.db") as other:
        mine = unit(rng, 2)
        other.add("Ann", mine)
        assert other.import_(out) == 6
        assert np.array_equal(other.encodings("Ann"), np.concatenate([mine, data["Ann"]]))
        assert other.import_(out, replace=True) == 6
        assert np.array_equal(other.encodings("Ann"), data["Ann"])


def test_import_from_another_model_is_refused(filled, tmp_path, rng):
    path, _ = filled
    out = tmp_path / "staff.json"
    with open_store(path) as store:
        store.export(out)
    with open_store(tmp_path / "other.db", model_sha256=OTHER_MODEL) as other:
        other.add("Someone", unit(rng, 1))
        before = content(other)
        with pytest.raises(StoreError) as err:
            other.import_(out)
        assert MODEL[:12] in str(err.value) and OTHER_MODEL[:12] in str(err.value)
        assert "never mixed" in str(err.value)
        assert same_content(content(other), before)


def _vector(values) -> str:
    return base64.b64encode(np.asarray(values, "<f4").tobytes()).decode()


# case -> (how the exported file is spoilt, what the one-line message must say). The filled store's export
# lists Ann (3 encodings), José Ñúñez (2), 李小龍 (1): the last person is people[2], with encodings[0] only.
LAST = "people[2].encodings[0]"
MALFORMED = {
    "not json": (lambda doc: "{not json", "is not a facegate export: not JSON"),
    "not an object": (lambda doc: [doc], "the document must be an object, got a list"),
    "wrong format": (lambda doc: {**doc, "format": "something else"},
                     "format must be 'facegate-encodings-export', got 'something else'"),
    "unknown version": (lambda doc: {**doc, "version": 2}, "version must be 1, got 2"),
    "no model": (lambda doc: {k: v for k, v in doc.items() if k != "model_sha256"}, "model_sha256 is missing"),
    "other size": (lambda doc: {**doc, "embedding_size": 64}, "holds encodings of 64 values, this store 128"),
    "bad vector encoding": (lambda doc: {**doc, "vector_encoding": "hex"},
                            "vector_encoding must be 'base64-float32-le', got 'hex'"),
    "bad export time": (lambda doc: {**doc, "exported": "last week"}, "exported is not an ISO-8601 time"),
    "people not a list": (lambda doc: {**doc, "people": {"Ann": []}}, "people must be a list, got an object"),
    "person not an object": (lambda doc: {**doc, "people": [*doc["people"][:2], "Ann"]},
                             "people[2] must be an object, got a string"),
    "bad base64": (lambda doc: _last_encoding(doc, vector="!!!not base64"), f"{LAST}.vector is not base64"),
    "vector not text": (lambda doc: _last_encoding(doc, vector=[0.5] * D),
                        f"{LAST}.vector must be a base64 string, got a list"),
    "no vector": (lambda doc: _last_encoding(doc, vector=None, drop="vector"), f"{LAST}.vector is missing"),
    "short vector": (lambda doc: _last_encoding(doc, vector=_vector(np.ones(D - 1) / np.sqrt(D - 1))),
                     f"{LAST}.vector is {4 * (D - 1)} bytes, not {D} float32 values"),
    "nan vector": (lambda doc: _last_encoding(doc, vector=_vector(np.full(D, np.nan))),
                   f"{LAST}.vector holds a non-finite value"),
    "unnormalised vector": (lambda doc: _last_encoding(doc, vector=_vector(np.ones(D))),
                            f"{LAST}.vector has L2 norm 11.31, not 1"),
    "bad quality": (lambda doc: _last_encoding(doc, quality="high"), f"{LAST}.quality must be a number, got a string"),
    "infinite quality": (lambda doc: _last_encoding(doc, quality=float("inf")), f"{LAST}.quality must be finite"),
    "boolean quality": (lambda doc: _last_encoding(doc, quality=True), f"{LAST}.quality must be a number"),
    "bad source": (lambda doc: _last_encoding(doc, source=5), f"{LAST}.source must be a string, got a number"),
    "bad time": (lambda doc: _last_encoding(doc, added="yesterday"),
                 f"{LAST}.added is not an ISO-8601 time: 'yesterday'"),
    "time out of range": (lambda doc: _last_person(doc, updated="0001-01-01T00:00:00+01:00"),
                          "people[2].updated is out of range"),
    "control character in a name": (lambda doc: _last_person(doc, name="evil\x1bname"),
                                    "people[2].name must not contain control characters (found U+001B)"),
    "name not text": (lambda doc: _last_person(doc, name=7), "people[2].name must be a string, got a number"),
    "duplicate name": (lambda doc: _last_person(doc, name=" Ann"),
                       "people[2].name 'Ann' appears twice (people[0] too)"),
    "no encodings": (lambda doc: _last_person(doc, encodings=[]), "people[2].encodings must not be empty"),
}


def _last_person(doc: dict, **change) -> dict:
    people = [dict(p) for p in doc["people"]]
    people[-1].update(change)
    return {**doc, "people": people}


def _last_encoding(doc: dict, drop: str | None = None, **change) -> dict:
    encodings = [dict(e) for e in doc["people"][-1]["encodings"]]
    encodings[-1].update(change)
    encodings[-1].pop(drop, None)
    return _last_person(doc, encodings=encodings)


def _import_refused(target: EncodingStore, out: Path) -> StoreInputError:
    """Import ``out`` into ``target``; it must be refused with one line naming the file, changing nothing."""
    before = content(target)
    with pytest.raises(StoreInputError) as err:
        target.import_(out)
    message = str(err.value)
    assert "\n" not in message and str(out) in message and isinstance(err.value, ValueError)
    assert same_content(content(target), before)
    return err.value


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_import_changes_nothing(filled, tmp_path, rng, case):
    """Only the last item is bad: the people before it must not be imported either; the message names it."""
    path, _ = filled
    out = tmp_path / "staff.json"
    with open_store(path) as store:
        store.export(out)
    spoil, expected = MALFORMED[case]
    bad = spoil(json.loads(out.read_text("utf-8")))
    out.write_text(bad if isinstance(bad, str) else json.dumps(bad), "utf-8")
    with open_store(tmp_path / "target.db") as target:
        target.add("Resident", unit(rng, 1))
        err = _import_refused(target, out)
    assert expected in str(err), str(err)


@pytest.mark.parametrize("where", ["the whole file", "inside people"])
def test_a_deeply_nested_import_file_is_refused_with_one_line(tmp_path, rng, where):
    """100000 nested lists: too deep for Python's JSON parser, which must not end in a RecursionError."""
    deep = "[" * 100_000 + "]" * 100_000
    out = tmp_path / "deep.json"
    out.write_text(deep if where == "the whole file" else
                   '{"format": "facegate-encodings-export", "version": 1, "people": ' + deep + "}")
    with open_store(tmp_path / "target.db") as target:
        target.add("Resident", unit(rng, 1))
        err = _import_refused(target, out)
    assert "nested too deeply" in str(err)


def test_nested_lists_that_parse_are_refused_at_the_first_bad_item(tmp_path, rng):
    out = tmp_path / "nested.json"
    out.write_text(json.dumps({"format": "facegate-encodings-export", "version": 1, "model_sha256": MODEL,
                               "embedding_size": D, "vector_encoding": "base64-float32-le"})[:-1]
                   + ', "people": ' + "[" * 500 + "]" * 500 + "}")
    with open_store(tmp_path / "target.db") as target:
        err = _import_refused(target, out)
    assert "people[0] must be an object, got a list" in str(err)


def test_import_accepts_what_it_always_accepted(tmp_path, rng):
    """Optional keys absent (as the benchmark writes), unknown keys, upper-case hex, zone-less times, int quality."""
    v = unit(rng, 3)
    document = {"format": "facegate-encodings-export", "version": 1, "model_sha256": MODEL.upper(),
                "embedding_size": D, "vector_encoding": "base64-float32-le", "comment": "made by hand",
                "people": [{"name": "  Jose\u0301 ", "nickname": "J", "encodings": [
                    {"vector": _vector(v[0]), "note": 1},
                    {"vector": _vector(v[1]), "source": "a.jpg", "quality": 3, "added": "2025-01-31T08:15:00"},
                    {"vector": _vector(v[2]), "source": None, "quality": None, "added": "2025-01-31T09:15:00+01:00"}]}]}
    out = tmp_path / "hand.json"
    out.write_text(json.dumps(document), "utf-8")
    with open_store(tmp_path / "s.db") as store:
        assert store.import_(out) == 3
        (person,) = store.people()
        assert person.name == "Jos\u00e9" and person.added.endswith("+00:00") and person.updated.endswith("+00:00")
        assert np.array_equal(store.encodings(person.name), v)
        entries = store.entries(person.name)
        assert [(e.source, e.quality) for e in entries] == [(None, None), ("a.jpg", 3.0), (None, None)]
        assert entries[0].added.endswith("+00:00")
        assert [e.added for e in entries[1:]] == ["2025-01-31T08:15:00+00:00"] * 2
        out.write_text(json.dumps({**document, "people": []}), "utf-8")
        assert store.import_(out) == 0


def test_import_of_a_missing_file_and_export_over_the_store(filled, tmp_path):
    path, _ = filled
    with open_store(path) as store:
        with pytest.raises(StoreError, match="cannot read") as err:
            store.import_(tmp_path / "nope.json")
        assert not isinstance(err.value, StoreInputError)  # a file problem, not bad input
        before = sha(path)
        with pytest.raises(StoreError, match="over the store itself"):
            store.export(path)
        with pytest.raises(StoreError, match="cannot write"):
            store.export(tmp_path / "no such folder" / "x.json")
    assert sha(path) == before
