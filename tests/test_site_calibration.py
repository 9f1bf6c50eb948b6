"""``facegate calibrate --site``: the door's 1:N threshold measured on the store's own people, stored in the store,
and used by the door (``people list``, ``identify``, the daemon) only while it holds for the people enrolled.

Real model, real photos: the four celebrities but Mindy Kaling enrolled from their train photos through the CLI,
Mindy's train photos as the site's strangers (``--strangers``).
"""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.core.modelcard import ModelCard
from edge.core.openset import OpenSetGallery, derive_threshold, people_key, site_threshold, templates
from edge.errors import ExitCode, StoreError
from edge.storage.store import EncodingStore
from tests.conftest import photo_paths
from tests.test_cli_people import copy_store
from tests.test_cmd_calibrate import run_cli

PEOPLE = ("ben_afflek", "elton_john", "jerry_seinfeld", "madonna")  # mindy_kaling is the site's stranger
TARGET = 0.005


@pytest.fixture(scope="module")
def models(int8_model, blazeface_short) -> list:
    return ["--model", int8_model, "--detector", blazeface_short, "--threads", 2]


@pytest.fixture(scope="module")
def card(int8_model) -> ModelCard:
    return ModelCard.for_model(int8_model)


def photos_of(photos_dir: Path, split: str, person: str) -> list[Path]:
    return [p for who, p in photo_paths(photos_dir, split) if who == person]


def enrol(store: Path, person: str, photos: list[Path], models: list) -> None:
    code, _, _, err = run_cli("enroll", person, *photos, "--store", store, "--json", *models)
    assert code in (ExitCode.OK, ExitCode.REFUSED), err  # refused: the photos the quality gate turns away


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory, photos_dir, models) -> Path:
    """A store with the train photos of everyone but Mindy, enrolled through the CLI."""
    store = tmp_path_factory.mktemp("enrolled") / "store.db"
    for person in PEOPLE:
        enrol(store, person, photos_of(photos_dir, "train", person), models)
    return store


@pytest.fixture(scope="module")
def mindy_dir(photos_dir) -> Path:
    return photos_dir / "train" / "mindy_kaling"


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory, enrolled, mindy_dir, models) -> tuple[Path, dict]:
    """A copy of ``enrolled`` after ``calibrate --site --strangers <Mindy's photos>``, and its JSON record."""
    store = copy_store(enrolled, tmp_path_factory.mktemp("calibrated") / "store.db")
    code, records, _, err = run_cli("calibrate", "--site", "--strangers", mindy_dir, "--store", store, "--json",
                                    *models)
    assert code == ExitCode.OK, err
    (record,) = records
    return store, record


def open_store(path: Path, card: ModelCard) -> EncodingStore:
    return EncodingStore(path, model_sha256=card.sha256, embedding_size=card.embedding_size, create=False)


def threshold_in_force(store: Path, models: list, *extra) -> dict:
    code, records, _, err = run_cli("people", "list", "--store", store, "--json", *models, *extra)
    assert code == ExitCode.OK, err
    return records[-1]["threshold"]


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a[:, None, :].astype(np.float64) - b[None, :, :], axis=2)


