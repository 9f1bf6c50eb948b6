"""``facegate calibrate`` and ``facegate evaluate`` on the real model and the real celebrity photos."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import plots
from edge.cli import EXIT_ERROR, EXIT_OK, EXIT_REFUSED, main
from edge.cmd_calibrate import error_curve, pixel_features
from edge.metrics import rates_at
from edge.modelcard import ModelCard
from tests.conftest import photo_paths


def run_cli(*argv) -> tuple[int, list[dict], str, str]:
    """Run ``facegate`` in-process: exit code, JSON lines, stdout, stderr (usable in module fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    records = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return code, records, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def models(int8_model, blazeface_short) -> list:
    return ["--model", int8_model, "--detector", blazeface_short]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory, photos_dir, models):
    plot_dir = tmp_path_factory.mktemp("plots") / "calibration"
    code, records, _, err = run_cli("calibrate", photos_dir / "train", "--plots", plot_dir, "--json", *models)
    assert code == EXIT_OK, err
    assert len(records) == 1
    return records[0], plot_dir


def copy_people(photos_dir: Path, target: Path, people: dict[str, int]) -> None:
    """Copy the first ``count`` train photos of each person into ``target/<person>/``."""
    for person, count in people.items():
        (target / person).mkdir(parents=True)
        for _, path in [pp for pp in photo_paths(photos_dir, "train") if pp[0] == person][:count]:
            shutil.copy(path, target / person / path.name)


# -- calibrate ---------------------------------------------------------------------------------------------


def test_calibrate_recommends_a_threshold_that_keeps_strangers_out(calibrated, int8_model):
    r, _ = calibrated
    rec = r["recommended"]
    assert rec["stranger_acceptance"] <= r["target_far"] or rec["stranger_acceptance"] == 0.0
    assert 0.0 <= rec["genuine_rejection"] < 0.2
    assert r["people"] == 5
    assert r["open_set"]["strangers"] == r["photos"] == 93 - len(r["skipped"])
    n = r["photos"]
    assert r["pairs"]["genuine"] + r["pairs"]["impostor"] == n * (n - 1) // 2
    assert 0.0 < r["pair_eer"]["rate"] < 0.5
    # The build calibrated the card on train + val; on train alone the answer must be close to it.
    assert abs(rec["threshold"] - ModelCard.for_model(int8_model).threshold) < 0.1
    # 91 strangers cannot resolve 0.1%: said so.
    assert r["resolvable"] is False and f"{r['open_set']['strangers']} strangers" in r["note"]


def test_calibrate_table_is_monotonic_and_marks_the_thresholds(calibrated):
    r, _ = calibrated
    table = r["table"]
    thresholds = [row["threshold"] for row in table]
    assert thresholds == sorted(thresholds) and len(thresholds) >= 17
    for key, direction in (("pair_far", 1), ("stranger_acceptance", 1), ("pair_frr", -1), ("genuine_rejection", -1)):
        values = np.array([row[key] for row in table]) * direction
        assert np.all(np.diff(values) >= 0), key
    marks = {row["mark"]: row for row in table if row["mark"]}
    assert marks["course"]["threshold"] == 0.7
    recommended = next(row for row in table if "recommended" in row["mark"])
    assert recommended["threshold"] == r["recommended"]["threshold"]
    assert recommended["stranger_acceptance"] == r["recommended"]["stranger_acceptance"]
    # The course's 0.7 was for its model and preprocessing: here it turns away far more genuine photos.
    assert marks["course"]["genuine_rejection"] > recommended["genuine_rejection"]


def test_calibrate_lists_the_photos_without_a_face(calibrated):
    r, _ = calibrated
    assert r["skipped"] and all(s["reason"] == "no face found" for s in r["skipped"])


def test_calibrate_writes_real_plots(calibrated):
    r, plot_dir = calibrated
    assert set(r["plots"]) == {"roc", "distances"}
    for name in ("roc", "distances"):
        path = Path(r["plots"][name])
        assert path.parent == plot_dir and path.suffix == ".png"
        image = cv2.imread(str(path))  # BGR
        assert image is not None and image.shape[0] >= 400 and image.shape[1] >= 600
        not_white = np.any(image < 250, axis=2).mean()
        assert 0.01 < not_white < 0.6
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20
    assert not list(plot_dir.glob(".*.tmp"))  # atomic writes left nothing behind
    roc = cv2.imread(r["plots"]["roc"])
    hist = cv2.imread(r["plots"]["distances"])
    # The open-set curve (orange) is on the ROC; the stranger histogram (orange) and the genuine pair
    # histogram (blue) are in the distance plot: counted by exact colour, far more than the legend swatch.
    assert _pixels_of(roc, plots.ORANGE) > 400
    assert _pixels_of(hist, plots.ORANGE) > 400 and _pixels_of(hist, plots.BLUE) > 400


