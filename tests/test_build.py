"""facegate-convert build: the real converted models, and the bad inputs that must stop it cleanly.

The models under test are the ones the README's test command built (``weights/facenet_*.tflite``), so
these tests check what the device will run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from convert.cli import main
from edge.core.encoder import FaceEncoder
from edge.core.modelcard import ModelCard, card_path
from edge.core.runtime import TFLiteModel
from edge.errors import ModelError
from edge.eval.metrics import cosine_agreement

VARIANTS = ("float32", "float16", "dynamic", "int8")


@pytest.fixture(scope="module")
def report(weights_dir: Path) -> dict:
    path = weights_dir / "report.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run 'facegate-convert build' (the README's test command does)")
    return json.loads(path.read_text())


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_has_a_card_that_matches_the_model(weights_dir: Path, variant: str):
    model = weights_dir / f"facenet_{variant}.tflite"
    card = ModelCard.for_model(model)  # raises if the sha256 differs
    assert card.variant == variant
    assert card.embedding_size == 128
    assert card.input_size == (160, 160)
    tfl = TFLiteModel(model, num_threads=1)
    assert list(tfl.input.shape) == card.data["input"]["shape"]
    assert tfl.input.dtype.name == card.data["input"]["dtype"]
    assert tfl.input.scale == pytest.approx(card.data["input"]["scale"])
    assert card.threshold is not None and 0.3 < card.threshold < 1.6
    assert card.data["source_weights"]["sha256"].startswith("6acdd8fb3a3fb2b5")


def test_int8_is_integer_in_and_out_with_recorded_quantisation(weights_dir: Path):
    card = ModelCard.for_model(weights_dir / "facenet_int8.tflite")
    for side in ("input", "output"):
        assert card.data[side]["dtype"] == "int8"
        assert card.data[side]["scale"] > 0
    assert card.data["calibration"]["photos"] >= 80


def test_report_meets_the_quality_bars(report: dict):
    """The issue's bars, read from the report the build measured (no timing is asserted here)."""
    keras = report["keras"]
    assert keras["identified"] >= 24
    by_name = {v["name"]: v for v in report["variants"]}
    assert set(by_name) == set(VARIANTS)
    int8 = by_name["int8"]
    assert int8["cosine_min"] >= 0.995 and int8["cosine_mean"] >= 0.998
    assert abs(int8["eer"] - keras["eer"]) <= 0.005
    for v in by_name.values():
        assert v["cosine_min"] >= 0.98
        assert "ai_edge_litert" in v["runtimes"]


def test_int8_on_the_device_path_agrees_with_float32(weights_dir: Path, photos_dir: Path):
    """Encode the same real face crops with both models through FaceEncoder: the door's own code path."""
    from edge.core.detect import FaceDetector
    from edge.core.pipeline import FacePipeline
    from edge.eval.photos import analyse_photos, labelled_photos

    detector = FaceDetector(weights_dir / "face_detection_short_range.tflite")
    crops = analyse_photos(labelled_photos(photos_dir / "val"), FacePipeline(detector), encode=False)
    f32 = FaceEncoder(weights_dir / "facenet_float32.tflite").encode(crops.crops)
    i8 = FaceEncoder(weights_dir / "facenet_int8.tflite").encode(crops.crops)
    assert f32.shape == i8.shape == (len(crops.labels), 128)
    np.testing.assert_allclose(np.linalg.norm(i8, axis=1), 1.0, atol=1e-5)
    assert cosine_agreement(f32, i8).min() > 0.99


def test_a_model_that_does_not_match_its_card_is_refused(weights_dir: Path, tmp_path: Path):
    model = tmp_path / "facenet_int8.tflite"
    shutil.copy(weights_dir / "facenet_int8.tflite", model)
    shutil.copy(card_path(weights_dir / "facenet_int8.tflite"), card_path(model))
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 1
    model.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its card"):
        FaceEncoder(model)
    card_path(model).unlink()
    with pytest.raises(ModelError, match="has no card"):
        FaceEncoder(model)


# -- bad input: each is one clear line on stderr, exit 1, and no model file written ------------------------