def test_the_record_matches_a_direct_computation(calibrated, card, face_model, mindy_dir):
    store_path, record = calibrated
    with open_store(store_path, card) as store:
        stored = store.site_calibration()
        names, matrix = store.matrix()
    assert stored == record["site_calibration"]
    people = sorted(set(names))
    own = np.array([people.index(n) for n in names])
    means = np.stack([matrix[own == k].astype(np.float64).mean(axis=0) for k in range(len(people))])
    tpl = means / np.linalg.norm(means, axis=1, keepdims=True)
    reference = card.reference_strangers()
    assert reference is not None
    folder = [a.encoding for a in (face_model.analyse(p) for p in sorted(mindy_dir.iterdir()))
              if a.encoding is not None]
    folder_matrix = np.stack(folder)
    d_reference, d_folder = distances(reference, tpl), distances(folder_matrix, tpl)
    d_left_out = distances(matrix, tpl)
    d_left_out[np.arange(len(names)), own] = np.inf  # a person left out is not compared with themselves
    n = len(people)
    fmr = 1 - (1 - TARGET) ** (1 / n)
    per_group = {}
    for group, d in (("reference", d_reference), ("left_out_people", d_left_out), ("folder", d_folder)):
        scores = np.sort(d[np.isfinite(d)])
        allowed = math.floor(fmr * len(scores))
        per_group[group] = (min(math.floor(float(np.nextafter(scores[allowed], -np.inf)) * 1000) / 1000,
                                card.threshold), len(scores))
    assert per_group["left_out_people"][1] == len(names) * (n - 1)  # nobody is compared with themselves
    decided_by = min(per_group, key=lambda g: per_group[g][0])  # the smallest: a site can only tighten the door
    assert stored["threshold"] == pytest.approx(per_group[decided_by][0], abs=1e-9)
    assert stored["group_thresholds"] == pytest.approx({g: v for g, (v, _) in per_group.items()}, abs=1e-9)
    assert stored["threshold"] <= stored["group_thresholds"]["reference"]
    assert (stored["people"], stored["comparisons"], stored["target_fpir"]) == (4, per_group[decided_by][1], TARGET)
    assert stored["strangers"] == {"reference": len(reference), "left_out_people": len(names), "folder": len(folder)}
    assert len(folder) == len(list(mindy_dir.iterdir())) - len(record["skipped"]) >= 15
    t = stored["threshold"]
    for group, d in (("reference", d_reference), ("left_out_people", d_left_out), ("folder", d_folder)):
        let_in = int((d.min(axis=1) <= t).sum())
        assert (stored["fpir"][group]["count"], stored["fpir"][group]["total"]) == (let_in, len(d)), group
    assert stored["fpir"]["all"]["total"] == len(reference) + len(names) + len(folder)
    missed = 0
    for i in range(len(names)):  # leave-one-out: the person's template made without this encoding
        others = [j for j in range(len(names)) if own[j] == own[i] and j != i]
        probe = tpl.copy()
        mean = matrix[others].astype(np.float64).mean(axis=0)
        probe[own[i]] = mean / np.linalg.norm(mean)
        d = distances(matrix[i:i + 1], probe)[0]
        missed += not (d.argmin() == own[i] and d.min() <= t)
    assert (stored["fnir"]["count"], stored["fnir"]["total"]) == (missed, len(names))
    assert stored["people_key"] == people_key(names) and stored["model_sha256"] == card.sha256
    created = datetime.fromisoformat(stored["created"])
    assert created.utcoffset() == timedelta(0) and abs(datetime.now(created.tzinfo) - created) < timedelta(hours=1)
    assert stored["command"].startswith(f"facegate calibrate --site --store {store_path} --target-fpir 0.005 ")
    assert f"--strangers {mindy_dir}" in stored["command"]
    # what the data can and cannot show is said
    total = stored["fpir"]["all"]["total"]
    assert f"{total} strangers cannot show an FPIR below 1/{total}" in record["notes"][0]
    assert record["in_force"]["source"] == "site calibration" and record["before"]["source"] == "reference strangers"


def test_the_text_says_what_the_data_cannot_show(enrolled, mindy_dir, models, tmp_path):
    store = copy_store(enrolled, tmp_path / "s.db")
    code, _, out, err = run_cli("calibrate", "--site", "--strangers", mindy_dir, "--store", store, *models)
    assert code == ExitCode.OK, err
    assert "strangers cannot show an FPIR below 1/" in out and "cannot show an FNIR below 1/" in out
    assert "enrolled turned away, leave-one-out:" in out and "1:N now:    threshold" in out
    # a target below 1/comparisons is not resolved, and said so (4 people: 2.5e-6 per comparison)
    code, records, _, err = run_cli("calibrate", "--site", "--store", store, "--target-fpir", "0.00001", "--json",
                                    *models)
    assert code == ExitCode.OK, err
    notes = records[0]["notes"]
    assert any("not resolved" in n and "comparisons" in n for n in notes), notes
    assert any("the target of 0.001% is not resolved" in n for n in notes), notes
    assert any("no photos of local strangers" in n for n in notes), notes
    assert records[0]["site_calibration"]["strangers"]["folder"] == 0


def test_people_list_reports_the_site_calibration(calibrated, models):
    store, record = calibrated
    threshold = threshold_in_force(store, models)
    assert threshold["source"] == "site calibration" and threshold["note"] == ""
    assert threshold["value"] == record["site_calibration"]["threshold"]
    assert threshold["site_calibration"]["fnir"] == record["site_calibration"]["fnir"]
    assert threshold["comparisons"] == record["site_calibration"]["comparisons"]
    code, _, out, _ = run_cli("people", "list", "--store", store, *models)
    assert code == ExitCode.OK
    assert f"1:N threshold {threshold['value']:.3f} (site calibration of {record['site_calibration']['created'][:10]}" \
        in out
    # a config override still wins; another target is not what was calibrated
    assert threshold_in_force(store, models, "--threshold", "0.9")["source"] == "config"
    other = threshold_in_force(store, models, "--target-fpir", "0.01")
    assert other["source"] == "reference strangers" and "is for an FPIR target of 0.5%, not 1%" in other["note"]