def _pixels_of(bgr: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int(np.all(bgr == np.array(rgb[::-1], np.uint8), axis=2).sum())


def test_calibrate_one_person_is_an_error(tmp_path, photos_dir, models):
    copy_people(photos_dir, tmp_path, {"madonna": 4})
    code, records, _, err = run_cli("calibrate", tmp_path, "--json", *models)
    assert code == EXIT_ERROR and records == []
    assert "at least 2 people" in err and "madonna" in err


def test_calibrate_without_genuine_pairs_is_an_error(tmp_path, photos_dir, models):
    copy_people(photos_dir, tmp_path, {"madonna": 1, "elton_john": 1})
    code, _, _, err = run_cli("calibrate", tmp_path, *models)
    assert code == EXIT_ERROR and "2 usable photos" in err


def test_calibrate_skips_corrupt_and_faceless_photos(tmp_path, photos_dir, models):
    copy_people(photos_dir, tmp_path, {"madonna": 4, "elton_john": 4})
    real = next((tmp_path / "madonna").iterdir()).read_bytes()
    (tmp_path / "madonna" / "broken.jpg").write_bytes(real[: len(real) // 3])
    cv2.imwrite(str(tmp_path / "elton_john" / "wall.jpg"), np.full((300, 300, 3), 128, np.uint8))
    code, records, _, _ = run_cli("calibrate", tmp_path, "--json", *models)
    assert code == EXIT_OK
    skipped = {Path(s["photo"]).name: s["reason"] for s in records[0]["skipped"]}
    assert skipped["wall.jpg"] == "no face found"
    assert "truncated" in skipped["broken.jpg"]
    assert records[0]["photos"] == 8 and records[0]["people"] == 2

    code, _, text, _ = run_cli("calibrate", tmp_path, *models)  # the same for a person reading it
    assert code == EXIT_OK
    assert "skipped" in text and "wall.jpg: no face found" in text and "recommended threshold:" in text


def test_target_far_must_be_a_fraction(tmp_path, models):
    with pytest.raises(SystemExit) as exc:
        run_cli("calibrate", tmp_path, "--target-far", "5", *models)
    assert exc.value.code == 2


def test_error_curve_matches_rates_at():
    genuine = np.array([0.3, 0.5, 0.5, 0.9])
    impostor = np.array([0.6, 1.0, 1.2])
    thresholds, far, frr = error_curve(genuine, impostor)
    assert thresholds[0] == 0.0 and far[0] == 0.0 and frr[0] == 1.0
    assert far[-1] == 1.0 and frr[-1] == 0.0
    for t, a, r in zip(thresholds, far, frr, strict=True):
        expected = rates_at(genuine, impostor, t)
        assert (a, r) == pytest.approx((expected.far, expected.frr))


def test_pixel_features_are_small_greyscale_images():
    crops = np.zeros((2, 160, 160, 3), np.uint8)
    crops[1] = 255
    crops[1, :80] = (255, 0, 0)  # top half red
    feats = pixel_features(crops)
    assert feats.shape == (2, 64 * 64) and feats.dtype == np.float32
    assert feats[0].max() == 0.0
    top, bottom = feats[1].reshape(64, 64)[:32], feats[1].reshape(64, 64)[32:]
    assert np.allclose(bottom, 1.0) and np.allclose(top, 76 / 255, atol=1 / 255)  # red's luma weight 0.299


# -- evaluate ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluated(photos_dir, models):
    code, records, _, err = run_cli("evaluate", photos_dir, "--json", *models)
    assert len(records) == 1, err
    return code, records[0]


def test_evaluate_identifies_every_val_photo(evaluated):
    code, r = evaluated
    run = r["runs"][r["primary"]]
    misses = [m for p in run["per_person"].values() for m in p["misses"]]
    assert misses == []
    assert (run["identified"], run["total"], run["top1"]) == (25, 25, 25)
    assert code == EXIT_OK
    assert {p: (v["identified"], v["total"]) for p, v in run["per_person"].items()} == {
        p: (5, 5) for p in ("ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling")}


def test_evaluate_compares_alignment_on_and_off(evaluated):
    _, r = evaluated
    assert r["primary"] == "aligned" and set(r["runs"]) == {"aligned", "not_aligned"}
    off = r["runs"]["not_aligned"]
    assert off["total"] == 25 and 0 <= off["identified"] <= 25


def test_evaluate_pixel_baseline_is_worse_than_facenet(evaluated):
    _, r = evaluated
    for run in r["runs"].values():
        pixels = run["pixel_baseline"]
        assert pixels["total"] == 25 and "64x64 greyscale" in pixels["method"]
        assert pixels["top1"] < run["top1"]
        assert pixels["pair_eer"]["rate"] > run["pair_eer"]["rate"]


def test_evaluate_open_set_lets_no_stranger_in(evaluated):
    _, r = evaluated
    open_set = r["runs"][r["primary"]]["open_set"]
    assert open_set["strangers"] == 25
    assert open_set["accepted"] == 0
    assert open_set["margin"] > 0 and open_set["threshold"] == r["threshold"]
    for person, row in open_set["per_person"].items():
        assert row["nearest_is"] != person and row["nearest"] > r["threshold"]


def test_evaluate_explains_every_miss(photos_dir, models):
    code, records, _, _ = run_cli("evaluate", photos_dir, "--threshold", "0.5", "--no-compare-align", "--json",
                                  *models)
    assert code == EXIT_REFUSED
    run = records[0]["runs"]["aligned"]
    assert list(records[0]["runs"]) == ["aligned"]
    misses = [m for p in run["per_person"].values() for m in p["misses"]]
    assert misses and run["identified"] + len(misses) == run["total"] == 25
    for m in misses:
        assert m["threshold"] == 0.5 and m["closest"] and m["why"]
        assert m["distance"] > 0.5 or m["got"] != Path(m["photo"]).parent.name
    code, _, text, _ = run_cli("evaluate", photos_dir, "--threshold", "0.5", "--no-compare-align", *models)
    assert code == EXIT_REFUSED
    assert "misses (aligned):" in text and "threshold 0.500" in text and "not in the database" in text
