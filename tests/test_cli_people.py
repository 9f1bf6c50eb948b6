"""The operator CLI on real photos: enroll, identify, verify, people; and the bad inputs."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import EXIT_ERROR, EXIT_OK, EXIT_REFUSED, main
from tests.conftest import photo_paths


def run(capsys, *argv) -> tuple[int, list[dict], str]:
    code = main([*argv])
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]
    return code, lines, out.err


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory, photos_dir) -> Path:
    """A store with every celebrity's train photos enrolled through the CLI."""
    store = tmp_path_factory.mktemp("store") / "store.db"
    by_person: dict[str, list[str]] = {}
    for person, path in photo_paths(photos_dir, "train"):
        by_person.setdefault(person, []).append(str(path))
    for person, paths in by_person.items():
        code = main(["enroll", person, *paths, "--store", str(store), "--json"])
        assert code in (EXIT_OK, EXIT_REFUSED)
    return store


def test_enroll_reports_each_rejected_photo_with_its_reason(tmp_path, photos_dir, capsys):
    ben = [str(p) for person, p in photo_paths(photos_dir, "train") if person == "ben_afflek"]
    code, lines, _ = run(capsys, "enroll", "Ben Affleck", *ben, "--store", str(tmp_path / "s.db"), "--json")
    rejected = [r for r in lines if not r["added"]]
    assert code == EXIT_REFUSED and rejected
    assert any("no face found" in r["reason"] for r in rejected)  # the full-body street photo
    assert len([r for r in lines if r["added"]]) >= 10


def test_identify_every_val_photo(enrolled, photos_dir, capsys):
    val = photo_paths(photos_dir, "val")
    code, lines, _ = run(capsys, "identify", *[str(p) for _, p in val], "--store", str(enrolled), "--json")
    assert len(lines) == 25
    got = {r["photo"]: r["identity"] for r in lines}
    wrong = [(person, got[str(p)]) for person, p in val if got[str(p)] != person]
    assert wrong == []
    assert code == EXIT_OK
    assert all(r["distance"] < r["threshold"] for r in lines)


def test_verify_true_and_false_claims(enrolled, photos_dir, capsys):
    madonna = [str(p) for person, p in photo_paths(photos_dir, "val") if person == "madonna"]
    code, lines, _ = run(capsys, "verify", "--name", "madonna", *madonna, "--store", str(enrolled), "--json")
    assert code == EXIT_OK and all(r["accepted"] for r in lines)
    code, lines, _ = run(capsys, "verify", "--name", "elton_john", *madonna, "--store", str(enrolled), "--json")
    assert code == EXIT_REFUSED and not any(r["accepted"] for r in lines)


def test_a_stranger_is_not_in_the_database(tmp_path, photos_dir, capsys):
    store = str(tmp_path / "s.db")
    for person in ("madonna", "elton_john"):
        paths = [str(p) for who, p in photo_paths(photos_dir, "train") if who == person]
        main(["enroll", person, *paths, "--store", store])
    strangers = [str(p) for who, p in photo_paths(photos_dir, "val") if who in ("jerry_seinfeld", "mindy_kaling")]
    capsys.readouterr()
    code, lines, _ = run(capsys, "identify", *strangers, "--store", store, "--json")
    assert code == EXIT_REFUSED
    assert [r["identity"] for r in lines] == [None] * len(strangers)


