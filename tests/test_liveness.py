"""Presentation-attack detection: the liveness card and models as built, the crop geometry, the still-image
check, the ISO/IEC 30107-3 rates, and the operator's commands on the only four labelled samples there are."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.cli import main
from edge.core.detect import Face
from edge.core.liveness import LIVENESS_CARD, BoxCorrection, LivenessCard, LivenessModel, crop_region
from edge.core.modelcard import seal_card
from edge.core.presentation import FrozenCameraWatch, still_difference
from edge.errors import ExitCode, ModelCardError, ModelError
from edge.eval.liveness_eval import ScoredPhoto, pad_rates, threshold_for_bpcer
from tests.conftest import REPO

SAMPLES = REPO / "tests" / "data" / "pad"  # minivision-ai/Silent-Face-Anti-Spoofing images/sample (Apache-2.0)


@pytest.fixture(scope="module")
def card_path(weights_dir: Path) -> Path:
    path = weights_dir / LIVENESS_CARD
    if not path.is_file():
        pytest.skip("the liveness models are not built: run ./dev test (facegate-convert build)")
    return path


def face_at(left: float, top: float, right: float, bottom: float) -> Face:
    cx, cy = (left + right) / 2, (top + bottom) / 2
    points = [(cx - 10, cy - 5), (cx + 10, cy - 5), (cx, cy), (cx, cy + 10), (left, cy), (right, cy)]
    return Face((left, top, right, bottom), points, 0.9)


# -- the card and the models ------------------------------------------------------------------------------------


def test_the_built_card_checks_out_and_records_the_agreement_with_the_onnx_originals(card_path):
    card = LivenessCard.read(card_path)
    assert [m.name for m in card.models] == ["MiniFASNetV2", "MiniFASNetV1SE"]
    assert [m.crop_scale for m in card.models] == [2.7, 4.0]
    agreement = card.data["agreement"]
    assert agreement["decisions_changed"] == 0 and agreement["fused_max_difference"] <= 1e-3
    assert agreement["crops"] > 300  # every photo of the build with a face
    c = card.box_correction
    assert 0.7 < c.width < 1.2 and 0.8 < c.height < 1.3 and 0 < c.shift_up < 0.2  # a face outline, measured


def test_the_shipped_onnx_models_are_unchanged_by_the_build(weights_dir):
    manifest = json.loads((REPO / "weights" / "manifest.json").read_text())["committed"]
    from edge.files import sha256_file

    for rel, entry in manifest.items():
        assert sha256_file(weights_dir / rel) == entry["sha256"], rel


def test_a_card_edited_after_the_build_is_refused(card_path, tmp_path):
    data = json.loads(card_path.read_text())
    data["threshold"]["value"] = 0.01  # an attacker's "everything is live"
    (tmp_path / LIVENESS_CARD).write_text(json.dumps(data))
    with pytest.raises(ModelCardError, match="edited after the build"):
        LivenessCard.read(tmp_path / LIVENESS_CARD)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("format", 2, "format"),
    ("box_correction", {"width": 9, "height": 1, "shift_up": 0}, "box_correction.width"),
    ("input", {"shape": [1, 80, 80, 3], "colour": "RGB"}, "input.colour"),
    ("models", [], "models"),
])
def test_a_malformed_card_is_refused_naming_the_key(card_path, tmp_path, key, value, message):
    data = json.loads(card_path.read_text())
    data[key] = value
    (tmp_path / LIVENESS_CARD).write_text(json.dumps(seal_card(data)))
    with pytest.raises(ModelCardError, match=message):
        LivenessCard.read(tmp_path / LIVENESS_CARD)


def test_a_model_that_does_not_match_the_card_is_refused(card_path, tmp_path):
    shutil.copy(card_path, tmp_path / LIVENESS_CARD)
    card = LivenessCard.read(tmp_path / LIVENESS_CARD)
    first, second = card.models
    shutil.copy(card_path.parent / second.file, tmp_path / first.file)  # the other model under this one's name
    shutil.copy(card_path.parent / second.file, tmp_path / second.file)
    with pytest.raises(ModelError, match="does not match"):
        LivenessModel(card)
    (tmp_path / first.file).unlink()
    with pytest.raises(ModelError, match="does not exist"):
        LivenessModel(card)


# -- the crop ---------------------------------------------------------------------------------------------------


def test_the_crop_region_is_scaled_about_the_box_and_shifted_not_cut_at_the_border():
    assert crop_region((640, 480), (300, 200, 40, 40), 2.0) == (280, 180, 360, 260)
    # near the left edge: the same size, moved right
    assert crop_region((640, 480), (0, 200, 40, 40), 2.0) == (0, 180, 80, 260)
    # too large for the image: the scale is capped so it fits (the original's rule)
    x0, y0, x1, y1 = crop_region((640, 480), (200, 100, 200, 200), 4.0)
    assert (y0, y1) == (0, 479) and x1 - x0 == 479


def test_the_box_correction_moves_and_resizes_about_the_centre():
    left, top, w, h = BoxCorrection(0.9, 1.1, 0.05).apply(face_at(100, 100, 200, 200))
    assert (w, h) == pytest.approx((90, 110))
    assert left + w / 2 == pytest.approx(150) and top + h / 2 == pytest.approx(145)


# -- the four samples through the operator's command ------------------------------------------------------------


def test_liveness_refuses_the_print_and_the_screen_and_accepts_the_live_face(card_path, capsys):
    """The issue's bar: image_F1 (print) and image_F2 (screen) refused, image_T1 accepted; image_T2 reported."""
    code = main(["liveness", *(str(SAMPLES / f"image_{n}.jpg") for n in ("F1", "F2", "T1", "T2")), "--json"])
    records = {Path(r["photo"]).stem: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert records["image_F1"]["live"] is False and records["image_F2"]["live"] is False
    assert records["image_T1"]["live"] is True
    print("image_T2 (live; the original's false reject):", records["image_T2"]["live"], records["image_T2"]["score"])
    assert code == ExitCode.REFUSED  # some photo was called an attack
    for r in records.values():
        assert set(r["models"]) == {"MiniFASNetV2", "MiniFASNetV1SE"}
        assert r["live"] == (r["score"] >= r["threshold"])
        assert r["score"] == pytest.approx(np.mean(list(r["models"].values())), abs=1e-4)  # the models' mean


def test_liveness_says_what_is_wrong_with_a_photo_without_a_face(card_path, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    import cv2

    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    assert main(["liveness", str(blank)]) == ExitCode.ERROR
    assert "no face" in capsys.readouterr().out


def test_evaluate_liveness_reports_apcer_and_bpcer_with_intervals(card_path, tmp_path, capsys):
    for label, names in (("live", ("T1", "T2")), ("attack", ("F1", "F2"))):
        (tmp_path / label).mkdir()
        for n in names:
            shutil.copy(SAMPLES / f"image_{n}.jpg", tmp_path / label)
    assert main(["evaluate-liveness", str(tmp_path), "--json"]) == ExitCode.OK
    rates = json.loads(capsys.readouterr().out)
    assert rates["live"] == 2 and rates["attack"] == 2
    assert rates["apcer"]["count"] == 0  # neither attack accepted at the card's threshold
    low, high = rates["apcer"]["interval"]
    assert low == 0 and high > 0.5  # two attacks cannot show a low rate
    assert rates["threshold_for_target"]["bpcer"]["count"] == 0


def test_evaluate_liveness_needs_both_folders(card_path, tmp_path, capsys):
    (tmp_path / "live").mkdir()
    assert main(["evaluate-liveness", str(tmp_path)]) == ExitCode.ERROR
    assert "attack" in capsys.readouterr().err


# -- the rates --------------------------------------------------------------------------------------------------


def test_the_threshold_for_a_target_bpcer_rejects_at_most_that_share_of_live_faces():
    live = np.array([0.2, 0.5, 0.6, 0.7, 0.8, 0.9, 0.91, 0.92, 0.93, 0.95])
    assert threshold_for_bpcer(live, 0.0) == 0.2  # reject none
    assert threshold_for_bpcer(live, 0.1) == 0.5  # reject exactly one
    assert threshold_for_bpcer(live, 0.25) == 0.6  # 2.5 faces: two
    assert np.mean(live < threshold_for_bpcer(live, 0.25)) <= 0.25


def test_pad_rates_count_attacks_accepted_and_live_faces_rejected():
    photos = [ScoredPhoto(Path(f"l{i}"), "live", s) for i, s in enumerate((0.9, 0.8, 0.3))]
    photos += [ScoredPhoto(Path(f"a{i}"), "attack", s) for i, s in enumerate((0.6, 0.1))]
    photos += [ScoredPhoto(Path("x"), "attack", None, "no face found")]
    r = pad_rates(photos, threshold=0.5, target_bpcer=0.0)
    assert (r["apcer"]["count"], r["apcer"]["total"]) == (1, 2)
    assert (r["bpcer"]["count"], r["bpcer"]["total"]) == (1, 3)
    assert r["no_face"] == {"live": 0, "attack": 1}
    assert r["threshold_for_target"]["value"] == 0.3 and r["threshold_for_target"]["apcer"]["count"] == 1


# -- the still-image check --------------------------------------------------------------------------------------


def test_identical_frames_are_still_and_sensor_noise_is_not(rng):
    import cv2

    frame = cv2.imread(str(SAMPLES / "image_T1.jpg"))[:, :, ::-1].copy()
    face = face_at(150, 200, 350, 400)
    assert still_difference([frame, frame, frame], face) == 0.0

    def reencoded(rgb: np.ndarray) -> np.ndarray:
        _, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])
        return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[:, :, ::-1]

    first = reencoded(frame)  # a camera's JPEG frame, then a replay camera's re-encoded copy of it
    assert still_difference([first, reencoded(first)], face) < 0.12
    noisy = [np.clip(frame + rng.normal(0, 1.0, frame.shape), 0, 255).astype(np.uint8) for _ in range(3)]
    assert still_difference(noisy, face) > 0.2  # sigma 1 grey level of sensor noise
    assert still_difference([frame], face) is None


def test_a_camera_repeating_one_picture_is_frozen_and_then_recovers(rng):
    watch = FrozenCameraWatch(after_seconds=2.0, min_frames=3)
    frame = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    said = [watch.observe(frame, t * 0.5) for t in range(6)]  # 0 .. 2.5 s of the same picture
    assert said.count("camera_frozen") == 1 and said[-1] is None and watch.frozen
    assert watch.observe(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), 3.0) == "camera_recovered"
    assert not watch.frozen
