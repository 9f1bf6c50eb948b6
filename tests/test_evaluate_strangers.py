"""``facegate evaluate DIR --strangers SDIR``: the door's 1:N rule against photos of people nobody enrolled.

The real model and photos: DIR is the celebrity set without mindy_kaling, SDIR her photos (one stranger a
photo, as far as the door can tell); the figures are checked against a computation of their own here.
"""

from __future__ import annotations

import math
import shutil
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.core.openset import OpenSetGallery
from edge.errors import ExitCode
from edge.eval import plots
from edge.eval.evaluation import (
    MEASURED_FPIRS,
    binomial_cdf,
    binomial_interval,
    det_curve,
    stranger_evaluation,
    threshold_for_fpir,
)
from edge.eval.photos import PhotoFaces, analyse_photos, image_files, labelled_photos
from tests.test_cmd_calibrate import run_cli

STRANGER = "mindy_kaling"


@pytest.fixture(scope="module")
def models(int8_model, blazeface_short) -> list:
    # Two threads, as the face_model fixture: the direct computation sees the very same encodings.
    return ["--model", int8_model, "--detector", blazeface_short, "--threads", "2"]


@pytest.fixture(scope="module")
def sets(tmp_path_factory, photos_dir) -> tuple[Path, Path]:
    """``(DIR, SDIR)``: train/ and val/ of the other four people; every photo of mindy_kaling as a stranger,
    some in a sub-folder (every image under SDIR counts)."""
    root = tmp_path_factory.mktemp("sets")
    people, strangers = root / "people", root / "strangers"
    for split in ("train", "val"):
        for folder in sorted((photos_dir / split).iterdir()):
            if folder.name == STRANGER:
                target = strangers / ("more" if split == "val" else "")
                target.mkdir(parents=True, exist_ok=True)
                for photo in folder.iterdir():
                    shutil.copy(photo, target / f"{split}_{photo.name}")
            else:
                shutil.copytree(folder, people / split / folder.name)
    return people, strangers


@pytest.fixture(scope="module")
def direct(sets, face_model) -> dict:
    """The figures computed here, from the door's API: the encodings, the gallery, nearest distances."""
    root, sdir = sets
    train = analyse_photos(labelled_photos(root / "train"), face_model)
    val = analyse_photos(labelled_photos(root / "val"), face_model)
    strangers = analyse_photos([(p.stem, p) for p in image_files(sdir)], face_model)
    database = {name: train.vectors[[i for i, n in enumerate(train.labels) if n == name]]
                for name in sorted(set(train.labels))}

    def nearest(vectors: np.ndarray, people: list[str], templates: np.ndarray) -> tuple[np.ndarray, list[str]]:
        d = np.linalg.norm(vectors[:, None, :] - templates[None, :, :], axis=2)
        return d.min(axis=1), [people[k] for k in d.argmin(axis=1)]

    return {"train": train, "val": val, "strangers": strangers, "database": database, "nearest": nearest,
            "model": face_model}


@pytest.fixture(scope="module")
def evaluated(sets, models, tmp_path_factory) -> tuple[int, dict, Path]:
    root, sdir = sets
    plot_dir = tmp_path_factory.mktemp("plots") / "charts"
    code, records, _, err = run_cli("evaluate", root, "--strangers", sdir, "--no-compare-align", "--plots", plot_dir,
                                    "--json", *models)
    assert len(records) == 1, err
    return code, records[0], plot_dir


