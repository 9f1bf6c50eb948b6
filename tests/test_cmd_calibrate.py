"""``facegate calibrate`` and ``facegate evaluate`` on the real model and the real celebrity photos."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.core.modelcard import ModelCard
from edge.errors import ExitCode, OptionalDependencyError
from edge.eval import plots
from edge.eval.calibration import COURSE_THRESHOLD, calibration
from edge.eval.evaluation import pixel_features
from edge.eval.metrics import error_curve, rates_at
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
    assert code == ExitCode.OK, err
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


def test_calibrate_writes_both_charts_as_pngs_of_their_size(calibrated):
    r, plot_dir = calibrated
    assert r["plots"] == {"roc": str(plot_dir / "roc.png"), "distances": str(plot_dir / "distances.png")}
    for name, (width, height) in (("roc", plots.ROC_SIZE), ("distances", plots.DISTANCES_SIZE)):
        path = Path(r["plots"][name])
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # decodes the whole file: not truncated
        assert image is not None and image.shape[:2] == (height, width)
        assert image.std() > 10  # not a blank canvas
    assert sorted(p.name for p in plot_dir.iterdir()) == ["distances.png", "roc.png"]  # no temporary files left


@pytest.fixture(scope="module")
def synthetic() -> tuple[dict, dict[str, np.ndarray]]:
    """``calibration()`` of made-up encodings: 6 people x 8 photos, clusters that overlap a little."""
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((6, 16))
    encodings = np.repeat(centres, 8, axis=0) + 0.45 * rng.standard_normal((48, 16))
    encodings /= np.linalg.norm(encodings, axis=1, keepdims=True)
    labels = [f"person{k}" for k in range(6) for _ in range(8)]
    return calibration(encodings.astype(np.float32), labels, target_far=0.05)


def _by_gid(artists) -> dict:
    return {a.get_gid(): a for a in artists if a.get_gid()}


def _point(line) -> tuple[float, float]:
    (x,), (y,) = line.get_xdata(), line.get_ydata()
    return float(x), float(y)


def test_roc_figure_draws_the_error_curves_and_the_operating_points(synthetic):
    report, distances = synthetic
    figure = plots.roc_figure(distances, report)
    (ax,) = figure.axes
    lines = _by_gid(ax.get_lines())
    assert set(lines) == {"pairs", "open_set", "recommended", "course", "pair_eer"}
    floor = plots.far_floor(distances["impostor"])
    assert floor < 1 / len(distances["impostor"])  # no rate but 0 can land on the floor
    for gid, genuine, impostor in (("pairs", "genuine", "impostor"),
                                   ("open_set", "open_set_genuine", "open_set_stranger")):
        _, far, frr = error_curve(distances[genuine], distances[impostor])
        np.testing.assert_array_equal(lines[gid].get_xdata(), np.maximum(far, floor))
        np.testing.assert_array_equal(lines[gid].get_ydata(), 1.0 - frr)
    rec = report["recommended"]
    assert _point(lines["recommended"]) == pytest.approx(
        (max(rec["stranger_acceptance"], floor), 1.0 - rec["genuine_rejection"]))
    course = rates_at(distances["open_set_genuine"], distances["open_set_stranger"], COURSE_THRESHOLD)
    assert _point(lines["course"]) == pytest.approx((max(course.far, floor), 1.0 - course.frr))
    eer = report["pair_eer"]["rate"]
    assert _point(lines["pair_eer"]) == pytest.approx((max(eer, floor), 1.0 - eer))
    # A log axis from the floor, whose leftmost tick says 0; every line is in the legend.
    assert ax.get_xscale() == "log" and ax.get_xlim() == pytest.approx((floor, 1.0))
    formatter = ax.xaxis.get_major_formatter()
    assert (formatter(floor, 0), formatter(0.01, 1), formatter(1.0, 2)) == ("0", "1%", "100%")
    (legend,) = figure.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert len(texts) == 5 and any(t.startswith(f"recommended {rec['threshold']:.3f}") for t in texts)


def test_distances_figure_holds_the_counts_of_each_distribution(synthetic):
    report, distances = synthetic
    figure = plots.distances_figure(distances, report, bins=30)
    top, bottom = figure.axes
    widths = set()
    for ax, keys in ((top, ("genuine", "impostor")), (bottom, ("open_set_genuine", "open_set_stranger"))):
        patches = _by_gid(ax.patches)
        assert set(patches) == {*keys, *(f"{k}_fill" for k in keys)}
        for key in keys:
            values, edges, _ = patches[key].get_data()
            counts, _ = np.histogram(distances[key], bins=edges)
            np.testing.assert_allclose(values * len(distances[key]), counts)  # the fraction per bin
            assert counts.sum() == len(distances[key])  # every distance falls in a bin drawn
            assert counts[0] > 0 and counts[-1] > 0  # empty end bins left out
            np.testing.assert_array_equal(patches[f"{key}_fill"].get_data()[0], values)
            widths.update(np.round(np.diff(edges), 9))
        lines = {gid: line.get_xdata()[0] for gid, line in _by_gid(ax.get_lines()).items()}
        assert lines == {"recommended": report["recommended"]["threshold"], "course": COURSE_THRESHOLD}
        assert ax.get_legend() is not None and len(ax.get_legend().get_texts()) == 4
    assert len(widths) == 1  # one set of equal bins for all four
    low, high = bottom.get_xlim()
    everything = np.concatenate(list(distances.values()))
    assert low <= min(everything.min(), COURSE_THRESHOLD) and high >= everything.max()
    assert high - low == pytest.approx(30 * widths.pop())


def test_plots_do_not_import_matplotlib_until_drawn_nor_use_pyplot():
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from edge.eval import plots\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'matplotlib'], 'imported at import time'\n"
        "d = {k: np.array([0.5, 0.9, 1.2]) for k in ('genuine', 'impostor', 'open_set_genuine', "
        "'open_set_stranger')}\n"
        "r = {'recommended': {'threshold': 0.8}, 'pair_eer': {'rate': 0.3, 'threshold': 0.9}}\n"
        "plots.roc_figure(d, r), plots.distances_figure(d, r)\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def no_matplotlib(monkeypatch):
    """matplotlib (and any part of it already imported) made unimportable, as on a machine without it."""
    for name in {"matplotlib", *(m for m in sys.modules if m.startswith("matplotlib."))}:
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_matplotlib_says_how_to_install_it(no_matplotlib, synthetic, tmp_path):
    report, distances = synthetic
    with pytest.raises(OptionalDependencyError) as exc:
        plots.calibration_plots(tmp_path / "charts", distances, report)
    message = str(exc.value)
    assert message == "the plots need matplotlib: pip install 'facegate[plots]' (or pip install matplotlib)"
    assert isinstance(exc.value, ImportError) and isinstance(exc.value.__cause__, ImportError)
    assert not (tmp_path / "charts").exists()  # nothing written


def test_calibrate_without_matplotlib_is_a_one_line_error(no_matplotlib, tmp_path, photos_dir, models):
    copy_people(photos_dir, tmp_path / "photos", {"madonna": 3, "elton_john": 3})
    code, records, out, err = run_cli("calibrate", tmp_path / "photos", "--plots", tmp_path / "charts", "--json",
                                      *models)
    assert code == ExitCode.ERROR == 1 and records == [] and out == ""
    assert err.splitlines() == [f"facegate: error: {plots.INSTALL_HINT}"]


def test_calibrate_one_person_is_an_error(tmp_path, photos_dir, models):
    copy_people(photos_dir, tmp_path, {"madonna": 4})
    code, records, _, err = run_cli("calibrate", tmp_path, "--json", *models)
    assert code == ExitCode.ERROR and records == []
    assert "at least 2 people" in err and "madonna" in err


def test_calibrate_without_genuine_pairs_is_an_error(tmp_path, photos_dir, models):
    copy_people(photos_dir, tmp_path, {"madonna": 1, "elton_john": 1})
    code, _, _, err = run_cli("calibrate", tmp_path, *models)
    assert code == ExitCode.ERROR and "2 usable photos" in err


def test_calibrate_skips_corrupt_and_faceless_photos(tmp_path, photos_dir, models):
    copy_people(photos_dir, tmp_path, {"madonna": 4, "elton_john": 4})
    real = next((tmp_path / "madonna").iterdir()).read_bytes()
    (tmp_path / "madonna" / "broken.jpg").write_bytes(real[: len(real) // 3])
    cv2.imwrite(str(tmp_path / "elton_john" / "wall.jpg"), np.full((300, 300, 3), 128, np.uint8))
    code, records, _, _ = run_cli("calibrate", tmp_path, "--json", *models)
    assert code == ExitCode.OK
    skipped = {Path(s["photo"]).name: s["reason"] for s in records[0]["skipped"]}
    assert skipped["wall.jpg"] == "no face found"
    assert "truncated" in skipped["broken.jpg"]
    assert records[0]["photos"] == 8 and records[0]["people"] == 2

    code, _, text, _ = run_cli("calibrate", tmp_path, *models)  # the same for a person reading it
    assert code == ExitCode.OK
    assert "skipped" in text and "wall.jpg: no face found" in text and "recommended threshold:" in text


def test_target_far_must_be_a_fraction(tmp_path, models):
    with pytest.raises(SystemExit) as exc:
        run_cli("calibrate", tmp_path, "--target-far", "5", *models)
    assert exc.value.code == 2


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
    assert code == ExitCode.OK
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
    assert code == ExitCode.REFUSED
    run = records[0]["runs"]["aligned"]
    assert list(records[0]["runs"]) == ["aligned"]
    misses = [m for p in run["per_person"].values() for m in p["misses"]]
    assert misses and run["identified"] + len(misses) == run["total"] == 25
    for m in misses:
        assert m["threshold"] == 0.5 and m["closest"] and m["why"]
        assert m["distance"] > 0.5 or m["got"] != Path(m["photo"]).parent.name
    code, _, text, _ = run_cli("evaluate", photos_dir, "--threshold", "0.5", "--no-compare-align", *models)
    assert code == ExitCode.REFUSED
    assert "misses (aligned):" in text and "threshold 0.500" in text and "not in the database" in text