def test_enrolling_one_more_person_makes_it_stale(calibrated, photos_dir, models, card, tmp_path):
    store = copy_store(calibrated[0], tmp_path / "s.db")
    created = calibrated[1]["site_calibration"]["created"][:10]
    enrol(store, "mindy_kaling", photos_of(photos_dir, "val", "mindy_kaling"), models)
    threshold = threshold_in_force(store, models)
    assert threshold["source"] == "reference strangers" and threshold["site_calibration"] is None
    assert threshold["note"].startswith(f"the site calibration of {created} is for 4 people; 5 are enrolled now: "
                                        "run facegate calibrate --site again")
    with open_store(store, card) as opened:
        expected = derive_threshold(templates(*opened.matrix())[1], card.reference_strangers(),
                                    card_threshold=card.threshold, target_fpir=TARGET)
        assert threshold["value"] == round(expected.value, 4)  # the fallback: the reference strangers
        opened.remove("mindy_kaling")
        assert OpenSetGallery.for_card(opened, card).threshold.source == "site calibration"  # the same people again
        opened.add("ben_afflek", opened.encodings("madonna")[:1])  # the same people, other encodings
        stale = OpenSetGallery.for_card(opened, card).threshold
    assert stale.source == "reference strangers"
    assert stale.note.startswith(f"the site calibration of {created} is for other people or encodings than the 4 "
                                 "enrolled now")


def test_the_daemon_uses_the_site_calibration(calibrated, photos_dir, weights_dir, tmp_path):
    from tests.test_daemon import run_collecting, write_config

    door = tmp_path / "door"
    (door / "visits").mkdir(parents=True)
    copy_store(calibrated[0], door / "people.sqlite")
    for n, path in enumerate(photos_of(photos_dir, "val", "madonna")[:2]):
        (door / "visits" / f"{n}.jpg").symlink_to(path)
    events, _, _ = run_collecting(write_config(tmp_path / "door.toml", door, weights_dir))
    started = events[0]
    assert started.type == "started"
    assert started.detail["threshold"]["source"] == "site calibration"
    assert started.detail["threshold"]["value"] == calibrated[1]["site_calibration"]["threshold"]


def test_a_store_with_one_person_is_refused(photos_dir, models, card, tmp_path):
    store = tmp_path / "one.db"
    enrol(store, "madonna", photos_of(photos_dir, "train", "madonna")[:5], models)
    code, records, _, err = run_cli("calibrate", "--site", "--store", store, *models)
    assert code == ExitCode.ERROR and records == []
    assert "needs at least 2 people enrolled" in err and "it has 1 (madonna)" in err
    with open_store(store, card) as opened:
        assert opened.site_calibration() is None
    code, _, _, err = run_cli("calibrate", "--site", "--store", tmp_path / "missing.db", *models)
    assert code == ExitCode.ERROR and "does not exist" in err and not (tmp_path / "missing.db").exists()


def test_a_stranger_folder_without_faces_is_refused(enrolled, models, card, tmp_path):
    store = copy_store(enrolled, tmp_path / "s.db")
    walls = tmp_path / "walls"
    walls.mkdir()
    for k in range(2):
        cv2.imwrite(str(walls / f"wall{k}.jpg"), np.full((300, 300, 3), 100 + 50 * k, np.uint8))
    code, records, _, err = run_cli("calibrate", "--site", "--strangers", walls, "--store", store, *models)
    assert code == ExitCode.ERROR and records == []
    assert f"{walls}: no face found in any of its 2 image(s)" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, _, err = run_cli("calibrate", "--site", "--strangers", empty, "--store", store, *models)
    assert code == ExitCode.ERROR and "has no images" in err
    with open_store(store, card) as opened:
        assert opened.site_calibration() is None