def _check_figures(s: dict, direct: dict, threshold: float) -> None:
    """The record's FPIR / FNIR against the same rule computed here with ``threshold``."""
    people, templates = direct["model"].open_set(direct["database"]).matrix()
    assert s["people"] == s["templates"] == len(people) == 4 and STRANGER not in people
    stranger_d, stranger_as = direct["nearest"](direct["strangers"].vectors, people, templates)
    let_in = stranger_d <= threshold
    n_strangers = len(direct["strangers"].labels)
    assert n_strangers + len(direct["strangers"].skipped) == 27  # 22 train + 5 val photos of mindy_kaling
    assert s["strangers"] == {"photos": 27, "with_face": n_strangers, "no_face": len(direct["strangers"].skipped),
                              "skipped": [{"photo": str(p), "reason": r} for p, r in direct["strangers"].skipped]}
    assert (s["fpir"]["count"], s["fpir"]["total"]) == (int(let_in.sum()), n_strangers)
    assert s["fpir"]["rate"] == pytest.approx(let_in.mean())
    assert s["fpir"]["interval"] == pytest.approx(list(binomial_interval(int(let_in.sum()), n_strangers)))
    assert sorted((x["photo"], x["as"]) for x in s["let_in"]) == sorted(
        (str(p), a) for p, a, yes in zip(direct["strangers"].paths, stranger_as, let_in, strict=True) if yes)
    val = direct["val"]
    val_d, val_as = direct["nearest"](val.vectors, people, templates)
    wrong = [a != p and d <= threshold for a, p, d in zip(val_as, val.labels, val_d, strict=True)]
    farther = val_d > threshold
    total = len(val.labels) + len(val.skipped)
    assert total == 20 and s["genuine"] == {"photos": 20, "not_enrolled": 0}
    misses = int(np.sum(wrong)) + int(farther.sum()) + len(val.skipped)
    f = s["fnir"]
    assert (f["count"], f["total"], f["wrong_person"], f["farther"], f["no_face"]) == (
        misses, total, int(np.sum(wrong)), int(farther.sum()), len(val.skipped))
    assert f["interval"] == pytest.approx(list(binomial_interval(misses, total)))
    assert s["note"].startswith(f"{n_strangers} strangers cannot show a rate below 1/{n_strangers}")
    # Thresholds chosen on these strangers: with 27 of them, 1% is below 1/27 and lets none in.
    assert [m["target"] for m in s["at_fpir"]] == list(MEASURED_FPIRS)
    for m in s["at_fpir"]:
        t = m["threshold"]
        assert t == pytest.approx(stranger_d.min(), abs=1e-6)  # just below the nearest stranger
        assert (m["fpir"]["count"], m["resolvable"]) == (0, False)
        correct = np.array([a == p for a, p in zip(val_as, val.labels, strict=True)])
        assert m["fnir"]["count"] == int(np.sum(~correct | (val_d > t))) + len(val.skipped)
    assert "not what the door uses" in s["at_fpir_note"]


def test_strangers_figures_match_a_direct_computation(evaluated, direct):
    code, r, _ = evaluated
    s = r["strangers"]
    gallery = direct["model"].open_set(direct["database"], target_fpir=0.005)
    expected = gallery.threshold
    assert s["threshold"]["source"] == expected.source and s["threshold"]["target_fpir"] in (0.005, None)
    assert s["threshold"]["value"] == round(expected.value, 4) and s["threshold"]["text"] == expected.describe()
    assert s["dir"].endswith("strangers") and s["align"] is True
    _check_figures(s, direct, expected.value)
    # The closed-set evaluation is there as without --strangers, and decides the exit code.
    run = r["runs"]["aligned"]
    assert code == (ExitCode.OK if run["identified"] == run["total"] else ExitCode.REFUSED)


def test_threshold_option_is_the_threshold_of_the_strangers_run(sets, models, direct):
    # A loose threshold: some of mindy's photos now pass as somebody; the counts must still match.
    root, sdir = sets
    code, records, _, err = run_cli("evaluate", root, "--strangers", sdir, "--no-compare-align", "--threshold", "1.3",
                                    "--json", *models)
    (r,) = records
    s = r["strangers"]
    assert s["threshold"]["source"] == "config" and s["threshold"]["value"] == 1.3
    _check_figures(s, direct, 1.3)
    assert s["fpir"]["count"] > 0, "expected 1.3 to let some stranger in"
    assert r["plots"] is None


def test_strangers_text_says_what_is_measured_where(sets, models):
    root, sdir = sets
    code, records, text, _ = run_cli("evaluate", root, "--strangers", sdir, "--no-compare-align", "--threshold",
                                     "1.3", *models)
    assert records == []
    assert "FPIR " in text and "strangers let in" in text and "95% CI" in text
    assert "val photos not identified as themselves" in text
    assert "strangers cannot show a rate below 1/" in text
    assert "measured on the strangers, not what the door uses" in text
    assert "threshold 1.300 (config)" in text and "4 people enrolled as 4 templates" in text
    assert "let in: " in text


def test_without_strangers_evaluate_is_unchanged(sets, models):
    root, _ = sets
    code, records, _, _ = run_cli("evaluate", root, "--no-compare-align", "--json", *models)
    (r,) = records
    assert set(r) == {"command", "dir", "pipeline", "threshold", "primary", "runs"}
    code, records, out, err = run_cli("evaluate", root, "--plots", "--json", *models)
    assert code == ExitCode.ERROR and records == [] and out == ""
    assert err.splitlines() == ["facegate: error: --plots draws the DET curve of --strangers: give --strangers "
                                "SDIR too"]