def test_people_list_rename_remove_export_import(enrolled, tmp_path, capsys):
    store = tmp_path / "copy.db"
    src = sqlite3.connect(enrolled)
    dst = sqlite3.connect(store)
    src.backup(dst)
    src.close()
    dst.close()
    code, lines, _ = run(capsys, "people", "list", "--store", str(store), "--json")
    assert code == EXIT_OK and {r["name"] for r in lines} == {
        "ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling"}
    assert run(capsys, "people", "rename", "ben_afflek", "Ben Affleck", "--store", str(store))[0] == EXIT_OK
    assert run(capsys, "people", "export", str(tmp_path / "staff.json"), "--store", str(store))[0] == EXIT_OK
    assert run(capsys, "people", "remove", "madonna", "--store", str(store))[0] == EXIT_OK
    names = {r["name"] for r in run(capsys, "people", "list", "--store", str(store), "--json")[1]}
    assert "madonna" not in names and "Ben Affleck" in names
    fresh = tmp_path / "fresh.db"
    assert run(capsys, "people", "import", str(tmp_path / "staff.json"), "--store", str(fresh))[0] == EXIT_OK
    names = {r["name"] for r in run(capsys, "people", "list", "--store", str(fresh), "--json")[1]}
    assert names == {"Ben Affleck", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling"}


# -- bad input: a clear one-line message, a meaningful exit code, the store unchanged ----------------------


@pytest.mark.parametrize("name", ["", "   ", "bad\nname", "tab\there", "bell\x07"])
def test_bad_names_are_refused_and_change_nothing(enrolled, photos_dir, capsys, name):
    before = sha(enrolled)
    _, photo = photo_paths(photos_dir, "val")[0]
    code, _, err = run(capsys, "enroll", name, str(photo), "--store", str(enrolled))
    assert code == EXIT_ERROR and err.startswith("facegate: error:") and len(err.strip().splitlines()) == 1
    assert sha(enrolled) == before


def test_bad_photos_are_rejected_with_reasons(tmp_path, photos_dir, capsys):
    zero = tmp_path / "zero.jpg"
    zero.write_bytes(b"")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 10)
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((300, 300, 3), 200, np.uint8))
    _, good = photo_paths(photos_dir, "val")[0]
    blurred = tmp_path / "blurred.png"
    cv2.imwrite(str(blurred), cv2.GaussianBlur(cv2.imread(str(good)), (15, 15), 0))
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), cv2.resize(cv2.imread(str(good)), None, fx=0.2, fy=0.2))  # a 27 px face
    code, lines, _ = run(capsys, "enroll", "someone", str(zero), str(corrupt), str(wall), str(blurred), str(tiny),
                         "--store", str(tmp_path / "s.db"), "--json")
    reasons = {Path(r["photo"]).name: r.get("reason", "") for r in lines}
    assert code == EXIT_REFUSED
    assert "empty" in reasons["zero.jpg"]
    assert reasons["corrupt.jpg"]
    assert reasons["wall.png"] == "no face found"
    assert "blurred" in reasons["blurred.png"]
    assert "smaller than" in reasons["tiny.png"] or "no face found" in reasons["tiny.png"]
    assert not any(r["added"] for r in lines)


def test_force_accepts_a_blurred_photo_but_never_one_without_a_face(tmp_path, photos_dir, capsys):
    _, good = photo_paths(photos_dir, "val")[0]
    blurred = tmp_path / "blurred.png"
    cv2.imwrite(str(blurred), cv2.GaussianBlur(cv2.imread(str(good)), (15, 15), 0))
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((300, 300, 3), 200, np.uint8))
    code, lines, _ = run(capsys, "enroll", "someone", str(blurred), str(wall), "--force",
                         "--store", str(tmp_path / "s.db"), "--json")
    added = {Path(r["photo"]).name: r["added"] for r in lines}
    assert added == {"blurred.png": True, "wall.png": False} and code == EXIT_REFUSED


def test_a_store_from_another_model_is_refused(enrolled, photos_dir, capsys):
    before = sha(enrolled)
    _, photo = photo_paths(photos_dir, "val")[0]
    code, _, err = run(capsys, "identify", str(photo), "--store", str(enrolled), "--variant", "float32")
    assert code == EXIT_ERROR and "model" in err
    code, _, err = run(capsys, "enroll", "x", str(photo), "--store", str(enrolled), "--variant", "float32")
    assert code == EXIT_ERROR
    assert sha(enrolled) == before


def test_missing_store_missing_model_and_corrupt_store(tmp_path, photos_dir, capsys):
    _, photo = photo_paths(photos_dir, "val")[0]
    code, _, err = run(capsys, "identify", str(photo), "--store", str(tmp_path / "none.db"))
    assert code == EXIT_ERROR and "none.db" in err
    code, _, err = run(capsys, "identify", str(photo), "--model", str(tmp_path / "nope.tflite"))
    assert code == EXIT_ERROR and "nope.tflite" in err
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + bytes(5000))
    before = sha(corrupt)
    code, _, err = run(capsys, "enroll", "x", str(photo), "--store", str(corrupt))
    assert code == EXIT_ERROR and sha(corrupt) == before


def test_a_locked_store(enrolled, photos_dir, tmp_path, capsys):
    store = tmp_path / "locked.db"
    src, dst = sqlite3.connect(enrolled), sqlite3.connect(store)
    src.backup(dst)
    src.close()
    dst.close()
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        _, photo = photo_paths(photos_dir, "val")[0]
        code, _, err = run(capsys, "enroll", "x", str(photo), "--store", str(store))
        assert code == EXIT_ERROR and "locked" in err
    finally:
        holder.execute("ROLLBACK")
        holder.close()