def _weights_copy(weights_dir: Path, tmp_path: Path, *, h5: bytes | None = None) -> Path:
    w = tmp_path / "w"
    w.mkdir()
    for name in ("face_detection_short_range.tflite", "face_detection_full_range.tflite"):
        (w / name).symlink_to(weights_dir / name)
    (w / "photos").symlink_to(weights_dir / "photos")
    if h5 is not None:
        (w / "facenet_keras.h5").write_bytes(h5)
    return w


def _build(args: list[str], capsys) -> tuple[int, str]:
    code = main(["build", "--no-cache", "--no-keras-latency", *args])
    return code, capsys.readouterr().err.strip()


def _no_models(folder: Path) -> bool:
    return not any(p.suffix == ".tflite" and p.name.startswith(("facenet", ".")) for p in folder.rglob("*"))


def test_missing_h5(weights_dir: Path, tmp_path: Path, capsys):
    w = _weights_copy(weights_dir, tmp_path)
    code, err = _build(["--weights", str(w)], capsys)
    assert code == 1 and "facenet_keras.h5 is missing" in err and "fetch" in err
    assert len(err.splitlines()) == 1 and _no_models(w)


def test_truncated_h5(weights_dir: Path, tmp_path: Path, capsys):
    w = _weights_copy(weights_dir, tmp_path, h5=(weights_dir / "facenet_keras.h5").read_bytes()[:1_000_000])
    code, err = _build(["--weights", str(w)], capsys)
    assert code == 1 and "has sha256" in err and "truncated" in err
    assert _no_models(w)


def test_no_calibration_photos(weights_dir: Path, tmp_path: Path, capsys):
    photos = tmp_path / "photos"
    (photos / "train").mkdir(parents=True)
    (photos / "val").mkdir()
    code, err = _build(["--photos", str(photos), "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and "has no images" in err
    assert _no_models(tmp_path / "out")


def test_a_calibration_photo_without_a_face(weights_dir: Path, photos_dir: Path, tmp_path: Path, capsys):
    photos = tmp_path / "photos"
    for split in ("train", "val"):
        shutil.copytree(photos_dir / split / "madonna", photos / split / "madonna")
    blank = photos / "train" / "madonna" / "wall.png"
    import cv2

    cv2.imwrite(str(blank), np.full((200, 200, 3), 180, np.uint8))
    code, err = _build(["--photos", str(photos), "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and "wall.png: no face found" in err and "--allow-faceless" in err
    assert _no_models(tmp_path / "out")


def test_unwritable_output_folder(tmp_path: Path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = _build(["--out", str(blocker / "out")], capsys)
    assert code == 1 and "is not writable" in err


@pytest.mark.parametrize("damage", ["NaN weights", "broken file"])
def test_a_converted_model_that_disagrees_with_keras_is_not_written(
    weights_dir, photos_dir, tmp_path, monkeypatch, damage
):
    """The guard against the converter trap: a model whose outputs differ from Keras never reaches disk.

    The converter is replaced by one returning the real float32 model damaged the way a bad converter
    damages it: NaN outputs (the trap we measured), or a file that cannot run. The
    reference is the real float32 model's encodings (equal to Keras's to 1e-6).
    """
    import convert.build as build_mod
    from edge.core.detect import FaceDetector
    from edge.core.pipeline import FacePipeline
    from edge.core.preprocess import prewhiten
    from edge.eval.photos import analyse_photos, labelled_photos

    data = bytearray((weights_dir / "facenet_float32.tflite").read_bytes())
    middle = len(data) // 2 // 4 * 4
    if damage == "NaN weights":
        data[middle: middle + 4000] = np.full(1000, np.nan, np.float32).tobytes()
    else:
        data = data[: len(data) // 2]
    monkeypatch.setattr(build_mod, "convert", lambda *a, **k: bytes(data))

    detector = FaceDetector(weights_dir / "face_detection_short_range.tflite")
    val = analyse_photos(labelled_photos(photos_dir / "val"), FacePipeline(detector), encode=False)
    reference = FaceEncoder(weights_dir / "facenet_float32.tflite").encode(val.crops)
    opts = build_mod.BuildOptions(weights=weights_dir, out=tmp_path, threads=(1,), keras_latency=False)
    with pytest.raises(build_mod.BuildError, match="disagrees with Keras|cannot run"):
        build_mod._build_variant("float32", tmp_path / "unused", opts, "0" * 64, prewhiten(val.crops),
                                 val, val, reference)
    assert list(tmp_path.iterdir()) == []