def test_plots_writes_a_det_png(evaluated):
    _, r, plot_dir = evaluated
    assert r["plots"] == {"det": str(plot_dir / "det.png")}
    data = (plot_dir / "det.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(plot_dir / "det.png"), cv2.IMREAD_UNCHANGED)  # decodes the whole file
    width, height = plots.DET_SIZE
    assert image is not None and image.shape[:2] == (height, width) and image.std() > 10
    assert [p.name for p in plot_dir.iterdir()] == ["det.png"]  # nothing else, no temporary file


def test_stranger_folder_without_faces_is_a_one_line_error(sets, models, tmp_path):
    root, _ = sets
    rng = np.random.default_rng(3)
    for k in range(2):
        cv2.imwrite(str(tmp_path / f"noise{k}.jpg"), rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((200, 200, 3), 128, np.uint8))
    code, records, out, err = run_cli("evaluate", root, "--strangers", tmp_path, "--json", *models)
    assert code == ExitCode.ERROR == 1 and records == [] and out == ""
    assert err.splitlines() == [f"facegate: error: {tmp_path}: none of the 3 photos shows a face the detector "
                                "finds: no stranger to measure"]
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, _, err = run_cli("evaluate", root, "--strangers", empty, *models)
    assert code == ExitCode.ERROR and err.splitlines() == [f"facegate: error: photo folder {empty} has no images"]


# -- the interval ------------------------------------------------------------------------------------------


def _exact_cdf(k: int, n: int, p: Fraction) -> Fraction:
    return sum((math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k + 1)), Fraction(0))


def test_binomial_interval_known_values():
    # No stranger let in of 304: the upper bound solves (1 - p)^304 = 0.025, about 1.2%.
    low, high = binomial_interval(0, 304)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 304), rel=1e-12)
    assert high == pytest.approx(0.012061, abs=1e-6)
    low, high = binomial_interval(304, 304)
    assert high == 1.0 and low == pytest.approx(0.025 ** (1 / 304), rel=1e-12)
    # R's binom.test(k, n)$conf.int.
    for (k, n), expected in {(1, 10): (0.002528579, 0.445016117), (5, 10): (0.187086028, 0.812913972),
                             (3, 100): (0.006229972, 0.085176053)}.items():
        assert binomial_interval(k, n) == pytest.approx(expected, abs=1e-9)
    assert binomial_interval(0, 0) == (0.0, 1.0)
    assert binomial_interval(0, 1) == pytest.approx((0.0, 0.975))
    for bad in ((-1, 5), (6, 5)):
        with pytest.raises(ValueError):
            binomial_interval(*bad)


@pytest.mark.parametrize(("k", "n"), [(0, 7), (1, 7), (3, 7), (7, 7), (2, 40), (39, 40), (12, 300)])
def test_binomial_interval_is_exact(k, n):
    low, high = binomial_interval(k, n, confidence=0.9)
    # At its bounds each one-sided tail holds exactly alpha / 2 (exact rational arithmetic).
    if k > 0:
        assert float(1 - _exact_cdf(k - 1, n, Fraction(low))) == pytest.approx(0.05, abs=1e-10)
    if k < n:
        assert float(_exact_cdf(k, n, Fraction(high))) == pytest.approx(0.05, abs=1e-10)
    assert low <= k / n <= high
    # Symmetric: k of n failures is n - k of n successes.
    mirror = binomial_interval(n - k, n, confidence=0.9)
    assert (low, high) == pytest.approx((1 - mirror[1], 1 - mirror[0]), abs=1e-12)
    for p in (0.01, 0.3, 0.9):
        assert binomial_cdf(k, n, p) == pytest.approx(float(_exact_cdf(k, n, Fraction(p))), abs=1e-12)


# -- the evaluation and the DET figure on made-up encodings --------------------------------------------


def _faces(vectors: np.ndarray, labels: list[str], skipped: int = 0) -> PhotoFaces:
    return PhotoFaces(np.zeros((len(labels), 4, 4, 3), np.uint8), labels,
                      [Path(f"{label}/{i}.jpg") for i, label in enumerate(labels)], vectors.astype(np.float32),
                      [(Path(f"{labels[0]}/none{i}.jpg"), "no face found") for i in range(skipped)])