def test_the_record_of_another_model_is_ignored(calibrated, models, card, tmp_path):
    store = copy_store(calibrated[0], tmp_path / "s.db")
    with open_store(store, card) as opened:
        record = opened.site_calibration()
        assert record is not None
        opened.save_site_calibration({**record, "model_sha256": "ab" * 32})
    threshold = threshold_in_force(store, models)
    assert threshold["source"] == "reference strangers"
    assert threshold["note"].startswith(f"the site calibration of {record['created'][:10]} was made with model "
                                        "abababababab, not the model in use: ignored")


def test_a_store_of_another_model_is_refused(models, tmp_path):
    store = tmp_path / "other.db"
    rng = np.random.default_rng(3)
    with EncodingStore(store, model_sha256="cd" * 32, embedding_size=128) as other:
        for name in ("a", "b"):
            v = rng.standard_normal((2, 128))
            other.add(name, v / np.linalg.norm(v, axis=1, keepdims=True))
    code, _, _, err = run_cli("calibrate", "--site", "--store", store, *models)
    assert code == ExitCode.ERROR and "holds encodings made by model cdcdcdcdcdcd" in err


def test_options_that_do_not_go_together(enrolled, photos_dir, mindy_dir, models, tmp_path):
    with pytest.raises(SystemExit) as exc:
        run_cli("calibrate", photos_dir / "train", "--site", *models)
    assert exc.value.code == ExitCode.USAGE
    with pytest.raises(SystemExit) as exc:
        run_cli("calibrate", *models)
    assert exc.value.code == ExitCode.USAGE
    store = copy_store(enrolled, tmp_path / "s.db")
    for argv, said in (([photos_dir / "train", "--strangers", mindy_dir], "--strangers DIR goes with --site"),
                       (["--site", "--threshold", "1.0"], "--threshold and --site"),
                       (["--site", "--plots", tmp_path / "plots"], "--plots goes with calibrate DIR")):
        code, _, _, err = run_cli("calibrate", *argv, "--store", store, *models)
        assert code == ExitCode.USAGE and said in err, err


# -- the store's record and the rule that reads it (made-up encodings) ---------------------------------------


def test_a_record_is_stored_only_for_the_people_enrolled_now(tmp_path):
    from tests.store_helpers import open_store as made_up_store
    from tests.store_helpers import unit

    rng = np.random.default_rng(8)
    with made_up_store(tmp_path / "s.db") as store:
        store.add("Ann", unit(rng, 2))
        store.add("Bob", unit(rng, 1))
        names, _ = store.matrix()
        record = {"threshold": 1.0, "people_key": people_key(names), "people": 2}
        store.save_site_calibration(record)
        assert store.site_calibration() == record
        store.add("Cy", unit(rng, 1))
        with pytest.raises(StoreError, match="changed while the calibration was measured"):
            store.save_site_calibration({**record, "threshold": 0.9})
        assert store.site_calibration() == record
        with pytest.raises(StoreError, match="plain JSON"):
            store.save_site_calibration({**record, "people_key": people_key(store.matrix()[0]), "threshold": math.nan})
    conn = sqlite3.connect(tmp_path / "s.db")
    with conn:
        conn.execute("UPDATE facegate_meta SET value = '{not json' WHERE key = 'site_calibration'")
    conn.close()
    with made_up_store(tmp_path / "s.db") as store:
        assert store.site_calibration() is None  # a hand-edited value: as without a calibration


def test_the_people_key_counts_encodings_not_their_order():
    assert people_key(["a", "b", "a"]) == people_key(["b", "a", "a"])
    assert people_key(["a", "b", "a"]) != people_key(["a", "b"]) != people_key(["a", "c"])


def test_a_malformed_record_is_ignored():
    names = ["a", "b"]
    good = {"threshold": 1.0, "target_fpir": TARGET, "people": 2, "comparisons": 10, "people_key": people_key(names),
            "model_sha256": "ab" * 32, "created": "2025-01-31T08:15:00+00:00"}
    common = {"names": names, "model_sha256": "ab" * 32, "target_fpir": TARGET, "card_threshold": 1.05}
    threshold, why = site_threshold(good, **common)
    assert threshold is not None and (threshold.value, threshold.source, why) == (1.0, "site calibration", "")
    assert site_threshold({**good, "threshold": 1.2}, **common)[0].value == 1.05  # never above the card
    for bad in ({**good, "threshold": "1.0"}, {**good, "people": None}, {**good, "threshold": math.inf}, [1, 2]):
        threshold, why = site_threshold(bad, **common)
        assert threshold is None and "malformed" in why
    assert site_threshold(good, **{**common, "model_sha256": None})[0] is None
