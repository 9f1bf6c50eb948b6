"""``facegate bench`` on the real models and real photos (shape of the answer only: never timings)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.core.pipeline import STAGES
from edge.errors import ExitCode
from edge.eval.bench import synthetic_database, to_frame
from tests.test_cmd_calibrate import run_cli


@pytest.fixture(scope="module")
def models(int8_model, blazeface_short) -> list:
    return ["--model", int8_model, "--detector", blazeface_short]


def test_bench_reports_every_stage(photos_dir, models):
    code, records, _, err = run_cli("bench", "--photos", photos_dir / "val", "--frames", 3, "--people", 100,
                                    "--threads", 1, "--json", *models)
    assert code == ExitCode.OK, err
    (r,) = records
    assert [x["threads"] for x in r["results"]] == [1]
    stages = r["results"][0]["stages"]
    assert set(stages) == set(STAGES)
    for stage, figures in stages.items():
        assert 0 < figures["p50"] <= figures["p95"], stage
    for stage in STAGES:  # each frame's total includes each of its stages, so every quantile does too
        assert stages["total"]["p50"] >= stages[stage]["p50"] and stages["total"]["p95"] >= stages[stage]["p95"]
    assert r["results"][0]["frame_to_encode"] == pytest.approx(stages["total"]["p50"] / stages["encode"]["p50"])
    assert r["database"] == {"people": 100, "encodings": 500, "size": 128}
    assert r["frame_size"] == [640, 480] and 1 <= r["distinct_frames"] <= 25
    assert r["peak_rss_mb"] > 50


def test_bench_compares_thread_counts(photos_dir, models):
    code, records, text, _ = run_cli("bench", "--photos", photos_dir / "val", "--frames", 2, "--people", 10,
                                     "--thread-counts", 1, 2, *models)
    assert code == ExitCode.OK and records == []
    assert "1 thread p50/p95 ms" in text and "2 threads p50/p95 ms" in text
    assert "whole frame (total) / encode (p50)" in text and "peak RSS" in text


def test_bench_needs_a_face_in_some_photo(tmp_path, models):
    import cv2

    cv2.imwrite(str(tmp_path / "wall.jpg"), np.full((200, 300, 3), 90, np.uint8))
    code, _, _, err = run_cli("bench", "--photos", tmp_path, "--frames", 2, "--threads", 1, *models)
    assert code == ExitCode.ERROR and "no photo gave a frame with a detectable face" in err


def test_frames_keep_the_photo_in_proportion():
    photo = np.full((300, 200, 3), 200, np.uint8)  # portrait: fills the height, black bars left and right
    frame = to_frame(photo)
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    columns = np.flatnonzero(frame[240, :, 0] > 0)
    assert columns[0] == (640 - 320) // 2 and len(columns) == 320
    assert np.all(frame[:, 0] == 0) and np.all(frame[0, 320] == 200)


def test_synthetic_database_is_unit_vectors_five_per_person():
    names, matrix = synthetic_database(7, 128).matrix()
    assert matrix.shape == (35, 128) and matrix.dtype == np.float32
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert len(set(names)) == 7 and names.count(names[0]) == 5