@pytest.fixture(scope="module")
def synthetic() -> tuple[dict, dict[str, np.ndarray], float]:
    """stranger_evaluation of 5 people (6 enrolled encodings, 4 val each + one val photo without a face) and
    120 strangers, through a real gallery with a fixed threshold."""
    rng = np.random.default_rng(11)

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    centres = unit(rng.standard_normal((5, 16)))
    people = [f"p{k}" for k in range(5)]
    train = unit(np.repeat(centres, 6, axis=0) + 0.35 * rng.standard_normal((30, 16)))
    val = unit(np.repeat(centres, 4, axis=0) + 0.35 * rng.standard_normal((20, 16)))
    strangers = unit(rng.standard_normal((120, 16)))
    database = {p: train[6 * k:6 * k + 6] for k, p in enumerate(people)}
    threshold = 1.0
    gallery = OpenSetGallery(database, strangers=None, card_threshold=threshold)
    report, distances = stranger_evaluation(gallery, _faces(val, [p for p in people for _ in range(4)], skipped=1),
                                            _faces(strangers, [f"s{i}" for i in range(120)]))
    return report, distances, threshold


def test_stranger_evaluation_counts_and_curve(synthetic):
    report, distances, threshold = synthetic
    stranger, genuine = distances["stranger"], distances["genuine"]
    assert len(stranger) == 120 and len(genuine) == 21 and np.isinf(genuine).sum() >= 1  # the faceless photo
    assert report["threshold"]["source"] == "model card" and report["threshold"]["value"] == threshold
    assert report["fpir"]["count"] == int(np.sum(stranger <= threshold)) == len(report["let_in"])
    assert report["fnir"]["count"] == int(np.sum(genuine > threshold)) == len(report["misses"])
    assert report["fnir"]["no_face"] == 1
    t, fpir, fnir = det_curve(genuine, stranger)
    assert (fpir[0], fnir[0]) == (0.0, 1.0) and np.all(np.diff(fpir) >= 0) and np.all(np.diff(fnir) <= 0)
    k = np.searchsorted(t, threshold, side="right") - 1  # the curve's point at the shipped threshold
    assert (fpir[k], fnir[k]) == pytest.approx((report["fpir"]["rate"], report["fnir"]["rate"]))
    for m in report["at_fpir"]:
        assert m["threshold"] == threshold_for_fpir(stranger, m["target"])
        assert m["fpir"]["count"] == int(np.sum(stranger <= m["threshold"])) <= math.floor(m["target"] * 120)
        assert m["resolvable"] == (m["target"] * 120 >= 1)


def test_det_figure_draws_the_curve_and_the_shipped_point(synthetic, tmp_path):
    report, distances, _ = synthetic
    figure = plots.det_figure(distances, report)
    (ax,) = figure.axes
    lines = {line.get_gid(): line for line in ax.get_lines() if line.get_gid()}
    assert set(lines) == {"det", "shipped", "measured", "resolution"}
    x_floor, y_floor = plots.far_floor(distances["stranger"]), plots.far_floor(distances["genuine"])
    _, fpir, fnir = det_curve(distances["genuine"], distances["stranger"])
    np.testing.assert_array_equal(lines["det"].get_xdata(), np.maximum(fpir, x_floor))
    np.testing.assert_array_equal(lines["det"].get_ydata(), np.maximum(fnir, y_floor))
    (x,), (y,) = lines["shipped"].get_xdata(), lines["shipped"].get_ydata()
    assert (x, y) == pytest.approx((max(report["fpir"]["rate"], x_floor), max(report["fnir"]["rate"], y_floor)))
    assert len(lines["measured"].get_xdata()) == len(MEASURED_FPIRS)
    assert lines["resolution"].get_xdata()[0] == pytest.approx(1 / 120)
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert ax.get_xlim() == pytest.approx((x_floor, 1.0)) and ax.get_ylim() == pytest.approx((y_floor, 1.0))
    texts = [t.get_text() for t in figure.legends[0].get_texts()]
    assert any(t.startswith("shipped: threshold 1.000 (model card)") for t in texts)
    written = plots.evaluation_plots(tmp_path / "out", distances, report)
    assert written == {"det": tmp_path / "out" / "det.png"}
    assert cv2.imread(str(written["det"])).shape[:2] == (plots.DET_SIZE[1], plots.DET_SIZE[0])
