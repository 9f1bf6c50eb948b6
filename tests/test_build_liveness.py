"""The liveness build refuses a converted model that disagrees with its ONNX original on real face crops, and
writes nothing then. onnx2tf itself is replaced by the models already built (the conversion is what ./dev runs);
the comparison, the crops and the refusal are the real ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import convert.liveness as build
from edge.core.liveness import LIVENESS_CARD, LivenessCard


@pytest.fixture
def weights(weights_dir: Path, tmp_path: Path) -> Path:
    """A weights folder for the build: the real ONNX models, detector, face mesh and photos (links)."""
    if not (weights_dir / LIVENESS_CARD).is_file():
        pytest.skip("the liveness models are not built: run ./dev test (facegate-convert build)")
    folder = tmp_path / "weights"
    folder.mkdir()
    for name in ("pad", "face_detection_short_range.tflite", "face_landmark.tflite", "photos"):
        (folder / name).symlink_to(weights_dir / name)
    return folder


def converted_as(weights_dir: Path, mapping: dict[str, str]):
    """A stand-in for onnx2tf that hands back already-built TFLite files: ``{onnx stem: tflite name}``."""
    def convert(onnx_file: Path, work: Path) -> Path:
        work.mkdir(parents=True, exist_ok=True)
        out = work / f"{onnx_file.stem}.tflite"
        shutil.copy(weights_dir / mapping[onnx_file.stem], out)
        return out
    return convert


def test_models_that_agree_are_written_with_a_sealed_card(weights, weights_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(build, "_convert", converted_as(weights_dir, {
        "MiniFASNetV2": "liveness_minifasnet_v2.tflite", "MiniFASNetV1SE": "liveness_minifasnet_v1se.tflite"}))
    out = tmp_path / "out"
    out.mkdir()
    report = build.build_liveness(build.LivenessOptions(weights=weights, out=out))
    card = LivenessCard.read(out / LIVENESS_CARD)
    assert report["agreement"]["decisions_changed"] == 0 and report["agreement"]["crops"] > 300
    assert all(m["max_difference"] <= build.MAX_DIFFERENCE for m in report["models"])
    assert {m.file for m in card.models} == {"liveness_minifasnet_v2.tflite", "liveness_minifasnet_v1se.tflite"}


def test_a_converted_model_that_disagrees_is_refused_and_nothing_is_written(weights, weights_dir, tmp_path,
                                                                           monkeypatch):
    # the wrong network under the right name: what a broken conversion could hand back
    monkeypatch.setattr(build, "_convert", converted_as(weights_dir, {
        "MiniFASNetV2": "liveness_minifasnet_v1se.tflite", "MiniFASNetV1SE": "liveness_minifasnet_v1se.tflite"}))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(build.LivenessBuildError, match="differs from the ONNX original"):
        build.build_liveness(build.LivenessOptions(weights=weights, out=out))
    assert list(out.iterdir()) == []


def test_an_altered_onnx_model_is_refused_before_anything_runs(weights, weights_dir, tmp_path):
    (weights / "pad").unlink()
    (weights / "pad").mkdir()
    for f in (weights_dir / "pad").iterdir():
        shutil.copy(f, weights / "pad" / f.name)
    with open(weights / "pad" / "MiniFASNetV2.onnx", "ab") as fh:
        fh.write(b"\0")
    from edge.errors import WeightsError

    with pytest.raises(WeightsError, match="altered"):
        build.build_liveness(build.LivenessOptions(weights=weights, out=tmp_path))
